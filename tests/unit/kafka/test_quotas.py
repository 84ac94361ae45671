"""Client quotas: the file's schema, the diff, the MSK Serverless skip, and the kafka-python
connection made from the same settings as every other client (no broker here; the real
broker tests are in tests/integration/test_kafka_as_code.py)."""

from __future__ import annotations

import base64
import socket
import ssl
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from adstream.kafka.apply import scope_for
from adstream.kafka.desired_state import (
    DesiredStateError,
    QuotaEntity,
    QuotaKey,
    load_desired_state,
    parse_desired_state,
)
from adstream.kafka.plan import AlterQuota, LiveState, Plan, compute_plan
from adstream.kafka.quotas import kafka_python_config
from adstream.kafka.settings import KafkaSettings
from tests.unit.kafka.kafka_testkit import Pki, TlsServer

ALICE = QuotaEntity.parse("user=alice")


def _error(document: object) -> str:
    with pytest.raises(DesiredStateError) as raised:
        parse_desired_state(document)
    return str(raised.value)


def _plan(quotas: object, live: dict[QuotaEntity, dict[str, float]], **flags: bool) -> Plan:
    desired = parse_desired_state({"quotas": quotas, "managed": {"quotas": ["al", "app"]}})
    return compute_plan(desired, LiveState({}, None, None, quotas=live), **flags)


# ---- the file --------------------------------------------------------------------------------


def test_entities_are_users_client_ids_their_pairs_and_defaults() -> None:
    assert QuotaEntity.parse("user=alice").components() == [("user", "alice")]
    assert QuotaEntity.parse("client-id=<default>").components() == [("client-id", None)]
    pair = QuotaEntity.parse(" user = <default> , client-id = ingest ")
    assert pair.components() == [("user", None), ("client-id", "ingest")]
    assert str(pair) == "user=<default>,client-id=ingest"
    assert pair.names() == ["ingest"]


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ({"user=a": {}}, "quotas[user=a]: Value error, set at least one of producer_byte_rate"),
        (
            {"user=a": {"producer_byte_rate": 1.5}},
            "quotas[user=a]: Value error, producer_byte_rate is whole bytes per second",
        ),
        (
            {"user=a": {"consumer_byte_rate": 0}},
            "quotas[user=a].consumer_byte_rate: Input should be greater than 0",
        ),
        (
            {"user=a": {"producer_byte_rate": True}},
            "quotas[user=a].producer_byte_rate: Value error, a quota is a number",
        ),
        (
            {"user=a": {"connection_creation_rate": 5}},
            "quotas[user=a].connection_creation_rate: Extra inputs are not permitted",
        ),
        ({"ip=10.0.0.1": {"request_percentage": 5}}, "'ip=10.0.0.1' is not user=NAME"),
        ({"user=a,user=b": {"request_percentage": 5}}, "'user=a,user=b' names user twice"),
        (
            {"user=a": {"request_percentage": 5}, "user = a": {"request_percentage": 6}},
            "'user = a' and 'user=a' are the same entity",
        ),
    ],
)
def test_invalid_quotas_are_refused_naming_the_entry(quotas: object, message: str) -> None:
    assert message in _error({"quotas": quotas})


def test_fractions_are_fine_where_kafka_takes_them() -> None:
    state = parse_desired_state(
        {"quotas": {"client-id=app": {"request_percentage": 12.5, "controller_mutation_rate": 2}}}
    )
    assert state.quota_entities() == {
        QuotaEntity.parse("client-id=app"): {
            QuotaKey.REQUEST_PERCENTAGE: 12.5,
            QuotaKey.CONTROLLER_MUTATION_RATE: 2.0,
        }
    }


def test_an_overlay_changes_one_quota_and_removes_another(tmp_path: Path) -> None:
    base = tmp_path / "kafka.yaml"
    base.write_text(
        "quotas:\n"
        "  user=alice: {producer_byte_rate: 1024, consumer_byte_rate: 2048}\n"
        "  client-id=<default>: {request_percentage: 50}\n"
    )
    (tmp_path / "kafka.prod.yaml").write_text(
        "quotas:\n  user=alice: {producer_byte_rate: 4096}\n  client-id=<default>: null\n"
    )
    state = load_desired_state([base], "prod")
    assert state.quota_entities() == {
        ALICE: {QuotaKey.PRODUCER_BYTE_RATE: 4096.0, QuotaKey.CONSUMER_BYTE_RATE: 2048.0}
    }


def test_a_file_without_quotas_does_not_manage_them() -> None:
    desired = parse_desired_state({})
    assert desired.quotas is None
    live = LiveState({}, None, None, quotas={ALICE: {"producer_byte_rate": 1.0}})
    plan = compute_plan(desired, live, allow_delete=True)
    assert plan.changes == ()
    assert plan.skipped == ()


# ---- the diff --------------------------------------------------------------------------------


def test_a_new_entity_is_added_and_a_matching_one_left_alone() -> None:
    plan = _plan({"user=alice": {"producer_byte_rate": 1024}}, {})
    assert plan.changes == (AlterQuota(ALICE, {"producer_byte_rate": (None, 1024.0)}, {}),)
    assert plan.render().splitlines()[0] == "+ quota user=alice: producer_byte_rate = 1024"
    same = _plan(
        {"user=alice": {"producer_byte_rate": 1024}}, {ALICE: {"producer_byte_rate": 1024}}
    )
    assert same.changes == ()


def test_a_changed_value_and_an_extra_key_removed_only_with_allow_delete() -> None:
    live = {ALICE: {"producer_byte_rate": 1024.0, "request_percentage": 25.0}}
    wanted = {"user=alice": {"producer_byte_rate": 2048}}
    kept = _plan(wanted, live)
    assert kept.render().splitlines()[:2] == [
        "~ quota user=alice",
        "    ~ producer_byte_rate: 1024 -> 2048",
    ]
    assert kept.skipped == (
        "quotas not in the file (--allow-delete removes them): user=alice (request_percentage)",
    )
    removed = _plan(wanted, live, allow_delete=True)
    assert removed.render().splitlines()[:3] == [
        "~ quota user=alice",
        "    ~ producer_byte_rate: 1024 -> 2048",
        "    - request_percentage (was 25)",
    ]


def test_an_entity_gone_from_the_file_is_removed_within_managed_only() -> None:
    live = {
        ALICE: {"producer_byte_rate": 1024.0},
        QuotaEntity.parse("user=bob"): {"producer_byte_rate": 1.0},  # not under `managed`
    }
    kept = _plan({}, live)
    assert kept.changes == ()
    assert "user=alice (producer_byte_rate)" in kept.skipped[0]
    assert "bob" not in kept.skipped[0]
    removed = _plan({}, live, allow_delete=True)
    assert removed.render().splitlines()[0] == "- quota user=alice (producer_byte_rate = 1024)"
    assert [c.entity for c in removed.changes] == [ALICE]


def test_defaults_are_in_scope_only_without_managed_prefixes() -> None:
    default = QuotaEntity.parse("client-id=<default>")
    live = LiveState({}, None, None, quotas={default: {"request_percentage": 50.0}})
    scoped = parse_desired_state({"quotas": {}, "managed": {"quotas": ["app"]}})
    assert compute_plan(scoped, live, allow_delete=True).changes == ()
    unscoped = parse_desired_state({"quotas": {}})
    assert compute_plan(unscoped, live, allow_delete=True).changes == (
        AlterQuota(default, {}, {"request_percentage": 50.0}, {"request_percentage": 50.0}),
    )


# ---- where quotas are managed, and how kafka-python connects --------------------------------


def test_msk_serverless_skips_quotas_with_a_note_and_provisioned_msk_keeps_them() -> None:
    serverless = KafkaSettings(
        bootstrap_servers=("boot-abc.c2.kafka-serverless.eu-west-1.amazonaws.com:9098",),
        security="iam",
        iam_region="eu-west-1",
    )
    scope = scope_for(serverless)
    assert not scope.quotas
    assert any("client quotas skipped: MSK Serverless" in note for note in scope.notes)
    provisioned = serverless.model_copy(
        update={"bootstrap_servers": ("b-1.dev.abc.c2.kafka.eu-west-1.amazonaws.com:9098",)}
    )
    assert scope_for(provisioned).quotas


def test_plaintext_and_scram_map_to_kafka_python() -> None:
    plain = kafka_python_config(KafkaSettings(bootstrap_servers=("a:9092", "b:9092")), 5)
    assert plain["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert plain["security_protocol"] == "PLAINTEXT"
    assert plain["request_timeout_ms"] == 5000
    assert "ssl_context" not in plain
    assert "sasl_mechanism" not in plain
    scram = kafka_python_config(
        KafkaSettings(
            bootstrap_servers=("a:9096",),
            security="scram",
            scram_username="admin",
            scram_password="s3cret",
        )
    )
    assert scram["security_protocol"] == "SASL_SSL"
    assert (scram["sasl_mechanism"], scram["sasl_plain_username"]) == ("SCRAM-SHA-512", "admin")
    assert scram["sasl_plain_password"] == "s3cret"
    assert scram["ssl_context"].check_hostname


def test_mtls_context_presents_the_client_certificate(pki: Pki, mtls_server: TlsServer) -> None:
    settings = KafkaSettings(
        bootstrap_servers=(mtls_server.address,),
        security="mtls",
        ca_file=pki.ca_file,
        cert_file=pki.write("client.pem", pki.client.cert_pem),
        key_file=pki.write("client.key", pki.client.key_pem()),
        verify_hostname=False,
    )
    conf = kafka_python_config(settings)
    assert conf["security_protocol"] == "SSL"
    context: ssl.SSLContext = conf["ssl_context"]
    with (
        socket.create_connection(("127.0.0.1", mtls_server.port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"\x00\x00\x00\x08" + b"\x00\x12\x00\x00" + b"\x00\x00\x00\x07")
        assert tls.recv(8)[4:8] == b"\x00\x00\x00\x07"  # the server accepted our identity
    assert mtls_server.handshake_errors == []


def test_iam_uses_oauthbearer_with_msk_signer_tokens_reused_until_due(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAADSTREAMQUOTAS01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "quota-secret-key")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = KafkaSettings(
        bootstrap_servers=("b-1.dev.abc.c2.kafka.eu-west-1.amazonaws.com:9098",),
        security="iam",
        iam_region="eu-west-1",
    )
    conf = kafka_python_config(settings)
    assert (conf["security_protocol"], conf["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    provider = conf["sasl_oauth_token_provider"]
    token = provider.token()
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    query = parse_qs(urlsplit(url).query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAADSTREAMQUOTAS01/")
    assert provider.token() == token  # one token per connection burst, not one per broker
