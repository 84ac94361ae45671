"""A local Prometheus scraping the local services: `adstream monitor up | down | status`.

The config and alert rules are the deployable ones (``deploy/prometheus``), copied into the
state directory beside ``targets/*.json`` naming the API, aggregator and brokers to scrape, so the
tests and ``make run`` differ only in ports. Prometheus listens on loopback only and keeps
its data in the state directory (``.adstream/prometheus``); it outlives the command, like
the local broker, until ``down``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import adstream
from adstream.kafka.desired_state import shipped_deploy_path
from adstream.local.layout import LISTEN_HOST
from adstream.local.ports import port_free
from adstream.local.processes import PidFile, answers_http

DEFAULT_PORT = 9090
DEFAULT_API_TARGET = f"{LISTEN_HOST}:8080"
DEFAULT_AGGREGATOR_TARGET = f"{LISTEN_HOST}:9400"
"""The ports scripts/run-local.sh (`make run`) serves the API and aggregator metrics on."""
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
CONFIG_FILES = ("prometheus.yml", "alerts.yml")


class MonitorError(RuntimeError):
    """Prometheus is missing, its port is taken, or it did not start."""


def default_config_dir() -> Path:
    """The shipped ``deploy/prometheus`` (config, rules and their tests)."""
    found = shipped_deploy_path("prometheus/prometheus.yml")
    if found is None or not found.is_file():
        package = Path(adstream.__file__).resolve().parent
        raise MonitorError(f"no deploy/prometheus/prometheus.yml next to {package}")
    return found.parent


@dataclass(frozen=True)
class MonitorStatus:
    running: bool
    pid: int | None
    url: str
    ready: bool


class LocalPrometheus:
    """One Prometheus process owned by a state directory (config, data, pid file, log)."""

    def __init__(self, root: Path, port: int | None = None, source: Path | None = None) -> None:
        self.root = root
        self._port = port
        self.source = source or default_config_dir()
        self.config_dir = root / "config"
        self.config_file = self.config_dir / "prometheus.yml"
        self.data_dir = root / "data"
        self.pid_file = PidFile(root / "prometheus.pid")
        self.log_file = root / "prometheus.log"

    @property
    def port(self) -> int:
        """The port asked for, else the running server's, else 9090."""
        if self._port is not None:
            return self._port
        running = self._running()
        return running[1] if running else DEFAULT_PORT

    @property
    def url(self) -> str:
        return f"http://{LISTEN_HOST}:{self.port}"

    def configure(
        self,
        api: Sequence[str],
        aggregator: Sequence[str],
        kafka: Sequence[str] = (),
        node: Sequence[str] = (),
    ) -> None:
        """Copy the config and rules, and name the targets (a running server rereads them):
        the API, the aggregator's metrics port, the brokers' JMX exporters and node exporter."""
        targets = self.config_dir / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        for name in CONFIG_FILES:
            shutil.copyfile(self.source / name, self.config_dir / name)
        for name, hosts in (
            ("api", api),
            ("aggregator", aggregator),
            ("kafka", kafka),
            ("node", node),
        ):
            groups = [{"targets": list(hosts), "labels": {"service": name}}]
            scratch = targets / f".{name}.json.tmp"
            scratch.write_text(json.dumps(groups))
            scratch.replace(targets / f"{name}.json")  # never a half-written file to reread

    def _running(self) -> tuple[int, int] | None:
        """Pid and port from the pid file if that process is this directory's Prometheus."""
        config = f"--config.file={self.config_file}".encode()
        return self.pid_file.running(lambda cmdline, _port: config in cmdline)

    def running_pid(self) -> int | None:
        running = self._running()
        return running[0] if running else None

    def ready(self) -> bool:
        return answers_http(self.port, "/-/ready")

    def status(self) -> MonitorStatus:
        pid = self.running_pid()
        return MonitorStatus(pid is not None, pid, self.url, pid is not None and self.ready())

    def up(self) -> int:
        """Start Prometheus and return its pid once it answers ``/-/ready``; if it runs, have it
        reload its config and rules instead."""
        running = self._running()
        if running is not None:
            pid, port = running
            if self._port not in (None, port):
                raise MonitorError(f"already running on port {port}: run `adstream monitor down`")
            os.kill(pid, signal.SIGHUP)  # reread the config and rules configure() copied
            return pid
        binary = shutil.which("prometheus")
        if binary is None:
            raise MonitorError("prometheus not found: run scripts/system-deps.sh")
        if not self.config_file.is_file():
            raise MonitorError(f"no {self.config_file}: configure() the targets first")
        if not port_free(self.port):
            raise MonitorError(f"port {self.port} is in use: pass another --port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={LISTEN_HOST}:{self.port}",
            "--storage.tsdb.retention.time=7d",
        ]
        pid, failure = self.pid_file.start(
            command, self.log_file, self.port, self.ready, START_TIMEOUT_S
        )
        if failure is not None:
            self.down()
            raise MonitorError(f"prometheus {failure}; see {self.log_file}")
        return pid

    def down(self) -> bool:
        """Stop it (SIGTERM, then SIGKILL); False if it was not running."""
        return self.pid_file.stop(self.running_pid(), STOP_TIMEOUT_S)
