"""``adstream registry up | down | status``: the local schema registry (Apicurio, loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.local.jars import JarFetchError
from adstream.local.registry import (
    DEFAULT_HEAP_MB,
    DEFAULT_PORT,
    LocalRegistry,
    PostgresStorage,
    RegistryError,
    RegistryStatus,
)
from adstream.local.registry_dist import REGISTRY_VERSION, ensure_registry
from adstream.local.toolchain import ToolchainError

app = typer.Typer(
    help="Run a local schema registry (Apicurio Registry, Confluent-compatible API).",
    no_args_is_help=True,
)


class LocalRegistrySettings(BaseSettings):
    """From flags, ``ADSTREAM_LOCAL_REGISTRY_*`` variables or defaults."""

    model_config = SettingsConfigDict(env_prefix="ADSTREAM_LOCAL_REGISTRY_", extra="ignore")

    dir: Path = Field(Path(".adstream/registry"), description="state directory")
    port: int = Field(DEFAULT_PORT, ge=1024, le=65534, description="HTTP port; management +1")
    heap_mb: int = Field(DEFAULT_HEAP_MB, ge=128, le=8192, description="JVM max heap in MiB")
    version: str = Field(REGISTRY_VERSION, description="Apicurio Registry version")
    cache_dir: Path | None = Field(None, description="where the server is unpacked")
    postgres_url: SecretStr | None = Field(
        None, description="postgresql://user:password@host:port/db; default in-memory storage"
    )
    compatibility: str = Field("BACKWARD", description="global compatibility rule")

    def registry(self, progress: Any = None, *, starting: bool = True) -> LocalRegistry:
        """The registry these settings describe; not `starting`, its port is the running one's."""
        dist = ensure_registry(self.version, self.cache_dir, progress)
        storage = (
            PostgresStorage.from_url(self.postgres_url.get_secret_value())
            if self.postgres_url
            else None
        )
        return LocalRegistry(
            self.dir.resolve(),
            dist,
            port=self.port if starting else None,
            heap_mb=self.heap_mb,
            storage=storage,
            compatibility=self.compatibility,
        )


DirOpt = Annotated[Path | None, typer.Option("--dir", help="State directory [.adstream/registry]")]
PortOpt = Annotated[
    int | None, typer.Option(help="HTTP port on 127.0.0.1; management PORT+1 [default: 8081]")
]


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _registry(*, starting: bool = False, **overrides: Any) -> LocalRegistry:
    try:
        settings = LocalRegistrySettings(**{k: v for k, v in overrides.items() if v is not None})
        return settings.registry(progress=_say, starting=starting)
    except (ToolchainError, JarFetchError, RegistryError) as exc:
        _fail(exc)


@app.command()
def up(
    dir: DirOpt = None,
    port: PortOpt = None,
    heap_mb: Annotated[int | None, typer.Option(help="JVM max heap [default: 384]")] = None,
    postgres: Annotated[
        str | None,
        typer.Option(
            help="Store schemas in PostgreSQL (postgresql://user:password@host:port/db) "
            "instead of memory"
        ),
    ] = None,
    compatibility: Annotated[
        str | None, typer.Option(help="Global compatibility rule [default: BACKWARD]")
    ] = None,
) -> None:
    """Start the registry (idempotent); return when it answers with its compatibility set."""
    registry = _registry(
        starting=True,
        dir=dir,
        port=port,
        heap_mb=heap_mb,
        postgres_url=postgres,
        compatibility=compatibility,
    )
    try:
        current = registry.up(progress=_say)
    except (ToolchainError, RegistryError) as exc:
        _fail(exc)
    _print(current)


@app.command()
def down(dir: DirOpt = None) -> None:
    """Stop the registry (an in-memory one forgets its schemas)."""
    stopped = _registry(dir=dir).down()
    typer.echo("registry stopped" if stopped else "registry was not running")


@app.command()
def status(dir: DirOpt = None) -> None:
    """Whether it runs and answers, its URL and compatibility; exit 3 if not running."""
    current = _registry(dir=dir).status()
    _print(current)
    if not current.running:
        raise typer.Exit(3)


def _print(current: RegistryStatus) -> None:
    state = current.state
    if state is None:
        typer.echo("schema registry: not running")
        return
    answer = "answers" if current.answers else "NOT answering"
    typer.echo(f"Apicurio Registry {state.version} (pid {state.pid}, {state.storage}): {answer}")
    typer.echo(f"  URL            {current.url}   (ADSTREAM_SCHEMA_REGISTRY_URL)")
    typer.echo(f"  management     http://127.0.0.1:{state.management_port}")
    typer.echo(f"  compatibility  {current.compatibility or '?'}")
    typer.echo(f"  java           {state.java}")
