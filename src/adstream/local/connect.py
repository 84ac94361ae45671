"""Start, stop and inspect the local Kafka Connect worker running the Iceberg sink.

``up`` is idempotent: it creates the warehouse table, writes the worker's files, starts a
standalone worker (REST on loopback) and returns once the connector and its task run.
The worker outlives the command, like the broker, until ``down`` (SIGTERM: the task stops
and closes its files; uncommitted ones are rewritten after the next start). Distributed
mode (several workers sharing config, offset and status topics) is what MSK Connect runs;
locally one standalone worker is enough. See ``connect_config`` for the delivery contract.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adstream.kafka.topics import AD_EVENTS_TOPIC, ICEBERG_CONNECTOR
from adstream.local.broker_state import log_excerpt
from adstream.local.certs import ensure_certificates
from adstream.local.connect_config import (
    DEFAULT_COMMIT_INTERVAL_MS,
    STANDALONE_MAIN,
    ConnectLayout,
    connector_properties,
    log4j2_yaml,
    worker_properties,
)
from adstream.local.connect_jars import ConnectDistribution
from adstream.local.layout import LISTEN_HOST, SCRAM_USERS, BrokerLayout, Ports
from adstream.local.ports import port_free
from adstream.local.processes import alive, spawn_detached, wait_exit
from adstream.local.secrets import SecretsFile
from adstream.local.server_config import render_properties
from adstream.local.toolchain import find_java
from adstream.warehouse.layout import WarehouseLayout

ProgressFn = Callable[[str], None]
DEFAULT_HEAP_MB = 384
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


class ConnectError(RuntimeError):
    """The worker could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class ConnectState:
    """What ``connect.json`` records about the worker started by ``up``."""

    pid: int
    rest_port: int
    kafka_version: str
    iceberg_version: str

    @classmethod
    def read(cls, path: Path) -> ConnectState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class ConnectStatus:
    running: bool
    pid: int | None
    rest_url: str
    connector: dict[str, Any] | None
    """The worker's ``GET /connectors/<name>/status`` answer, None if it did not answer."""

    @property
    def task_states(self) -> list[str]:
        tasks = (self.connector or {}).get("tasks", [])
        return [str(t.get("state")) for t in tasks]

    @property
    def sink_running(self) -> bool:
        state = (self.connector or {}).get("connector", {}).get("state")
        return state == "RUNNING" and self.task_states == ["RUNNING"]


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http
        return json.loads(response.read())


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class LocalConnect:
    """One standalone Connect worker in ``layout.root``, sinking the broker's ``ad-events``."""

    def __init__(
        self,
        layout: ConnectLayout,
        dist: ConnectDistribution,
        broker: BrokerLayout,
        broker_ports: Ports,
        warehouse: WarehouseLayout,
        *,
        rest_port: int,
        heap_mb: int = DEFAULT_HEAP_MB,
        commit_interval_ms: int = DEFAULT_COMMIT_INTERVAL_MS,
        topic: str = AD_EVENTS_TOPIC,
    ) -> None:
        self.layout = layout
        self.dist = dist
        self.broker = broker
        self.broker_ports = broker_ports
        self.warehouse = warehouse
        self.rest_port = rest_port
        self.heap_mb = heap_mb
        self.commit_interval_ms = commit_interval_ms
        self.topic = topic

    # ---- state -------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of this directory's worker if it is alive (not a stale pid file)."""
        state = ConnectState.read(self.layout.state_file)
        if state is None or not alive(state.pid):
            return None
        try:
            cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        ours = str(self.layout.worker_properties).encode() in cmdline
        return state.pid if ours and STANDALONE_MAIN.encode() in cmdline else None

    def _effective_port(self) -> int:
        state = ConnectState.read(self.layout.state_file)
        if state is not None and self.running_pid() is not None:
            return state.rest_port
        return self.rest_port

    def rest_url(self) -> str:
        return f"http://{LISTEN_HOST}:{self._effective_port()}"

    def connector_status(self) -> dict[str, Any] | None:
        try:
            answer = _get_json(f"{self.rest_url()}/connectors/{ICEBERG_CONNECTOR}/status")
        except (OSError, ValueError):
            return None
        return answer if isinstance(answer, dict) else None

    def status(self) -> ConnectStatus:
        pid = self.running_pid()
        connector = self.connector_status() if pid is not None else None
        return ConnectStatus(pid is not None, pid, self.rest_url(), connector)

    # ---- up ------------------------------------------------------------------------------
    def up(self, progress: ProgressFn | None = None) -> ConnectStatus:
        say = progress or (lambda _msg: None)
        pid = self.running_pid()
        if pid is not None:
            say(f"Kafka Connect already running (pid {pid})")
            return self.status()
        if not port_free(self.rest_port):
            raise ConnectError(
                f"port {self.rest_port} (Connect REST) is already in use on {LISTEN_HOST}: "
                "stop the process using it, or pass another --rest-port"
            )
        self.prepare()
        say(f"Iceberg table ready in {self.warehouse.root}")
        say(
            f"Starting Kafka Connect {self.dist.kafka_version} with the Iceberg "
            f"{self.dist.iceberg_version} sink (heap {self.heap_mb} MiB)"
        )
        started = time.monotonic()
        log_offsets = (_size(self.layout.worker_log), _size(self.layout.console_log))
        proc = self._spawn()
        ConnectState(
            proc.pid, self.rest_port, self.dist.kafka_version, self.dist.iceberg_version
        ).write(self.layout.state_file)
        self.wait_until_running(proc, log_offsets)
        say(f"Kafka Connect ready in {time.monotonic() - started:.1f}s (pid {proc.pid})")
        return self.status()

    def prepare(self) -> None:
        """Create the table and write the worker's files (nothing is started)."""
        for folder in (self.layout.root, self.layout.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.broker.ca_pem().exists():
            raise ConnectError(
                f"no local broker in {self.broker.root}: run `adstream kafka up` first"
            )
        secrets = SecretsFile(self.broker.secrets_file).load_or_create(SCRAM_USERS)
        store_password = secrets.store_password.get_secret_value()
        # A broker made before the connect principal existed gets its certificate now.
        ensure_certificates(self.broker, store_password)
        self._ensure_table()
        worker = worker_properties(
            self.layout,
            self.broker,
            self.broker_ports,
            store_password,
            self.dist.plugin_path,
            self.rest_port,
        )
        fd = os.open(self.layout.worker_properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(render_properties(worker))
        connector = connector_properties(self.warehouse, self.commit_interval_ms, self.topic)
        self.layout.connector_properties.write_text(render_properties(connector))
        self.layout.log4j_config.write_text(log4j2_yaml(self.layout))

    def _ensure_table(self) -> None:
        try:
            from adstream.warehouse.table import ensure_raw_events_table, open_catalog
        except ImportError as exc:
            raise ConnectError(
                f"creating the Iceberg table needs the warehouse extra "
                f"(pip install 'adstream[warehouse]'): {exc}"
            ) from exc
        ensure_raw_events_table(open_catalog(self.warehouse))

    def command(self) -> list[str]:
        return [
            str(find_java()),
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 128)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=50",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.layout.log4j_config}",
            "-cp",
            self.dist.classpath,
            STANDALONE_MAIN,
            str(self.layout.worker_properties),
            str(self.layout.connector_properties),
        ]

    def _spawn(self) -> subprocess.Popen[bytes]:
        return spawn_detached(self.command(), self.layout.console_log, cwd=self.layout.root)

    def wait_until_running(
        self, proc: subprocess.Popen[bytes], log_offsets: tuple[int, int]
    ) -> None:
        """Return once the connector and its one task run; fail with the log's errors."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                reason = f"the worker exited with code {proc.returncode}"
                raise ConnectError(self._failure(reason, log_offsets))
            status = self.connector_status()
            if status is not None:
                current = ConnectStatus(True, proc.pid, self.rest_url(), status)
                if current.sink_running:
                    return
                if "FAILED" in current.task_states:
                    trace = status["tasks"][0].get("trace", "")
                    self._kill(proc.pid)
                    raise ConnectError(f"the Iceberg sink task failed:\n{trace}")
            time.sleep(0.25)
        self._kill(proc.pid)
        reason = f"the connector did not run within {START_TIMEOUT_S:.0f}s"
        raise ConnectError(self._failure(reason, log_offsets))

    def _failure(self, reason: str, log_offsets: tuple[int, int]) -> str:
        worker, console = log_offsets
        return "\n".join(
            [
                f"{reason}.",
                log_excerpt(self.layout.worker_log, worker),
                log_excerpt(self.layout.console_log, console, lines=10),
            ]
        )

    # ---- down ----------------------------------------------------------------------------
    def down(self, progress: ProgressFn | None = None) -> bool:
        """Stop the worker gracefully; True if one was running."""
        say = progress or (lambda _msg: None)
        pid = self.running_pid()
        if pid is None:
            say("Kafka Connect is not running")
            return False
        say(f"Stopping Kafka Connect (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        if not wait_exit(pid, STOP_TIMEOUT_S):
            say(f"Kafka Connect did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
            self._kill(pid)
        say("Kafka Connect stopped")
        return True

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 10)
