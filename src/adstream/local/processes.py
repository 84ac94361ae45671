"""Whether a background process (the broker, Prometheus) is still running, and waiting for
it to stop: a zombie whose threads have all ended counts as stopped, and our own exited
children are reaped."""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path


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
