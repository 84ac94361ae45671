from __future__ import annotations

import pytest

from adstream.local.layout import BrokerLayout, Listener, Ports


def test_ports_mirror_msk_from_the_default_base() -> None:
    assert Ports().all() == {
        Listener.PLAINTEXT: 9092,
        Listener.CONTROLLER: 9093,
        Listener.SSL: 9094,
        Listener.SASL_SSL: 9096,
    }


def test_base_port_shifts_every_listener_together() -> None:
    assert Ports(29092).bootstrap(Listener.SASL_SSL) == "127.0.0.1:29096"
    assert Ports(29092).of(Listener.CONTROLLER) == 29093


@pytest.mark.parametrize("base", [80, 65533])
def test_base_port_out_of_range_is_refused(base: int) -> None:
    with pytest.raises(ValueError, match=f"base port {base} is out of range"):
        Ports(base)


def test_layout_paths_are_absolute_and_under_the_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    layout = BrokerLayout.at(tmp_path / "k")
    assert layout.keystore_jks("adstream-api") == tmp_path / "k/certs/adstream-api.keystore.jks"
    assert layout.client_properties("tls") == tmp_path / "k/client-tls.properties"
    assert layout.server_log == tmp_path / "k/logs/server.log"
