from __future__ import annotations

import json
from pathlib import Path

from adstream.local.broker import LocalBroker
from adstream.local.jars import KafkaDistribution
from adstream.local.layout import SCRAM_USERS, BrokerLayout, Ports
from adstream.local.secrets import SecretsFile
from adstream.local.server_config import render_properties, server_properties


def test_secrets_are_created_once_and_kept(tmp_path: Path) -> None:
    file = SecretsFile(tmp_path / "secrets.json")
    first = file.load_or_create(("a", "b"))
    again = file.load_or_create(("a", "b", "c"))
    assert again.scram_password("a") == first.scram_password("a")
    assert again.store_password == first.store_password
    assert "c" in json.loads(file.path.read_text())["scram_passwords"]
    assert file.path.stat().st_mode & 0o077 == 0


def test_secrets_never_show_in_repr(tmp_path: Path) -> None:
    loaded = SecretsFile(tmp_path / "s.json").load_or_create(("a",))
    assert loaded.scram_password("a") not in repr(loaded)
    assert loaded.store_password.get_secret_value() not in repr(loaded)


def test_server_properties_match_the_msk_security_posture(tmp_path: Path) -> None:
    props = server_properties(BrokerLayout.at(tmp_path), Ports(9092), "pw")
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9094,SASL_SSL://127.0.0.1:9096,"
        "CONTROLLER://127.0.0.1:9093"
    )
    assert props["ssl.enabled.protocols"] == "TLSv1.2,TLSv1.3"
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:broker"
    assert props["auto.create.topics.enable"] == "false"
    assert props["unclean.leader.election.enable"] == "false"
    # The controller listener is never plaintext, so ANONYMOUS is never a controller client.
    assert "CONTROLLER:SSL" in props["listener.security.protocol.map"]


def test_rendered_properties_escape_backslashes(tmp_path: Path) -> None:
    text = render_properties({"a": "C:\\dir", "b": "x"})
    assert "a=C:\\\\dir\n" in text
    assert text.endswith("b=x\n")


def test_storage_format_arguments_hold_no_password(tmp_path: Path) -> None:
    """They end up in /proc/<pid>/cmdline, readable by every local user."""
    broker = LocalBroker(BrokerLayout.at(tmp_path), KafkaDistribution("4.1.1", tmp_path / "k"))
    secrets = broker.prepare()
    args = " ".join(broker.format_args("AAAAAAAAAAAAAAAAAAAAAA"))
    assert "--cluster-id=AAAAAAAAAAAAAAAAAAAAAA" in args
    for user in SCRAM_USERS:
        assert secrets.scram_password(user) not in args
    assert secrets.store_password.get_secret_value() not in args
    assert "password" not in args
