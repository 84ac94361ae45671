"""Start, stop and inspect the local Kafka broker process.

``up`` is idempotent and returns only once every listener answers and an admin
metadata request over mutual TLS succeeds; ``down`` asks for a controlled shutdown
(SIGTERM) so the next ``up`` finds the same cluster and data. Storage is formatted
once; topics, ACLs and the SCRAM users are created after the start through the Admin API,
from ``deploy/kafka.yaml`` + ``kafka.local.yaml`` (``adstream.local.provision``), so no
password is ever on a command line.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from adstream.kafka.apply import ApplyError
from adstream.kafka.desired_state import DesiredStateError
from adstream.kafka.factory import make_admin
from adstream.kafka.quotas import QuotaError, quota_client_if
from adstream.local.broker_state import (
    BrokerStatus,
    ListenerStatus,
    RunningState,
    file_size,
    log_excerpt,
    port_answers,
)
from adstream.local.certs import ensure_certificates
from adstream.local.client_configs import local_kafka_settings, write_java_client_properties
from adstream.local.jars import KafkaDistribution
from adstream.local.jmx_exporter import EXPORTER_CONFIG, ensure_agent, java_agent_option
from adstream.local.layout import (
    CLIENT_LISTENERS,
    LISTEN_HOST,
    SCRAM_USERS,
    BrokerLayout,
    Listener,
    Ports,
)
from adstream.local.ports import port_free
from adstream.local.processes import spawn_detached, wait_exit
from adstream.local.provision import ProvisionError, local_desired_state, provision
from adstream.local.secrets import LocalSecrets, SecretsFile
from adstream.local.server_config import log4j2_yaml, render_properties, server_properties
from adstream.local.toolchain import find_java

ProgressFn = Callable[[str], None]
DEFAULT_HEAP_MB = 512
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


class BrokerError(RuntimeError):
    """The broker could not be started or stopped; the message says why and what to do."""


class PortInUseError(BrokerError):
    def __init__(self, port: int, listener: Listener | str) -> None:
        what = f"{listener} listener" if isinstance(listener, Listener) else listener
        super().__init__(
            f"port {port} ({what}) is already in use on {LISTEN_HOST}: stop the "
            f"process using it, or start the broker with another --base-port"
        )
        self.port = port
        self.listener = listener


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class LocalBroker:
    """One KRaft node (combined broker + controller) in ``layout.root``: a single-node
    cluster, or one node of a local cluster (``nodes`` > 1, see ``adstream.local.cluster``)."""

    def __init__(
        self,
        layout: BrokerLayout,
        dist: KafkaDistribution,
        *,
        base_port: int = 9092,
        heap_mb: int = DEFAULT_HEAP_MB,
        state_file: Path | None = None,
        nodes: int = 1,
    ) -> None:
        self.layout = layout
        self.dist = dist
        self.ports = Ports(base_port, nodes)
        """Every node's ports: clients bootstrap from all of them."""
        self.node_id = layout.node_id or 1
        self.heap_mb = heap_mb
        self.state_file = state_file
        """The desired-state file whose local overlay ``up`` applies; None: deploy/kafka.yaml."""

    # ---- state -------------------------------------------------------------------------
    def secrets(self) -> LocalSecrets:
        return SecretsFile(self.layout.secrets_file).load_or_create(SCRAM_USERS)

    def running_pid(self) -> int | None:
        """The pid of this directory's broker if it is alive (not a stale pid file)."""
        state = RunningState.read(self.layout.state_file)
        if state is None:
            return None
        try:
            cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        ours = b"kafka.Kafka" in cmdline and str(self.layout.server_properties).encode() in cmdline
        return state.pid if ours else None

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        ports = self._effective_ports().node(self.node_id)
        listeners = tuple(
            ListenerStatus(name, ports.bootstrap(name), port_answers(ports.of(name)))
            for name in (*CLIENT_LISTENERS, Listener.CONTROLLER)
        )
        return BrokerStatus(running=pid is not None, pid=pid, listeners=listeners)

    def _effective_ports(self) -> Ports:
        """The ports of the running broker (from ``broker.json``), else the configured ones."""
        state = RunningState.read(self.layout.state_file)
        if state is not None and self.running_pid() is not None:
            return Ports(state.base_port, self.ports.nodes)
        return self.ports

    # ---- up ------------------------------------------------------------------------------
    def up(self, progress: ProgressFn | None = None) -> BrokerStatus:
        say = progress or (lambda _msg: None)
        pid = self.running_pid()
        if pid is not None:
            state = RunningState.read(self.layout.state_file)
            if state is not None and state.base_port != self.ports.base:
                raise BrokerError(
                    f"the broker in {self.layout.root} is already running with base port "
                    f"{state.base_port}; run `adstream kafka down` first to change ports"
                )
            say(f"Broker already running (pid {pid})")
            self.provision()
            return self.status()
        self.check_ports()
        self.prepare()
        if not self.layout.formatted_marker.exists():
            say("Formatting KRaft storage")
            self.format_storage()
        ensure_agent(cache_dir=self.dist.home.parent, progress=say)
        say(f"Starting Kafka {self.dist.version} (heap {self.heap_mb} MiB)")
        started = time.monotonic()
        starting = self.spawn()
        starting.wait_ready()
        say(f"Broker ready in {time.monotonic() - started:.1f}s (pid {starting.proc.pid})")
        self.provision()
        return self.status()

    def check_ports(self) -> None:
        """Raise ``PortInUseError`` if another process holds one of this node's ports."""
        ports = self.ports.node(self.node_id)
        for listener, port in ports.all().items():
            if not port_free(port):
                raise PortInUseError(port, listener)
        if not port_free(ports.metrics):
            raise PortInUseError(ports.metrics, "broker metrics")

    def spawn(self) -> Starting:
        """Start the prepared, formatted node; ``wait_ready`` on the answer."""
        log_offsets = (file_size(self.layout.server_log), file_size(self.layout.console_log))
        proc = self._spawn()
        RunningState(proc.pid, self.ports.base, self.heap_mb, self.dist.version).write(
            self.layout.state_file
        )
        return Starting(self, proc, log_offsets)

    def prepare(self) -> LocalSecrets:
        """Write secrets, certificates and configuration files (nothing is started)."""
        for folder in (self.layout.root, self.layout.data_dir, self.layout.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        secrets = self.secrets()
        store_password = secrets.store_password.get_secret_value()
        ensure_certificates(self.layout, store_password)
        props = server_properties(self.layout, self.ports, store_password)
        fd = os.open(self.layout.server_properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(render_properties(props))
        self.layout.log4j_config.write_text(log4j2_yaml(self.layout))
        self.layout.jmx_exporter_config.write_text(EXPORTER_CONFIG)
        write_java_client_properties(self.layout, self.ports, secrets)
        return secrets

    def _java(self, main: str, *args: str, heap_mb: int) -> list[str]:
        # The whole heap from the start: a broker that began at 128 MiB kept its old
        # generation ~85% full under load, so G1 ran one concurrent cycle after another
        # (a remark pause every ~60 ms, and the marking thread's CPU taken from clients).
        return [
            str(find_java()),
            f"-Xmx{heap_mb}m",
            f"-Xms{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.layout.log4j_config}",
            "-cp",
            self.dist.classpath,
            main,
            *args,
        ]

    def format_args(self, cluster_id: str) -> list[str]:
        """StorageTool's arguments: no secrets (the SCRAM users come later, see ``provision``;
        the store password is in the mode-600 server.properties)."""
        return [
            "format",
            f"--cluster-id={cluster_id}",  # "=": an id may start with "-"
            f"--config={self.layout.server_properties}",
        ]

    def format_storage(self, cluster_id: str | None = None) -> None:
        """Format the KRaft storage of a new cluster (a fresh id unless a cluster's nodes
        share one)."""
        args = self.format_args(cluster_id or new_cluster_id())
        cmd = self._java("kafka.tools.StorageTool", *args, heap_mb=256)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise BrokerError(
                f"formatting KRaft storage failed ({' '.join(args)}):\n{done.stdout}{done.stderr}"
            )

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = self._java("kafka.Kafka", str(self.layout.server_properties), heap_mb=self.heap_mb)
        # Broker metrics for Prometheus, as MSK's open monitoring serves them (jmx_exporter).
        agent = ensure_agent(cache_dir=self.dist.home.parent)
        metrics_port = self.ports.node(self.node_id).metrics
        cmd.insert(1, java_agent_option(agent, metrics_port, self.layout.jmx_exporter_config))
        return spawn_detached(cmd, self.layout.console_log, cwd=self.layout.root)

    def failure(self, reason: str, log_offsets: tuple[int, int]) -> str:
        server, console = log_offsets
        return "\n".join(
            [
                f"{reason}.",
                log_excerpt(self.layout.server_log, server),
                log_excerpt(self.layout.console_log, console, lines=10),
            ]
        )

    def admin(self) -> AdminClient:
        """An AdminClient authenticated as the ``admin`` super user over mutual TLS."""
        return make_admin(local_kafka_settings(self.layout, self.ports, "admin"))

    def metadata_answers(self) -> bool:
        """This node answers a metadata request (over mutual TLS) and lists itself."""
        own = self.ports.node(self.node_id)
        try:
            metadata = make_admin(local_kafka_settings(self.layout, own, "admin")).list_topics(
                timeout=2.0
            )
        except Exception:
            return False
        return self.node_id in metadata.brokers

    def provision(self) -> None:
        """Apply the desired state's local overlay (``up`` is idempotent: a second run finds
        nothing to change); wait until each new SCRAM user can log in."""
        try:
            desired = local_desired_state(self.state_file, self.ports.nodes)
            admin = local_kafka_settings(self.layout, self.ports, "admin")
            with quota_client_if(desired.quotas is not None, admin) as quotas:
                created = provision(self.admin(), desired, self.secrets(), quotas=quotas)
        except (DesiredStateError, ApplyError, ProvisionError, QuotaError) as exc:
            raise BrokerError(f"provisioning the broker failed: {exc}") from exc
        deadline = time.monotonic() + START_TIMEOUT_S
        for user in created:  # the broker lists a user a moment before it authenticates it
            while not self._scram_login_works(user):
                if time.monotonic() > deadline:
                    raise BrokerError(f"the SCRAM user {user} cannot log in on SASL_SSL")
                time.sleep(0.1)

    def _scram_login_works(self, user: str) -> bool:
        settings = local_kafka_settings(
            self.layout, self.ports, user, Listener.SASL_SSL, self.secrets()
        )
        try:
            make_admin(settings).list_topics(timeout=2.0)
        except Exception:
            return False
        return True

    # ---- down ----------------------------------------------------------------------------
    def down(self, progress: ProgressFn | None = None, *, kill: bool = False) -> bool:
        """Stop the broker gracefully (``kill``: SIGKILL, a crash); True if one was running."""
        say = progress or (lambda _msg: None)
        pid = self.running_pid()
        if pid is None:
            say("Broker is not running")
            return False
        if kill:
            say(f"Killing broker (pid {pid}, SIGKILL)")
            self.kill(pid)
            return True
        say(f"Stopping broker (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        if not wait_exit(pid, STOP_TIMEOUT_S):
            say(f"Broker did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
            self.kill(pid)
        say("Broker stopped")
        return True

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 10)


@dataclass(frozen=True)
class Starting:
    """A node process just spawned: ``wait_ready`` returns once it serves clients."""

    broker: LocalBroker
    proc: subprocess.Popen[bytes]
    log_offsets: tuple[int, int]

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until every client listener answers and the node lists itself in the metadata it
        serves; a node that exits or stays silent is reported with its log's errors."""
        broker, proc = self.broker, self.proc
        own = broker.ports.node(broker.node_id)
        deadline = time.monotonic() + timeout
        waiting = list(CLIENT_LISTENERS)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                reason = f"the broker exited with code {proc.returncode}"
                raise BrokerError(broker.failure(reason, self.log_offsets))
            waiting = [name for name in waiting if not port_answers(own.of(name), 0.5)]
            if not waiting and broker.metadata_answers():
                return
            time.sleep(0.25)
        broker.kill(proc.pid)
        reason = f"the broker did not answer within {timeout:.0f}s"
        raise BrokerError(broker.failure(reason, self.log_offsets))
