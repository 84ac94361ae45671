"""`adstream keys create | list | revoke` and `adstream sign`: manage API keys, sign URLs.

Keys go to the key file (`ADSTREAM_API_KEYS_FILE`, default ``.adstream/api/keys.json``),
hashed with the pepper (`ADSTREAM_API_PEPPER`, else the file ``.adstream/api/pepper``,
created on first use). A new key and its URL-signing secret are printed once, on stdout;
they are never stored or logged. A running server picks up changes within a second.
"""

from __future__ import annotations

from typing import Annotated

import typer

from adstream.events import EventType
from adstream.ingest import signing
from adstream.ingest.config import ApiSettings
from adstream.ingest.keys import (
    CALLER,
    KeyConfigError,
    KeyFile,
    KeyRecord,
    Scopes,
    check_pepper,
    key_hash,
    new_key,
    now_utc,
    read_or_create_pepper,
    signing_secret,
)

app = typer.Typer(help="API keys of the ingest API (ADSTREAM_API_AUTH=keys).", no_args_is_help=True)
EXIT_BAD_INPUT = 2
_DEFAULT = Scopes()
_DEFAULT_MAX_IMPR = _DEFAULT.max_impressions


def _pepper(settings: ApiSettings) -> bytes:
    try:
        if settings.pepper is not None:
            return check_pepper(settings.pepper.get_secret_value())
        return read_or_create_pepper(settings.pepper_file)
    except KeyConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _read(settings: ApiSettings) -> KeyFile:
    try:
        return KeyFile.read(settings.keys_file)
    except KeyConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def create(
    caller: Annotated[str, typer.Option(help="who holds the key (goes on each Kafka record)")],
    types: Annotated[
        list[EventType] | None, typer.Option("--type", help="event types (default: all)")
    ] = None,
    ad_prefix: Annotated[
        list[str] | None, typer.Option(help="adId prefixes the key may count (default: any)")
    ] = None,
    max_impressions: Annotated[int, typer.Option(min=1, help="per event")] = _DEFAULT_MAX_IMPR,
    max_events: Annotated[int, typer.Option(min=1, help="per request")] = _DEFAULT.max_events,
    rate: Annotated[float, typer.Option(min=0.001, help="events/s")] = _DEFAULT.rate_per_s,
    burst: Annotated[int, typer.Option(min=1, help="bucket size (events)")] = _DEFAULT.burst,
) -> None:
    """Create a key; prints it and its URL-signing secret once."""
    if not CALLER.fullmatch(caller):
        typer.echo(f"error: --caller must match {CALLER.pattern}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    settings = ApiSettings()
    try:
        scopes = Scopes(
            types=tuple(types or (EventType.IMPRESSION, EventType.CLICK)),
            ad_prefixes=tuple(ad_prefix or ()),
            max_impressions=max_impressions,
            max_events=max_events,
            rate_per_s=rate,
            burst=burst,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    pepper = _pepper(settings)
    keys = _read(settings)
    key_id, key = new_key()
    record = KeyRecord(
        id=key_id, caller=caller, hash=key_hash(pepper, key), created=now_utc(), scopes=scopes
    )
    keys.keys.append(record)
    keys.write(settings.keys_file)
    typer.echo(f"key id:             {key_id}")
    typer.echo(f"caller:             {caller}")
    typer.echo(f"API key:            {key}")
    typer.echo(f"URL-signing secret: {signing_secret(pepper, key_id)}")
    typer.echo("Both are shown only now; the key file keeps a hash.", err=True)


@app.command("list")
def list_keys() -> None:
    """Key ids, callers, dates and scopes (never keys or hashes)."""
    for record in _read(ApiSettings()).keys:
        state = f"revoked {record.revoked.isoformat()}" if record.revoked else "valid"
        scopes = record.scopes.model_dump(mode="json")
        typer.echo(f"{record.id}  {record.caller}  {record.created.isoformat()}  {state}  {scopes}")


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="the key id (k_…)")]) -> None:
    """Revoke a key: refused by a running server within a second, with the URLs it signed."""
    settings = ApiSettings()
    keys = _read(settings)
    for index, record in enumerate(keys.keys):
        if record.id == key_id:
            if record.revoked is None:
                keys.keys[index] = record.model_copy(update={"revoked": now_utc()})
                keys.write(settings.keys_file)
            typer.echo(f"revoked {key_id} ({record.caller})")
            return
    typer.echo(f"error: no key {key_id} in {settings.keys_file}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def sign(
    ad_id: Annotated[str, typer.Argument(help="the ad's id")],
    key_id: Annotated[str, typer.Option(help="the signing key's id (k_…)")],
    event_type: Annotated[EventType, typer.Option("--type")] = EventType.IMPRESSION,
    ttl: Annotated[int, typer.Option(min=1, help="seconds until the URL expires")] = 600,
    base_url: Annotated[str, typer.Option(help="where the API is")] = "http://127.0.0.1:8080",
    route: Annotated[
        bool, typer.Option(help="POST /ads/{adId}/<type> instead of GET /pixel.gif")
    ] = False,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="ADSTREAM_SIGNING_SECRET",
            show_envvar=True,
            help="the key's URL-signing secret (default: derived from the local pepper); "
            "prefer the variable: a command line is visible to all users",
        ),
    ] = None,
) -> None:
    """Print a signed event URL (ad servers: `adstream.ingest.signing.signed_url`)."""
    if secret is None:
        settings = ApiSettings()
        if settings.pepper is None and not settings.pepper_file.exists():
            typer.echo(
                "error: set ADSTREAM_SIGNING_SECRET (no local pepper to derive it)", err=True
            )
            raise typer.Exit(EXIT_BAD_INPUT)
        secret = signing_secret(_pepper(settings), key_id)
    if event_type is not EventType.IMPRESSION and not route:
        route = True  # the pixel records impressions only
    url = signing.signed_url(
        base_url,
        ad_id,
        event_type.value,
        key_id=key_id,
        secret=secret,
        ttl_s=ttl,
        pixel=not route,
    )
    typer.echo(url)
