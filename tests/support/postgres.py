"""A throwaway PostgreSQL server from the Debian packages, in a temporary folder.

For tests and benchmarks of the PostgreSQL count store. initdb refuses to run as
root, so under root (as in CI) the server runs as the ``postgres`` user that the
Debian package creates. Trust authentication, loopback only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.ports import free_port


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/system-deps.sh")
    return found[-1].parent


@dataclass
class PostgresServer:
    root: Path
    port: int
    user: str = "adstream"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # name is ours: t_ + hex
        return self.url(name)

    def restart(self) -> None:
        """Stop at once (``-m immediate``: no checkpoint, clients cut off, crash recovery at
        the next start) and start again on the same port."""
        data = self.root / "data"
        cmd = [str(_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "restart"]
        cmd += ["-l", str(self.root / "server.log")]
        subprocess.run(_as_server_user(cmd), check=True, capture_output=True, timeout=120)


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bindir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="adstream-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(root, free_port())
    data = root / "data"

    def run(*cmd: object) -> None:
        subprocess.run(
            _as_server_user([str(c) for c in cmd]), check=True, capture_output=True, timeout=120
        )

    run(bindir / "initdb", "-D", data, "-A", "trust", "-U", server.user, "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c max_connections=50"
    run(bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-o", options, "-w", "start")
    try:
        yield server
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
