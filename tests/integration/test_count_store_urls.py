"""libpq parameters in a PostgreSQL URL reach the connection (``sslmode``), and a failed
connection is reported without the URL's passwords."""

from __future__ import annotations

import pytest

from adstream.aggregate.stores import StoreUrlError, open_store
from adstream.local.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_sslmode_require_is_applied(postgres: PostgresServer) -> None:
    """The test server has no TLS: only a connection that really asks for it fails."""
    url = postgres.new_database()
    with pytest.raises(StoreUrlError, match="server does not support SSL, but SSL was required"):
        open_store(f"{url}?sslmode=require")
    open_store(f"{url}?sslmode=disable").close()


def test_a_url_with_passwords_connects_and_errors_never_show_them(postgres: PostgresServer) -> None:
    """The server trusts every local connection, so any password logs in; a database
    that does not exist gives an error naming the URL without its passwords."""
    url = postgres.new_database()
    with_password = url.replace("://adstream@", "://adstream:S3CRET@") + "?password=S3CRET2"
    open_store(with_password).close()
    missing = with_password.replace(url.rsplit("/", 1)[1], "t_missing_db")
    with pytest.raises(StoreUrlError) as raised:
        open_store(missing)
    message = str(raised.value)
    assert 'database "t_missing_db" does not exist' in message
    assert "S3CRET" not in message
    assert "postgresql://adstream:***@127.0.0.1" in message
