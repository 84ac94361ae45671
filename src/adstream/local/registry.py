"""A local schema registry: Apicurio Registry 3 on loopback, `adstream registry up | down | status`.

Apicurio serves the Confluent-compatible API at ``/apis/ccompat/v7`` (what confluent-kafka's
``SchemaRegistryClient`` speaks), so local runs and tests use the same client code as a
Confluent or Apicurio registry beside MSK. It listens on ``127.0.0.1`` only, on ``port``
(default 8081) and its Quarkus management interface on ``port + 1``; storage is in memory
(H2) unless PostgreSQL is named, so an in-memory registry forgets its schemas on ``down``.
``up`` returns once the API answers and the global compatibility is set (``BACKWARD`` by
default: a new schema must read the data written with the previous one). The process
outlives the command, like the local broker, until ``down`` (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from adstream.local.jars import ProgressFn
from adstream.local.layout import LISTEN_HOST
from adstream.local.ports import port_free
from adstream.local.processes import alive, spawn_detached, stop, wait_ready
from adstream.local.registry_dist import RegistryDistribution
from adstream.local.toolchain import find_java_at_least

DEFAULT_PORT = 8081
DEFAULT_HEAP_MB = 384
MIN_JAVA = 21
"""Apicurio Registry 3.3 is built for Java 21 (class file version 65)."""
CCOMPAT_PATH = "/apis/ccompat/v7"
COMPATIBILITY_LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class RegistryError(RuntimeError):
    """The registry could not be started, configured or stopped; the message says why."""


@dataclass(frozen=True)
class PostgresStorage:
    """Apicurio's SQL storage on PostgreSQL instead of in-memory H2."""

    jdbc_url: str
    username: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> PostgresStorage:
        """From ``postgresql://user:password@host:port/db`` (the form the aggregator takes)."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise RegistryError(f"not a postgresql://user:password@host:port/db URL: {url!r}")
        port = f":{parts.port}" if parts.port else ""
        query = f"?{parts.query}" if parts.query else ""
        return cls(
            f"jdbc:postgresql://{parts.hostname}{port}{parts.path}{query}",
            unquote(parts.username or ""),
            unquote(parts.password or ""),
        )


@dataclass(frozen=True)
class RunningRegistry:
    """What ``registry.json`` records about the process ``up`` started."""

    pid: int
    port: int
    management_port: int
    storage: str
    java: str
    version: str


@dataclass(frozen=True)
class RegistryStatus:
    running: bool
    answers: bool
    state: RunningRegistry | None
    url: str
    compatibility: str | None


class LocalRegistry:
    """One Apicurio Registry process owned by a state directory (state file, log)."""

    def __init__(
        self,
        root: Path,
        dist: RegistryDistribution,
        *,
        port: int | None = None,
        heap_mb: int = DEFAULT_HEAP_MB,
        storage: PostgresStorage | None = None,
        compatibility: str = "BACKWARD",
    ) -> None:
        if compatibility not in COMPATIBILITY_LEVELS:
            raise RegistryError(
                f"compatibility {compatibility!r} is not one of {', '.join(COMPATIBILITY_LEVELS)}"
            )
        self.root = root
        self.dist = dist
        self._port = port
        self.heap_mb = heap_mb
        self.storage = storage
        self.compatibility = compatibility
        self.state_file = root / "registry.json"
        self.log_file = root / "registry.log"

    # ---- where ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port asked for, else the running registry's, else 8081."""
        if self._port is not None:
            return self._port
        running = self.running()
        return running.port if running else DEFAULT_PORT

    @property
    def url(self) -> str:
        """The Confluent-compatible API, as ``ADSTREAM_SCHEMA_REGISTRY_URL`` takes it."""
        return f"http://{LISTEN_HOST}:{self.port}{CCOMPAT_PATH}"

    # ---- state ----------------------------------------------------------------------------
    def running(self) -> RunningRegistry | None:
        """The recorded process if it still runs and is this directory's registry."""
        try:
            state = RunningRegistry(**json.loads(self.state_file.read_text()))
            cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, TypeError):
            return None
        if self._marker().encode() not in cmdline or not alive(state.pid):
            return None
        return state

    def _marker(self) -> str:
        return f"-Dadstream.registry.dir={self.root}"

    def answers(self) -> bool:
        try:
            self._request("GET", "/subjects", timeout=2)
        except RegistryError:
            return False
        return True

    def status(self) -> RegistryStatus:
        state = self.running()
        answers = state is not None and self.answers()
        compatibility = self.global_compatibility() if answers else None
        return RegistryStatus(state is not None, answers, state, self.url, compatibility)

    def global_compatibility(self) -> str | None:
        body = self._request("GET", "/config")
        level = body.get("compatibilityLevel") or body.get("compatibility")
        return str(level) if level else None

    # ---- lifecycle ------------------------------------------------------------------------
    def command(self, java: Path) -> list[str]:
        """The ``java`` command line (no secret: a PostgreSQL password goes by environment)."""
        management_port = self.port + 1
        props = {
            "quarkus.http.host": LISTEN_HOST,
            "quarkus.http.port": self.port,
            "quarkus.management.host": LISTEN_HOST,
            "quarkus.management.port": management_port,
            "quarkus.log.console.color": "false",
        }
        if self.storage is not None:
            props |= {
                "apicurio.storage.kind": "sql",
                "apicurio.storage.sql.kind": "postgresql",
                "apicurio.datasource.url": self.storage.jdbc_url,
                "apicurio.datasource.username": self.storage.username,
            }
        return [
            str(java),
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 64)}m",
            self._marker(),
            *(f"-D{key}={value}" for key, value in props.items()),
            "-jar",
            str(self.dist.run_jar),
        ]

    def up(self, progress: ProgressFn | None = None) -> RegistryStatus:
        """Start the registry (idempotent) and set its global compatibility."""
        say = progress or (lambda _msg: None)
        running = self.running()
        if running is not None:
            if self._port not in (None, running.port):
                raise RegistryError(
                    f"already running on port {running.port}: run `adstream registry down`"
                )
            self._set_compatibility()
            return self.status()
        java, version = find_java_at_least(MIN_JAVA, f"Apicurio Registry {self.dist.version}")
        say(f"Using Java {version}: {java}")
        for port in (self.port, self.port + 1):
            if not port_free(port):
                raise RegistryError(
                    f"port {port} is in use on {LISTEN_HOST}: stop what uses it or pass "
                    "another --port (the registry takes PORT and PORT+1)"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.storage is not None:
            env["APICURIO_DATASOURCE_PASSWORD"] = self.storage.password
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        process = spawn_detached(self.command(java), self.log_file, cwd=self.dist.home, env=env)
        state = RunningRegistry(
            process.pid,
            self.port,
            self.port + 1,
            "postgresql" if self.storage else "in-memory",
            str(java),
            self.dist.version,
        )
        self.state_file.write_text(json.dumps(asdict(state)))
        say(f"Starting Apicurio Registry {self.dist.version} on {self.url}")
        failure = wait_ready(process, self.answers, START_TIMEOUT_S, poll_s=0.2)
        if failure is not None:
            if process.poll() is None:
                self.down()
            raise RegistryError(
                f"the registry {failure}:\n{self._log_tail(log_start)}\n(full log: {self.log_file})"
            )
        self._set_compatibility()
        return self.status()

    def _set_compatibility(self) -> None:
        self._request("PUT", "/config", {"compatibility": self.compatibility})

    def down(self) -> bool:
        """Stop it (SIGTERM, then SIGKILL); False if it was not running."""
        state = self.running()
        if state is None:
            self.state_file.unlink(missing_ok=True)
            return False
        stop(state.pid, STOP_TIMEOUT_S)
        self.state_file.unlink(missing_ok=True)
        return True

    # ---- helpers --------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, body: object = None, timeout: float = 10
    ) -> dict[str, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a fixed http://127.0.0.1 URL
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RegistryError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        except (OSError, urllib.error.URLError) as exc:
            raise RegistryError(f"{method} {path}: {exc}") from exc
        parsed = json.loads(payload) if payload else {}
        return parsed if isinstance(parsed, dict) else {"items": parsed}

    def _log_tail(self, since: int, lines: int = 25) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
