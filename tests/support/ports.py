"""Free loopback ports for tests and benchmarks: a second broker, a test server, PostgreSQL."""

from __future__ import annotations

import random
import socket
from collections.abc import Collection
from pathlib import Path

from adstream.local.layout import LISTEN_HOST, NODE_PORT_STEP, Ports
from adstream.local.ports import port_free


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LISTEN_HOST, 0))
        return int(sock.getsockname()[1])


LOWEST_BASE_PORT = 20000


def port_pair(offset: int, highest: int = 65535) -> int:
    """A free loopback port `p` with `p + offset` free too and at most `highest` (Redis
    Cluster's bus listens on its port + 10000, and refuses a port above 55535)."""
    for _ in range(1000):
        port = random.randrange(LOWEST_BASE_PORT, highest + 1)
        if port + offset <= 65535 and port_free(port) and port_free(port + offset):
            return port
    raise RuntimeError("no free pair of ports on the loopback interface")


def ephemeral_port_floor() -> int:
    """The first port the kernel hands to outgoing connections (Linux default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(exclude: Collection[int] = (), start: int | None = None, nodes: int = 1) -> int:
    """A base port whose whole block of broker listener ports (of ``nodes`` nodes) is free.

    Blocks lie below the kernel's ephemeral range: a port there can be taken by any
    outgoing connection between this check and the broker's bind. The search starts
    at a random place so that runs side by side (a developer's tests and a colleague's
    benchmark on one machine) rarely race for the same block.
    """
    high = max(ephemeral_port_floor(), LOWEST_BASE_PORT + 100) - NODE_PORT_STEP * (nodes - 1)
    first: int = start if start is not None else random.randrange(LOWEST_BASE_PORT, high - 10, 10)
    candidates: list[int] = [
        *range(first, high - 10, 10),
        *range(LOWEST_BASE_PORT, min(first, high - 10), 10),
    ]
    for base in candidates:
        ports = Ports(base, nodes).every_port()
        if not set(ports) & set(exclude) and all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free block of ports on the loopback interface")
