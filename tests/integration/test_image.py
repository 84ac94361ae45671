"""The container image, built here as `make image` builds it, run against the session's
broker and PostgreSQL: the API container publishes, the aggregator container counts, and
neither runs as root. Both start as deployed (ADSTREAM_DEPLOYED=true, demands the local
one-node topics meet), so their start-up checks pass on a real cluster too."""

from __future__ import annotations

import logging
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from confluent_kafka.admin import AclOperation, ResourceType

from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import AGGREGATOR
from tests.integration.ingest_support import high_watermarks, read_from
from tests.integration.kafka_helpers import allow
from tests.integration.service_env import kafka_env
from tests.support.containers import (
    Container,
    build_image,
    podman,
    podman_missing,
    running_container,
    wait_until,
)
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(podman_missing() is not None, reason=str(podman_missing())),
    # The first build on a machine makes the base image and the wheelhouse (a few minutes).
    pytest.mark.timeout(1200),
]

IMAGE = "localhost/adstream:test"
CERTS = "/etc/adstream/kafka"
DEPLOYED = {
    "ADSTREAM_DEPLOYED": "true",
    # What the one-node local topics have; a real profile demands 3 and 2.
    "ADSTREAM_REQUIRE_REPLICATION_FACTOR": "1",
    "ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS": "1",
    "ADSTREAM_LOG_FORMAT": "json",
}
log = logging.getLogger("adstream.tests")


@pytest.fixture(scope="module")
def image() -> str:
    started = time.monotonic()
    built = build_image(IMAGE, sys.executable)
    assert built.returncode == 0, built.stdout + built.stderr
    size = podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip()
    log.warning("built %s in %.0f s, %s bytes", IMAGE, time.monotonic() - started, size)
    return IMAGE


@pytest.fixture(scope="module")
def client_files(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The services' CA, certificates and keys, readable by the image's user (as a task's
    secrets would be); mounted read-only at CERTS."""
    folder = tmp_path_factory.mktemp("container-certs")
    folder.chmod(0o755)
    layout = broker.layout
    for principal in ("adstream-api", AGGREGATOR):
        for source in (layout.cert_pem(principal), layout.key_pem(principal)):
            shutil.copy(source, folder / f"{principal}-{source.name}")
    shutil.copy(layout.ca_pem(), folder / "ca.pem")
    for file in folder.iterdir():
        file.chmod(0o444)
    return folder


def container_env(broker: LocalBroker, principal: str) -> dict[str, str]:
    """``kafka_env`` with the file paths as the container sees them."""
    env = kafka_env(broker, principal)
    layout = broker.layout
    env["ADSTREAM_KAFKA_CA_FILE"] = f"{CERTS}/ca.pem"
    env["ADSTREAM_KAFKA_CERT_FILE"] = f"{CERTS}/{principal}-{layout.cert_pem(principal).name}"
    env["ADSTREAM_KAFKA_KEY_FILE"] = f"{CERTS}/{principal}-{layout.key_pem(principal).name}"
    return {**env, **DEPLOYED}


def process_uid(container: Container) -> int:
    """The real uid of the container's main process, read from the host's /proc."""
    status = Path(f"/proc/{container.host_pid()}/status").read_text()
    (uid_line,) = (line for line in status.splitlines() if line.startswith("Uid:"))
    return int(uid_line.split()[1])


@pytest.fixture(scope="module")
def api(image: str, broker: LocalBroker, client_files: Path) -> Iterator[tuple[Container, str]]:
    port = free_port()
    env = {
        **container_env(broker, "adstream-api"),
        "ADSTREAM_API_HOST": "127.0.0.1",
        "ADSTREAM_API_PORT": str(port),
        "ADSTREAM_API_WORKERS": "1",
    }
    url = f"http://127.0.0.1:{port}"
    with running_container(image, ["serve"], env, {client_files: CERTS}) as container:

        def ready() -> bool:
            assert container.running(), container.logs()
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "the API container's /readyz", timeout=90)
        yield container, url


def test_the_api_container_publishes_to_kafka(
    api: tuple[Container, str], broker: LocalBroker
) -> None:
    _, url = api
    ad_id = f"IMG-{uuid.uuid4().hex[:8]}"
    before = high_watermarks(broker)

    response = httpx.post(f"{url}/ads/{ad_id}/impression", timeout=30)

    assert response.status_code == 200, response.text
    [message] = read_from(broker, before, 1)
    assert message.key() == ad_id.encode()
    body = orjson.loads(message.value())
    assert (body["eventId"], body["type"]) == (response.headers["X-Event-Id"], "impression")


def test_the_services_do_not_run_as_root(api: tuple[Container, str]) -> None:
    container, _ = api
    assert process_uid(container) != 0
    inside = podman("exec", container.name, "id", "-u")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip() != "0"


def test_the_aggregator_container_counts_into_postgres(
    image: str,
    api: tuple[Container, str],
    broker: LocalBroker,
    postgres: PostgresServer,
    client_files: Path,
) -> None:
    _, url = api
    ad_id = f"IMG-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        assert httpx.post(f"{url}/ads/{ad_id}/impression", timeout=30).status_code == 200
    group = f"adstream-image-{uuid.uuid4().hex[:8]}"
    admin = broker.admin()
    for future in admin.create_acls(
        [allow(AGGREGATOR, AclOperation.READ, ResourceType.GROUP, group)]
    ).values():
        future.result(30)
    db = postgres.new_database()
    env = {
        **container_env(broker, AGGREGATOR),
        "ADSTREAM_AGGREGATE_DB": db,
        "ADSTREAM_AGGREGATE_GROUP": group,
    }
    with running_container(image, ["aggregate"], env, {client_files: CERTS}) as aggregator:

        def counted() -> bool:
            assert aggregator.running(), aggregator.logs()
            with psycopg.connect(db) as conn:
                if conn.execute("SELECT to_regclass('ad_counts')").fetchone() == (None,):
                    return False
                row = conn.execute(
                    "SELECT sum(impressions) FROM ad_counts WHERE ad_id = %s", (ad_id,)
                ).fetchone()
            return row is not None and row[0] == 2

        wait_until(counted, f"2 impressions of {ad_id} in PostgreSQL", timeout=120)
        assert process_uid(aggregator) != 0


def test_the_image_ships_the_rds_cas_and_no_installer_or_compiler(image: str) -> None:
    probe = (
        'test -s "$PGSSLROOTCERT" && grep -c "BEGIN CERTIFICATE" "$PGSSLROOTCERT"; '
        "for tool in pip pip3 gcc cc make; do command -v $tool; done; "
        "python3 -c 'import pip' 2>/dev/null && echo 'pip importable'; true"
    )
    done = podman("run", "--rm", "--network=host", "--entrypoint", "sh", image, "-c", probe)
    assert done.returncode == 0, done.stderr
    certificates, *found = done.stdout.split("\n")
    assert int(certificates) > 10  # the RDS bundle: one root per region and key type
    assert [line for line in found if line] == []
