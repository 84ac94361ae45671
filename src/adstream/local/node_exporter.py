"""The Prometheus node exporter beside the local brokers, started by `adstream monitor up`
where Debian's ``prometheus-node-exporter`` is installed: it feeds ``KafkaDiskAlmostFull``
(job ``kafka-node``) as MSK open monitoring's port 11002 does. Optional: without the binary
the monitor runs without it. Loopback only, with just the collectors the rules and a look at
the host need; its pid file and log sit in the monitor's state directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from adstream.local.layout import LISTEN_HOST
from adstream.local.monitor import MonitorError
from adstream.local.ports import port_free
from adstream.local.processes import PidFile, answers_http

DEFAULT_NODE_PORT = 9100
BINARY = "prometheus-node-exporter"
COLLECTORS = ("filesystem", "cpu", "meminfo", "loadavg")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0


class NodeExporterError(MonitorError):
    """Its port is taken, it runs on another port, or it did not start."""


class LocalNodeExporter:
    """One node exporter process owned by a state directory (pid file and log)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self._port = port
        self.pid_file = PidFile(root / "node-exporter.pid")
        self.log_file = root / "node-exporter.log"

    @staticmethod
    def binary() -> str | None:
        return shutil.which(BINARY)

    @property
    def port(self) -> int:
        """The port asked for, else the running exporter's, else 9100."""
        if self._port is not None:
            return self._port
        running = self._running()
        return running[1] if running else DEFAULT_NODE_PORT

    @property
    def target(self) -> str:
        return f"{LISTEN_HOST}:{self.port}"

    def _running(self) -> tuple[int, int] | None:
        """Pid and port from the pid file if that process is a node exporter on that port."""
        return self.pid_file.running(self._ours)

    @staticmethod
    def _ours(cmdline: list[bytes], port: int) -> bool:
        listen = f"--web.listen-address={LISTEN_HOST}:{port}".encode()
        return listen in cmdline and cmdline[0].endswith(BINARY.encode())

    def running_pid(self) -> int | None:
        running = self._running()
        return running[0] if running else None

    def ready(self) -> bool:
        return answers_http(self.port, "/metrics")

    def up(self) -> int | None:
        """Start it and return its pid once ``/metrics`` answers (the running one's if it
        runs); None if the binary is not installed."""
        running = self._running()
        if running is not None:
            pid, port = running
            if self._port not in (None, port):
                raise NodeExporterError(
                    f"node exporter already running on port {port}: run `adstream monitor down`"
                )
            return pid
        binary = self.binary()
        if binary is None:
            return None
        if not port_free(self.port):
            raise NodeExporterError(f"port {self.port} is in use: pass another --node-port")
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            f"--web.listen-address={LISTEN_HOST}:{self.port}",
            "--collector.disable-defaults",
            *(f"--collector.{name}" for name in COLLECTORS),
        ]
        pid, failure = self.pid_file.start(
            command, self.log_file, self.port, self.ready, START_TIMEOUT_S
        )
        if failure is not None:
            self.down()
            raise NodeExporterError(f"node exporter {failure}; see {self.log_file}")
        return pid

    def down(self) -> bool:
        """Stop it (SIGTERM, then SIGKILL); False if it was not running."""
        return self.pid_file.stop(self.running_pid(), STOP_TIMEOUT_S)
