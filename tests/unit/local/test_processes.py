"""`alive`: a process has exited only once its last thread has, even when its main thread
ended first (a JVM between the start and the end of its exit still holds its sockets)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from adstream.local.processes import alive, spawn_detached, stop, wait_exit, wait_ready

_LEADER_EXITS_FIRST = """
import ctypes, sys, threading, time
threading.Thread(target=lambda: (sys.stdin.read(), None), daemon=False).start()
print("ready", flush=True)
ctypes.CDLL(None).pthread_exit(None)  # the main thread ends, the process goes on
"""


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]


def test_a_zombie_leader_with_running_threads_is_alive() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _LEADER_EXITS_FIRST],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "Z":  # the leader thread has ended
        assert time.monotonic() < deadline, _state(proc.pid)
        time.sleep(0.01)
    assert alive(proc.pid)  # ... but its other thread still runs
    assert proc.stdin is not None
    proc.stdin.close()  # the last thread ends
    assert wait_exit(proc.pid, 10)
    assert not alive(proc.pid)


_IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_kills_what_ignores_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _IGNORES_SIGTERM], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    stop(proc.pid, 0.5)
    assert not alive(proc.pid)


def test_wait_ready_says_why_a_detached_process_is_not_ready(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    failing = spawn_detached([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], log)
    assert wait_ready(failing, lambda: False, timeout=10) == "exited with code 3"
    assert "boom" in log.read_text()  # its output went to the log
    sleeping = spawn_detached([sys.executable, "-c", "import time; time.sleep(30)"], log)
    try:
        assert os.getsid(sleeping.pid) == sleeping.pid  # in a session of its own
        assert wait_ready(sleeping, lambda: False, timeout=0.3) == "did not answer within 0s"
        assert wait_ready(sleeping, lambda: True, timeout=0.3) is None
    finally:
        stop(sleeping.pid, 5)
    assert not alive(sleeping.pid)
