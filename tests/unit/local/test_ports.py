from __future__ import annotations

import socket

from adstream.local.layout import LISTEN_HOST, Ports
from adstream.local.ports import port_free
from tests.support.ports import ephemeral_port_floor, free_base_port, free_port


def test_a_block_lies_below_the_ephemeral_range() -> None:
    for start in (None, 20000, ephemeral_port_floor() - 5, 59990):
        ports = Ports(free_base_port(start=start)).all().values()
        assert max(ports) < ephemeral_port_floor()
        assert all(port_free(p) for p in ports)


def test_excluded_and_taken_ports_are_skipped() -> None:
    free = free_base_port()
    with socket.socket() as squatter:
        squatter.bind((LISTEN_HOST, free))
        squatter.listen()
        assert not port_free(free)
        assert free_base_port(start=free) != free
    assert free_base_port(exclude=Ports(free).all().values(), start=free) != free


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((LISTEN_HOST, port))
