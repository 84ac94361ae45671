"""Open a count store from a URL: ``sqlite:///path`` or ``postgresql://…``.

A PostgreSQL URL goes to libpq unchanged, so its query parameters apply as documented
there: ``?sslmode=verify-full&sslrootcert=/path/ca.pem``, ``connect_timeout``, … (and the
``PG*`` environment variables, e.g. ``PGSSLMODE``). URLs may hold passwords
(``user:pass@`` or ``?password=``): only ``redact_db_url``'s form is ever logged or put in
an error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from adstream.aggregate.store import DEFAULT_DEDUPE_WINDOW_MS, SqlCountStore

DEFAULT_DB_URL = "sqlite:///.adstream/aggregate.db"
REDACTED = "***"


class StoreUrlError(ValueError):
    """The database URL names no supported database, or the database cannot be opened.

    The message holds the URL only with its passwords redacted."""


def _split(url: str) -> tuple[str, str | None, str | None, str, list[str] | None]:
    """scheme, user, password, host+path, query pairs; the user info ends at the first
    ``@`` or ``/``, as libpq reads it, so a ``?`` in a password does not start the query."""
    scheme, _, rest = url.partition("://")
    stop = next((i for i, c in enumerate(rest) if c in "@/"), len(rest))
    user = password = None
    if stop < len(rest) and rest[stop] == "@":
        user, colon, secret = rest[:stop].partition(":")
        password = secret if colon else None
        rest = rest[stop + 1 :]
    where, q, query = rest.partition("?")
    return scheme, user, password, where, query.split("&") if q else None


def _is_password(pair: str) -> bool:
    key, eq, _value = pair.partition("=")
    return bool(eq) and "password" in unquote(key).lower()  # password, sslpassword


def _passwords(url: str) -> list[str]:
    """The password values in ``url``, as written and percent-decoded."""
    _, _, password, _, query = _split(url)
    found = [password or ""] + [p.partition("=")[2] for p in query or [] if _is_password(p)]
    return [s for raw in found if raw for s in {raw, unquote(raw)}]


def redact_db_url(url: str) -> str:
    """``url`` with each password (``user:pass@``, ``?password=``, ``?sslpassword=``)
    replaced by ``***``: the only form of a database URL for logs and error messages."""
    if "://" not in url:
        return url
    scheme, user, password, where, query = _split(url)
    userinfo = "" if user is None else f"{user}:{REDACTED}@" if password is not None else f"{user}@"
    if query is not None:
        pairs = [f"{p.partition('=')[0]}={REDACTED}" if _is_password(p) else p for p in query]
        where += "?" + "&".join(pairs)
    return f"{scheme}://{userinfo}{where}"


def _scrubbed(message: str, url: str) -> str:
    """A driver's error message without the URL's passwords (libpq echoes parts of it)."""
    message = message.replace(url, redact_db_url(url))
    for secret in sorted(_passwords(url), key=len, reverse=True):
        message = message.replace(secret, REDACTED)
    return message


def open_store(url: str, dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS) -> SqlCountStore:
    """Connect and create the schema if it is missing."""
    connect: Callable[[], SqlCountStore]
    errors: tuple[type[Exception], ...]
    if url.startswith("sqlite:///"):
        from adstream.aggregate.sqlite_store import SqliteCountStore

        path = Path(url.removeprefix("sqlite:///"))
        connect, errors = lambda: SqliteCountStore(path, dedupe_window_ms), (sqlite3.Error,)
    elif url.startswith(("postgresql://", "postgres://")):
        import psycopg

        from adstream.aggregate.postgres_store import PostgresCountStore

        connect, errors = lambda: PostgresCountStore(url, dedupe_window_ms), (psycopg.Error,)
    else:
        raise StoreUrlError(
            f"unsupported database URL {url.split('://')[0]!r}://…: use sqlite:///PATH "
            "or postgresql://USER@HOST:PORT/DB"
        )
    try:
        store = connect()
        store.ensure_schema()
    except errors as exc:
        message = _scrubbed(str(exc), url)
        # from None: the driver's own exception text could show the password again.
        raise StoreUrlError(f"cannot open {redact_db_url(url)}: {message}") from None
    return store
