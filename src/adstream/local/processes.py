"""The local background processes (brokers, Prometheus, the node exporter, the registry,
Kafka Connect): starting one detached with its output in a log, waiting until it answers,
whether it still runs, and stopping it. A zombie whose threads have all ended counts as
stopped, and our own exited children are reaped."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from adstream.local.layout import LISTEN_HOST


def alive(pid: int) -> bool:
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    if state != "Z":
        return True
    # A zombie leader whose other threads still run (a JVM part-way through exit_group)
    # still holds its sockets: the process has exited only once its last thread has.
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/task").iterdir()) > 1
    except OSError:
        return False


def wait_exit(pid: int, timeout: float) -> bool:
    """True once `pid` has exited; False if it still runs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it still runs after `timeout` seconds; returns once it exited."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_exit(pid, timeout):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_exit(pid, timeout)


def spawn_detached(
    command: Sequence[str],
    log_file: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (it outlives the CLI and is not killed by the
    shell's Ctrl-C), its stdout and stderr appended to `log_file`."""
    with log_file.open("ab") as log:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    poll_s: float = 0.1,
) -> str | None:
    """None once `ready()` is true; else why not: the process exited, or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        if time.monotonic() > deadline:
            return f"did not answer within {timeout:.0f}s"
        time.sleep(poll_s)
    return None


def answers_http(port: int, path: str) -> bool:
    """``GET http://127.0.0.1:<port><path>`` answers 200 (a readiness probe)."""
    connection = http.client.HTTPConnection(LISTEN_HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@dataclass(frozen=True)
class PidFile:
    """A server this tool started (Prometheus, the node exporter), recorded as ``<pid> <port>``.

    The record is trusted only while that pid runs a command line its owner recognises
    (`ours`): a stale file or a reused pid reads as not running.
    """

    path: Path

    def running(self, ours: Callable[[list[bytes], int], bool]) -> tuple[int, int] | None:
        """Pid and port, if the recorded process runs and `ours(cmdline, port)` says it is."""
        try:
            pid_text, port_text = self.path.read_text().split()
            pid, port = int(pid_text), int(port_text)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return (pid, port) if ours(cmdline, port) else None

    def start(
        self,
        command: Sequence[str],
        log_file: Path,
        port: int,
        ready: Callable[[], bool],
        timeout: float,
    ) -> tuple[int, str | None]:
        """Start `command` detached, record it, wait until `ready()`: its pid, and why it
        did not become ready (None once it did; see `wait_ready`)."""
        process = spawn_detached(command, log_file)
        self.path.write_text(f"{process.pid} {port}\n")
        return process.pid, wait_ready(process, ready, timeout)

    def stop(self, pid: int | None, timeout: float) -> bool:
        """Stop the recorded process (`pid`, from `running`) and forget it; False if none ran."""
        if pid is None:
            return False
        stop(pid, timeout)
        self.path.unlink(missing_ok=True)
        return True
