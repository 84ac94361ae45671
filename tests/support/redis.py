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
from tests.support.ports import free_port

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
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """As the test's administrator (the store's own user may not look around)."""
        return redis.Redis(
            port=self.port, username=ADMIN, password=ADMIN_PASSWORD, socket_timeout=2
        )

    def start(self) -> None:
        config = self.root / "redis.conf"
        config.write_text(
            f'port {self.port}\nbind 127.0.0.1\ndir {self.root}\nsave ""\nappendonly no\n'
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
def running_redis(cluster: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="adstream-redis-")), free_port(), cluster)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
