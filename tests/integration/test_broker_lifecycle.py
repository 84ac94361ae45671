"""`up`/`down`/`status` of a second broker: idempotent start, durable data, clear errors.

This module runs its own broker (not the session one) because it stops and
restarts it; the tests run in file order and share it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adstream.kafka.apply import Scope, read_live_state
from adstream.kafka.plan import compute_plan
from adstream.kafka.topics import AD_EVENTS_TOPIC
from adstream.local.broker import BrokerError, LocalBroker, PortInUseError
from adstream.local.jars import KafkaDistribution
from adstream.local.layout import LISTEN_HOST, SCRAM_USERS, BrokerLayout, Listener
from adstream.local.provision import local_desired_state
from tests.integration.conftest import ExtraBroker
from tests.integration.kafka_helpers import client_config, consume_at, produce_one
from tests.support.ports import free_base_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_broker(extra_broker: ExtraBroker) -> Iterator[LocalBroker]:
    with extra_broker("lifecycle") as started:
        yield started


def _plaintext(broker: LocalBroker) -> dict[str, object]:
    return client_config(broker, Listener.PLAINTEXT)


def _cluster_id(broker: LocalBroker) -> str:
    return broker.admin().list_topics(timeout=10).cluster_id  # type: ignore[no-any-return]


def test_up_twice_is_harmless(own_broker: LocalBroker) -> None:
    pid = own_broker.running_pid()
    status = own_broker.up()
    assert status.running
    assert status.pid == pid
    assert all(item.answers for item in status.listeners)
    # Topics, ACLs and SCRAM users match the desired state: nothing left to create or re-salt.
    desired = local_desired_state()
    live = read_live_state(own_broker.admin(), desired, Scope())
    assert compute_plan(desired, live).changes == ()


def test_formatting_puts_no_password_on_any_command_line(
    tmp_path: Path, kafka_dist: KafkaDistribution
) -> None:
    """The StorageTool process is watched in /proc while it runs (any local user can read
    /proc/<pid>/cmdline): its command line holds none of the passwords in secrets.json."""
    fresh = LocalBroker(BrokerLayout.at(tmp_path), kafka_dist, base_port=free_base_port(set()))
    secrets = fresh.prepare()
    passwords = [secrets.store_password.get_secret_value()]
    passwords += [secrets.scram_password(user) for user in SCRAM_USERS]
    seen: list[bytes] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for path in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    cmdline = path.read_bytes()
                except OSError:
                    continue
                if b"kafka.tools.StorageTool" in cmdline and str(tmp_path).encode() in cmdline:
                    seen.append(cmdline)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fresh.format_storage()
    finally:
        done.set()
        watcher.join()
    assert fresh.layout.formatted_marker.exists()
    assert seen, "the StorageTool process was never seen in /proc"
    assert not [p for p in passwords for cmdline in seen if p.encode() in cmdline]


def test_data_and_cluster_id_survive_down_and_up(own_broker: LocalBroker) -> None:
    value = uuid.uuid4().bytes
    sent = produce_one(_plaintext(own_broker), AD_EVENTS_TOPIC, b"AD1", value)
    cluster = _cluster_id(own_broker)

    assert own_broker.down() is True
    assert own_broker.running_pid() is None
    assert not any(item.answers for item in own_broker.status().listeners)
    own_broker.up()

    assert _cluster_id(own_broker) == cluster
    reader = _plaintext(own_broker) | {"group.id": "adstream-dev-lifecycle"}
    assert consume_at(reader, AD_EVENTS_TOPIC, sent.partition(), sent.offset()).value() == value


def test_status_cli_prints_each_listener(own_broker: LocalBroker) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adstream", "kafka", "status", "--dir", str(own_broker.layout.root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for listener in (Listener.PLAINTEXT, Listener.SSL, Listener.SASL_SSL):
        line = next(
            ln for ln in done.stdout.splitlines() if ln.strip().startswith(listener.value + " ")
        )
        assert own_broker.ports.bootstrap(listener) in line
        assert "answers" in line


def test_port_in_use_gives_an_error_naming_the_port(
    tmp_path: Path, kafka_dist: KafkaDistribution, own_broker: LocalBroker
) -> None:
    base = free_base_port(
        exclude=set(own_broker.ports.all().values()), start=own_broker.ports.base + 100
    )
    other = LocalBroker(BrokerLayout.at(tmp_path / "other"), kafka_dist, base_port=base)
    with socket.socket() as squatter:
        squatter.bind((LISTEN_HOST, other.ports.of(Listener.SASL_SSL)))
        squatter.listen()
        with pytest.raises(PortInUseError) as raised:
            other.up()
    assert f"port {base + 4} (SASL_SSL listener) is already in use" in str(raised.value)
    assert other.running_pid() is None


def test_cli_reports_port_conflict_without_traceback(
    tmp_path: Path, own_broker: LocalBroker
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adstream",
            "kafka",
            "up",
            "--dir",
            str(tmp_path / "clash"),
            "--base-port",
            str(own_broker.ports.base),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert (
        f"error: port {own_broker.ports.base} (PLAINTEXT listener) is already in use" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_failed_start_shows_the_log_tail(own_broker: LocalBroker) -> None:
    """A broker that cannot start (here: storage of another node id) is reported with its log."""
    own_broker.down()
    meta = own_broker.layout.formatted_marker
    original = meta.read_text()
    meta.write_text(original.replace("node.id=1", "node.id=7"))
    try:
        with pytest.raises(BrokerError) as raised:
            own_broker.up()
        message = str(raised.value)
        assert "the broker exited with code" in message
        assert "errors:" in message
        assert "Stored node id 7 doesn't match previous node id 1" in message
    finally:
        meta.write_text(original)
    own_broker.up()
    assert own_broker.running_pid() is not None
