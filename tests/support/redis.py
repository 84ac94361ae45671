"""A throwaway Redis server from the Debian package (`redis-server`), in a temporary folder.

For the shared rate-limit store (`adstream.ingest.limits_redis`). Loopback only, nothing
saved to disk, and the same ACL as on AWS: the default user is off and the store's user
may run only what `ACCESS_STRING` allows, so a command the store starts to need fails
here before it fails on ElastiCache.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from adstream.ingest.limits_redis import ACCESS_STRING
from adstream.local import processes
from adstream.local.certs import CertificateAuthority
from tests.support.ports import free_port, port_pair

USER, PASSWORD = "adstream", "test-password-0123456789"
ADMIN, ADMIN_PASSWORD = "admin", "admin-password-0123456789"
"""The tests' own user, to look inside and to empty the server between tests."""


def _binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed: run scripts/system-deps.sh")
    return found


@dataclass
class RedisServer:
    root: Path
    port: int
    cluster: bool = False
    """Cluster mode (one node owning every slot), as ElastiCache Serverless runs."""
    tls: bool = False
    """TLS only (no plaintext port), with a certificate of a CA of its own (`ca_file`)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        """As the test's administrator (the store's own user may not look around)."""
        tls = {"ssl": True, "ssl_ca_certs": str(self.ca_file)} if self.tls else {}
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=ADMIN,
            password=ADMIN_PASSWORD,
            socket_timeout=2,
            **tls,
        )

    def _tls_config(self) -> str:
        if not self.ca_file.exists():  # once: a restart keeps the certificate clients trust
            ca = CertificateAuthority.create("adstream test Redis CA")
            server = ca.issue("redis", ip_addresses=("127.0.0.1",), server=True)
            (self.root / "server.pem").write_bytes(server.cert_pem())
            (self.root / "server.key").write_bytes(server.key_pem())
            self.ca_file.write_bytes(ca.pair.cert_pem())
        return (
            f"port 0\ntls-port {self.port}\ntls-cert-file {self.root}/server.pem\n"
            f"tls-key-file {self.root}/server.key\ntls-ca-cert-file {self.ca_file}\n"
            "tls-auth-clients no\n"
        )

    def start(self) -> None:
        config = self.root / "redis.conf"
        listen = self._tls_config() if self.tls else f"port {self.port}\n"
        config.write_text(
            f'{listen}bind 127.0.0.1\ndir {self.root}\nsave ""\nappendonly no\n'
            f"user default off\nuser {USER} {ACCESS_STRING} >{PASSWORD}\n"
            f"user {ADMIN} on ~* +@all >{ADMIN_PASSWORD}\n"
            + (
                f"cluster-enabled yes\ncluster-config-file {self.root}/nodes.conf\n"
                if self.cluster
                else ""
            )
        )
        self.process = processes.spawn_detached([_binary(), str(config)], self.root / "redis.log")
        why = processes.wait_ready(self.process, self._answers, timeout=30)
        if why is not None:
            log = (self.root / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server {why}:\n{log}")
        if self.cluster and not self._cluster_ok():
            if not self.client().execute_command("CLUSTER SLOTS"):
                self.client().execute_command("CLUSTER ADDSLOTSRANGE", 0, 16383)
            why = processes.wait_ready(self.process, self._cluster_ok, timeout=30)
            if why is not None:
                raise RuntimeError(f"redis-server cluster {why}")

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process.pid, timeout=10)
            self.process = None

    def _cluster_ok(self) -> bool:
        return bool(self.client().execute_command("CLUSTER INFO")["cluster_state"] == "ok")

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False


@contextlib.contextmanager
def running_redis(cluster: bool = False, tls: bool = False) -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="adstream-redis-"))
    # A cluster node's bus listens on its port + 10000, so its port must be 55535 or less.
    port = port_pair(10000, highest=55535) if cluster else free_port()
    server = RedisServer(root, port, cluster=cluster, tls=tls)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
