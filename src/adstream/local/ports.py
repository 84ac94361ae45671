"""Whether a loopback port is free: the broker checks its listener ports before it starts."""

from __future__ import annotations

import errno
import socket

from adstream.local.layout import LISTEN_HOST


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
