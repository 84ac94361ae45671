"""What a local broker node leaves behind to be inspected: its state file (``broker.json``),
whether its listeners answer, and the interesting part of its log after a failed start."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from adstream.local.layout import LISTEN_HOST, Listener


@dataclass(frozen=True)
class RunningState:
    """What ``broker.json`` records about the process started by ``up``."""

    pid: int
    base_port: int
    heap_mb: int
    kafka_version: str

    @classmethod
    def read(cls, path: Path) -> RunningState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n")


@dataclass(frozen=True)
class ListenerStatus:
    listener: Listener
    bootstrap: str
    answers: bool


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    listeners: tuple[ListenerStatus, ...]


def port_answers(port: int, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LISTEN_HOST, port), timeout):
        return True
    return False


def log_excerpt(path: Path, since: int = 0, lines: int = 25) -> str:
    """The ERROR lines written after byte ``since``, then the last ``lines`` lines."""
    try:
        with path.open("rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    errors = [line for line in text if " ERROR " in line or " FATAL " in line]
    parts = []
    if errors:
        parts.append("errors:\n" + "\n".join(errors[-10:]))
    parts.append(f"last lines of {path}:\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
