"""The count database as the CDK stack hands it to a task: the URL ``postgresql://`` and the
RDS secret's fields as libpq's ``PG*`` variables (adstream.infra.database)."""

from __future__ import annotations

import pytest

from adstream.aggregate.store_url import StoreUrlError, open_store
from adstream.infra.database import LIBPQ_ENVIRONMENT, LIBPQ_SECRET_FIELDS, LIBPQ_URL
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_the_bare_url_connects_with_the_secrets_fields(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = postgres.new_database().rsplit("/", 1)[1]
    secret = {  # the RDS-managed secret's JSON (the test server trusts any password)
        "host": "127.0.0.1",
        "port": postgres.port,
        "username": postgres.user,
        "password": "rotated-S3CRET",
        "dbname": database,
    }
    for variable, field in LIBPQ_SECRET_FIELDS.items():
        monkeypatch.setenv(variable, str(secret[field]))
    monkeypatch.setenv("PGPORT", str(postgres.port))  # the stack sets it from the endpoint
    for variable, value in LIBPQ_ENVIRONMENT.items():
        monkeypatch.setenv(variable, value)
    # verify-full is really applied: this server has no TLS, so libpq refuses it.
    with pytest.raises(StoreUrlError, match="SSL") as refused:
        open_store(LIBPQ_URL)
    assert "rotated-S3CRET" not in str(refused.value)
    monkeypatch.setenv("PGSSLMODE", "disable")
    store = open_store(LIBPQ_URL)
    try:
        with store.reading() as cursor:
            cursor.execute("SELECT current_database()")
            assert cursor.fetchone()[0] == database
    finally:
        store.close()
