"""Free loopback ports: for a second broker beside a developer's, a test server, PostgreSQL."""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Collection

from adstream.local.layout import LISTEN_HOST, Ports


def port_free(port: int) -> bool:
    """True if nothing listens on ``LISTEN_HOST:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LISTEN_HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LISTEN_HOST, 0))
        return int(sock.getsockname()[1])


def free_base_port(exclude: Collection[int] = (), start: int | None = None) -> int:
    """A base port whose whole block of broker listener ports is free.

    The search starts at a random place so that runs side by side (a developer's tests
    and a colleague's benchmark on one machine) rarely race for the same block.
    """
    first: int = start if start is not None else random.randrange(20000, 40000, 10)  # noqa: S311
    candidates: list[int] = [*range(first, 60000, 10), *range(20000, first, 10)]
    for base in candidates:
        ports = Ports(base).all().values()
        if not set(ports) & set(exclude) and all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free block of ports on the loopback interface")
