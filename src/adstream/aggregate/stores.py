"""Open a count store from a URL: ``sqlite:///path`` or ``postgresql://…``."""

from __future__ import annotations

from pathlib import Path

from adstream.aggregate.store import DEFAULT_DEDUPE_WINDOW_MS, SqlCountStore

DEFAULT_DB_URL = "sqlite:///.adstream/aggregate.db"


class StoreUrlError(ValueError):
    """The database URL names no supported database."""


def open_store(url: str, dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS) -> SqlCountStore:
    """Connect and create the schema if it is missing."""
    store: SqlCountStore
    if url.startswith("sqlite:///"):
        from adstream.aggregate.sqlite_store import SqliteCountStore

        store = SqliteCountStore(Path(url.removeprefix("sqlite:///")), dedupe_window_ms)
    elif url.startswith(("postgresql://", "postgres://")):
        from adstream.aggregate.postgres_store import PostgresCountStore

        store = PostgresCountStore(url, dedupe_window_ms)
    else:
        raise StoreUrlError(
            f"unsupported database URL {url.split('://')[0]!r}://…: use sqlite:///PATH "
            "or postgresql://USER@HOST:PORT/DB"
        )
    store.ensure_schema()
    return store
