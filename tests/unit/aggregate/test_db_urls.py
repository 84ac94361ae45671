"""Database URLs never show their passwords: in logs, in errors, in settings' reprs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adstream.aggregate.store_url import StoreUrlError, open_store, redact_db_url
from adstream.cli import app
from adstream.ingest.config import ApiSettings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@db:5432/counts", "postgresql://u:***@db:5432/counts"),
        ("postgresql://u@db/counts?password=s3cret", "postgresql://u@db/counts?password=***"),
        (
            "postgresql://u:p%40ss@db/c?sslmode=verify-full&password=x%26y&sslpassword=k",
            "postgresql://u:***@db/c?sslmode=verify-full&password=***&sslpassword=***",
        ),
        ("postgresql://u:pa?ss@db/c?sslmode=require", "postgresql://u:***@db/c?sslmode=require"),
        ("postgres://u:pw@h1:1,h2:2/c", "postgres://u:***@h1:1,h2:2/c"),
        (
            "postgresql:///c?host=/run/pg&PASSWORD=s3cret",
            "postgresql:///c?host=/run/pg&PASSWORD=***",
        ),
        ("postgresql://u@db/counts?sslmode=require", "postgresql://u@db/counts?sslmode=require"),
        ("sqlite:///.adstream/aggregate.db", "sqlite:///.adstream/aggregate.db"),
    ],
)
def test_redact_db_url(url: str, shown: str) -> None:
    assert redact_db_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%zzS3CRET@127.0.0.1:1/db",  # libpq echoes the bad token
        "postgresql://u@127.0.0.1:1/db?password=S3C%zzRET",
        "postgresql://u:S3CRET@[::1:1/db",  # libpq echoes the whole URL
        "postgresql://u:S3CRET@127.0.0.1:1/db?password=S3CRET2&connect_timeout=2",  # refused
    ],
)
def test_open_errors_do_not_show_the_password(url: str) -> None:
    with pytest.raises(StoreUrlError) as raised:
        open_store(url)
    assert "S3C" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__  # the driver's exception is not chained
    assert "cannot open postgresql://u" in str(raised.value)


def test_aggregate_cli_reports_a_bad_database_without_the_password(tmp_path: Path) -> None:
    kafka = tmp_path / "kafka.env"
    kafka.write_text("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1\n")
    url = "postgresql://u:S3CRET@127.0.0.1:1/db?password=S3CRET2&connect_timeout=2"
    result = CliRunner().invoke(app, ["aggregate", "--kafka-config", str(kafka), "--db", url])
    assert result.exit_code == 2, result.output
    assert "S3C" not in result.output
    assert "cannot open postgresql://u:***@127.0.0.1:1/db?password=***" in result.output


def test_api_settings_repr_hides_the_database_url() -> None:
    settings = ApiSettings(db_url="postgresql://u:S3CRET@db/counts")
    assert "S3CRET" not in repr(settings)
