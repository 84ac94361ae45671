"""libpq parameters in a PostgreSQL URL reach the connection (``sslmode``), and a failed
connection is reported without the URL's passwords."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from adstream.aggregate.store_url import StoreUrlError, open_store
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import private_topic
from tests.support.postgres import PostgresServer

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


def test_the_aggregator_logs_its_database_without_passwords(
    broker: LocalBroker, postgres: PostgresServer
) -> None:
    topic = private_topic(broker)
    url = postgres.new_database().replace("://adstream@", "://adstream:S3CRET@")
    env = os.environ | {
        "ADSTREAM_LOCAL_KAFKA_DIR": str(broker.layout.root),
        "ADSTREAM_AGGREGATE_DB": f"{url}?password=S3CRET2&sslmode=disable",
    }
    env.pop("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", None)
    cmd = [sys.executable, "-m", "adstream", "aggregate", "--topic", topic.topic]
    cmd += ["--dead-letter-topic", topic.dead_letters, "--group", topic.group]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("aggregating" in line for line in lines):
            line = proc.stdout.readline().decode()
            assert line, "".join(lines)  # the process ended before logging its database
            lines.append(line)
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest.decode()
    assert "S3CRET" not in output
    assert "into postgresql://adstream:***@127.0.0.1:" in output
    assert "?password=***&sslmode=disable" in output
