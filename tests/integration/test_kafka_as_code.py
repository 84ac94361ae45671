"""`adstream kafka plan` / `apply` against the real broker, as an operator runs them.

Each test owns a name prefix (topics, ACL resources, users) and sets `managed` to it, so
`--allow-delete` cannot touch what other tests on the shared broker created.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import ConfigResource, ResourceType
from typer.testing import CliRunner, Result

from adstream.cli import app
from adstream.kafka.cli import EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES
from adstream.kafka.desired_state import QuotaEntity
from adstream.kafka.factory import base_config, make_admin
from adstream.kafka.quotas import QuotaClient, QuotaError
from adstream.kafka.settings import KafkaSettings
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from adstream.local.layout import Listener
from adstream.local.toolchain import find_java
from tests.integration.aggregate_helpers import wait_until
from tests.integration.kafka_helpers import client_config, produce_one

pytestmark = pytest.mark.integration

runner = CliRunner()
Run = Callable[..., Result]


@pytest.fixture
def prefix() -> str:
    return f"kac-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin_config(broker: LocalBroker, tmp_path: Path) -> Path:
    """A dotenv file for the `admin` super user over mutual TLS (what an operator passes)."""
    layout = broker.layout
    path = tmp_path / "admin.env"
    path.write_text(
        f"ADSTREAM_KAFKA_BOOTSTRAP_SERVERS={broker.ports.bootstrap(Listener.SSL)}\n"
        "ADSTREAM_KAFKA_SECURITY=mtls\n"
        f"ADSTREAM_KAFKA_CA_FILE={layout.ca_pem()}\n"
        f"ADSTREAM_KAFKA_CERT_FILE={layout.cert_pem('admin')}\n"
        f"ADSTREAM_KAFKA_KEY_FILE={layout.key_pem('admin')}\n"
    )
    return path


@pytest.fixture
def run(tmp_path: Path, admin_config: Path, prefix: str) -> Run:
    """Write `state` as the desired-state file and run `adstream kafka COMMAND` on it."""

    def invoke(command: str, state: dict[str, object], *flags: str) -> Result:
        # A later --kafka-config in `flags` overrides the admin's (typer keeps the last).
        managed = {"topics": [prefix], "acls": [prefix], "users": [prefix], "quotas": [prefix]}
        document = {"managed": managed, **state}
        path = tmp_path / "kafka.yaml"
        path.write_text(yaml.safe_dump(document))
        args = ["kafka", command, "-f", str(path), "--kafka-config", str(admin_config), *flags]
        return runner.invoke(app, args)

    return invoke


def _topic(partitions: int = 3, **configs: object) -> dict[str, object]:
    return {"partitions": partitions, "replication_factor": 1, "configs": configs}


def _change_lines(output: str) -> list[str]:
    return [
        line for line in output.splitlines() if line[:2] in {"+ ", "~ ", "- "} or line[:4] == "    "
    ]


def _topic_config(broker: LocalBroker, topic: str, name: str) -> str | None:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = broker.admin()
    entries = admin.describe_configs([resource])[resource].result(30)
    return entries[name].value  # type: ignore[no-any-return]


def test_plan_apply_then_plan_finds_nothing(run: Run, prefix: str) -> None:
    state = {
        "topics": {f"{prefix}-events": _topic(3, **{"retention.ms": 3600000})},
        "acls": {"adstream-api": [{"topic": f"{prefix}-events", "operations": ["write"]}]},
    }
    planned = run("plan", state)
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert f"+ topic {prefix}-events: 3 partitions, replication factor 1" in planned.output
    assert f"+ acl User:adstream-api allow write on topic {prefix}-events" in planned.output
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.output

    applied = run("apply", state)
    assert applied.exit_code == 0, applied.output
    assert "Applied 2 change(s)." in applied.output

    again = run("plan", state)
    assert again.exit_code == EXIT_NO_CHANGES, again.output
    assert "No changes" in again.output
    second = run("apply", state)
    assert second.exit_code == 0, second.output
    assert "Applied" not in second.output


def test_retention_and_partition_changes_are_planned_exactly_and_applied(
    run: Run, prefix: str, broker: LocalBroker
) -> None:
    topic = f"{prefix}-events"
    assert run("apply", {"topics": {topic: _topic(3, **{"retention.ms": 3600000})}}).exit_code == 0
    changed = {"topics": {topic: _topic(5, **{"retention.ms": 7200000})}}

    planned = run("plan", changed)
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert _change_lines(planned.output) == [
        f"~ topic {topic}: partitions 3 -> 5",
        f"~ topic {topic}: configs",
        "    ~ retention.ms: 3600000 -> 7200000",
    ]
    assert run("apply", changed).exit_code == 0

    assert len(broker.admin().list_topics(topic, timeout=10).topics[topic].partitions) == 5
    assert _topic_config(broker, topic, "retention.ms") == "7200000"
    assert run("plan", changed).exit_code == EXIT_NO_CHANGES


def test_a_removed_acl_takes_effect_only_with_allow_delete(
    run: Run, prefix: str, broker: LocalBroker
) -> None:
    topic = f"{prefix}-writes"
    grant = {"topic": topic, "operations": ["write", "describe"]}
    before = {"topics": {topic: _topic(1)}, "acls": {"adstream-api": [grant]}}
    assert run("apply", before).exit_code == 0
    api = client_config(broker, Listener.SSL, "adstream-api")
    produce_one(api, topic, b"k", b"allowed", idempotent=False)

    after = {
        "topics": {topic: _topic(1)},
        "acls": {"adstream-api": [grant | {"operations": ["describe"]}]},
    }
    kept = run("plan", after)
    assert kept.exit_code == EXIT_NO_CHANGES, kept.output
    assert "1 ACL(s) not in the file (--allow-delete removes them)" in kept.output

    planned = run("plan", after, "--allow-delete")
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert _change_lines(planned.output) == [
        f"- acl User:adstream-api allow write on topic {topic}"
    ]
    assert run("apply", after, "--allow-delete").exit_code == 0

    with pytest.raises(RuntimeError) as raised:
        produce_one(api, topic, b"k", b"refused", idempotent=False)
    assert "TOPIC_AUTHORIZATION_FAILED" in str(raised.value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"partitions": 2}, "Kafka cannot remove partitions"),
        ({"replication_factor": 2}, "cannot change in place"),
        ({"configs": {"retention.ms": 3600000, "cleanup.policy": "shred"}}, "the broker refuses"),
    ],
    ids=["fewer-partitions", "replication-factor", "bad-config-value"],
)
def test_refused_changes_apply_nothing(
    run: Run, prefix: str, broker: LocalBroker, change: dict[str, object], reason: str
) -> None:
    topic, other = f"{prefix}-kept", f"{prefix}-new"
    assert run("apply", {"topics": {topic: _topic(4, **{"retention.ms": 3600000})}}).exit_code == 0
    # The refused change comes with valid ones (a new topic, a retention change): none is made.
    refused_topic = _topic(4, **{"retention.ms": 7200000}) | change
    state = {"topics": {topic: refused_topic, other: _topic(1)}}

    planned = run("plan", state)
    assert planned.exit_code == EXIT_ERROR, planned.output
    assert reason in planned.output
    applied = run("apply", state)
    assert applied.exit_code == EXIT_ERROR, applied.output
    assert "refused:" in applied.output

    topics = broker.admin().list_topics(timeout=10).topics
    assert other not in topics
    assert len(topics[topic].partitions) == 4
    assert _topic_config(broker, topic, "retention.ms") == "3600000"


def test_an_added_scram_user_can_authenticate(
    run: Run, prefix: str, broker: LocalBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, topic = f"{prefix}-svc", f"{prefix}-svc-topic"
    password = uuid.uuid4().hex
    monkeypatch.setenv("KAC_TEST_PASSWORD", password)
    state = {
        "topics": {topic: _topic(1)},
        "acls": {user: [{"topic": topic, "operations": ["describe"]}]},
        "users": {user: {"password": "env:KAC_TEST_PASSWORD"}},
    }
    planned = run("plan", state)
    assert (
        f"+ user {user}: SCRAM-SHA-512, 4096 iterations, password from env $KAC_TEST_PASSWORD"
        in (planned.output)
    )
    applied = run("apply", state)
    assert applied.exit_code == 0, applied.output

    def settings(secret: str) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=(broker.ports.bootstrap(Listener.SASL_SSL),),
            security="scram",
            ca_file=broker.layout.ca_pem(),
            scram_username=user,
            scram_password=secret,
        )

    def sees_topic() -> bool:
        try:
            metadata = make_admin(settings(password)).list_topics(topic, timeout=5)
        except KafkaException:
            return False  # the broker lists a new user a moment before it authenticates it
        return metadata.topics[topic].error is None

    wait_until(sees_topic)
    with pytest.raises(KafkaException):
        make_admin(settings("wrong")).list_topics(timeout=5)
    assert run("plan", state).exit_code == EXIT_NO_CHANGES


def test_a_missing_password_stops_apply_before_any_change(
    run: Run, prefix: str, broker: LocalBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAC_UNSET_PASSWORD", raising=False)
    topic = f"{prefix}-nopw"
    state = {
        "topics": {topic: _topic(1)},
        "users": {f"{prefix}-nopw": {"password": "env:KAC_UNSET_PASSWORD"}},
    }
    applied = run("apply", state)
    assert applied.exit_code == EXIT_ERROR
    assert "$KAC_UNSET_PASSWORD is not set" in applied.output
    assert topic not in broker.admin().list_topics(timeout=10).topics


def test_an_invalid_file_names_the_entry(run: Run, prefix: str) -> None:
    result = run("plan", {"topics": {f"{prefix}-bad": {"partitions": 0, "replication_factor": 1}}})
    assert result.exit_code == EXIT_ERROR
    assert f"topics[{prefix}-bad].partitions: Input should be greater than 0" in result.output


# ---- client quotas ---------------------------------------------------------------------------


def _scram_admin_config(broker: LocalBroker, tmp_path: Path) -> Path:
    """The `admin` super user over SASL/SCRAM-SHA-512 (the route MSK offers on port 9096)."""
    path = tmp_path / "admin-scram.env"
    path.write_text(
        f"ADSTREAM_KAFKA_BOOTSTRAP_SERVERS={broker.ports.bootstrap(Listener.SASL_SSL)}\n"
        "ADSTREAM_KAFKA_SECURITY=scram\n"
        f"ADSTREAM_KAFKA_CA_FILE={broker.layout.ca_pem()}\n"
        "ADSTREAM_KAFKA_SCRAM_USERNAME=admin\n"
        f"ADSTREAM_KAFKA_SCRAM_PASSWORD={broker.secrets().scram_password('admin')}\n"
    )
    return path


def _java_quotas(broker: LocalBroker, tmp_path: Path, entity_type: str, name: str) -> str:
    """What Kafka's own `kafka-configs.sh --describe` (ConfigCommand, from the broker's jars,
    as the SCRAM admin) says about one entity's quotas: checked without our code."""
    secrets = broker.secrets()
    props = tmp_path / "java-admin.properties"
    props.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{secrets.scram_password("admin")}";\n'
        f"ssl.truststore.location={broker.layout.truststore_jks()}\n"
        f"ssl.truststore.password={secrets.store_password.get_secret_value()}\n"
        "ssl.truststore.type=JKS\n"
    )
    command = [
        str(find_java()),
        "-Xmx128m",
        "-cp",
        broker.dist.classpath,
        "kafka.admin.ConfigCommand",
        "--bootstrap-server",
        broker.ports.bootstrap(Listener.SASL_SSL),
        "--command-config",
        str(props),
        "--describe",
        "--entity-type",
        entity_type,
        "--entity-name",
        name,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _quota_values(described: str) -> dict[str, float]:
    """`Quota configs for user-principal 'x' are a=1.0, b=2.0` -> {a: 1.0, b: 2.0}."""
    _, _, values = described.strip().partition(" are ")
    pairs = (item.split("=") for item in values.split(", ") if "=" in item)
    return {key.strip(): float(value) for key, value in pairs}


def test_quotas_plan_apply_verify_with_kafka_configs_then_nothing(
    run: Run, prefix: str, broker: LocalBroker, tmp_path: Path
) -> None:
    user, client = f"{prefix}-svc", f"{prefix}-ingest"
    state = {
        "quotas": {
            f"user={user}": {"producer_byte_rate": 1048576, "consumer_byte_rate": 2097152},
            f"user={user},client-id={client}": {"request_percentage": 12.5},
        }
    }
    planned = run("plan", state)
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert _change_lines(planned.output) == [
        f"+ quota user={user}: consumer_byte_rate = 2097152, producer_byte_rate = 1048576",
        f"+ quota user={user},client-id={client}: request_percentage = 12.5",
    ]
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.output

    applied = run("apply", state)
    assert applied.exit_code == 0, applied.output
    assert "Applied 2 change(s)." in applied.output

    assert _quota_values(_java_quotas(broker, tmp_path, "users", user)) == {
        "producer_byte_rate": 1048576.0,
        "consumer_byte_rate": 2097152.0,
    }
    again = run("plan", state)
    assert again.exit_code == EXIT_NO_CHANGES, again.output


def test_a_quota_change_is_planned_exactly_and_removals_need_allow_delete(
    run: Run, prefix: str, broker: LocalBroker, tmp_path: Path
) -> None:
    user = f"{prefix}-svc"
    entity = f"user={user}"
    before = {"quotas": {entity: {"producer_byte_rate": 1024, "consumer_byte_rate": 4096}}}
    assert run("apply", before).exit_code == 0
    after = {"quotas": {entity: {"producer_byte_rate": 2048}}}

    planned = run("plan", after)
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert _change_lines(planned.output) == [
        f"~ quota {entity}",
        "    ~ producer_byte_rate: 1024 -> 2048",
    ]
    assert f"{entity} (consumer_byte_rate)" in planned.output  # skipped, not removed
    assert run("apply", after).exit_code == 0
    assert _quota_values(_java_quotas(broker, tmp_path, "users", user)) == {
        "producer_byte_rate": 2048.0,
        "consumer_byte_rate": 4096.0,
    }

    removal = run("plan", after, "--allow-delete")
    assert _change_lines(removal.output) == [
        f"~ quota {entity}",
        "    - consumer_byte_rate (was 4096)",
    ]
    assert run("apply", after, "--allow-delete").exit_code == 0
    assert run("plan", after).exit_code == EXIT_NO_CHANGES

    # The entity gone from the file: kept without --allow-delete, removed with it.
    empty: dict[str, object] = {"quotas": {}}
    kept = run("plan", empty)
    assert kept.exit_code == EXIT_NO_CHANGES, kept.output
    assert "quotas not in the file (--allow-delete removes them)" in kept.output
    gone = run("plan", empty, "--allow-delete")
    assert _change_lines(gone.output) == [f"- quota {entity} (producer_byte_rate = 2048)"]
    assert run("apply", empty, "--allow-delete").exit_code == 0
    assert _quota_values(_java_quotas(broker, tmp_path, "users", user)) == {}
    assert run("plan", empty, "--allow-delete").exit_code == EXIT_NO_CHANGES


def test_quotas_over_scram_and_a_principal_without_cluster_rights(
    run: Run, prefix: str, broker: LocalBroker, tmp_path: Path
) -> None:
    state = {"quotas": {f"client-id={prefix}-app": {"controller_mutation_rate": 10}}}
    scram = str(_scram_admin_config(broker, tmp_path))
    planned = run("plan", state, "--kafka-config", scram)
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert run("apply", state, "--kafka-config", scram).exit_code == 0
    assert run("plan", state).exit_code == EXIT_NO_CHANGES  # and read back over mutual TLS

    # The plaintext listener's ANONYMOUS may not describe cluster configs: a clear error.
    # (Through the client directly: `plan` as ANONYMOUS stops earlier, at the SCRAM users.)
    anonymous = KafkaSettings(bootstrap_servers=(broker.ports.bootstrap(Listener.PLAINTEXT),))
    with QuotaClient(anonymous) as client, pytest.raises(QuotaError) as refused:
        client.describe()
    assert "describe client quotas: ClusterAuthorizationFailedError" in str(refused.value)


def test_plan_as_a_principal_that_may_not_describe_the_cluster_fails_cleanly(
    prefix: str, broker: LocalBroker, tmp_path: Path
) -> None:
    """Exit 1 with the reason, not an abort: confluent-kafka 2.16 crashes the process when
    a refused SCRAM-user description is freed, so the right is checked before asking."""
    path = tmp_path / "kafka.yaml"
    path.write_text(yaml.safe_dump({"managed": {"users": [prefix]}, "users": {}}))
    env_file = tmp_path / "anonymous.env"
    env_file.write_text(
        f"ADSTREAM_KAFKA_BOOTSTRAP_SERVERS={broker.ports.bootstrap(Listener.PLAINTEXT)}\n"
    )
    args = ["-m", "adstream", "kafka", "plan", "-f", str(path), "--kafka-config", str(env_file)]
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == EXIT_ERROR, done.stdout + done.stderr
    assert "may not DESCRIBE the cluster" in done.stdout + done.stderr


def test_a_quota_the_broker_refuses_stops_the_plan_before_anything_changes(
    run: Run, prefix: str, broker: LocalBroker
) -> None:
    topic, user = f"{prefix}-kept-out", f"{prefix}-huge"
    # A whole number, so the file accepts it, but beyond a Java long: the controller refuses.
    state = {
        "topics": {topic: _topic(1)},
        "quotas": {
            f"user={user}": {"producer_byte_rate": 1e30},
            f"user={user}-fine": {"producer_byte_rate": 1024},
        },
    }
    planned = run("plan", state)
    assert planned.exit_code == EXIT_ERROR, planned.output
    assert f"refused: quota user={user}: the broker refuses it: InvalidRequestError" in (
        planned.output
    )
    applied = run("apply", state)
    assert applied.exit_code == EXIT_ERROR, applied.output
    assert topic not in broker.admin().list_topics(timeout=10).topics
    admin = local_kafka_settings(broker.layout, broker.ports, "admin")
    with QuotaClient(admin) as client:
        described = client.describe()
    assert QuotaEntity.parse(f"user={user}-fine") not in described


def test_a_producer_over_its_byte_rate_quota_is_throttled(
    run: Run, prefix: str, broker: LocalBroker
) -> None:
    topic, client = f"{prefix}-throttled", f"{prefix}-slow"
    state = {
        "topics": {topic: _topic(1)},
        "quotas": {f"client-id={client}": {"producer_byte_rate": 1024}},
    }
    assert run("apply", state).exit_code == 0
    throttled: list[int] = []

    def on_stats(raw: str) -> None:
        stats = json.loads(raw)
        throttled.extend(b["throttle"]["max"] for b in stats["brokers"].values())

    settings = local_kafka_settings(broker.layout, broker.ports, "admin").model_copy(
        update={"client_id": client}
    )
    config = dict(base_config(settings)) | {
        "statistics.interval.ms": 100,
        "stats_cb": on_stats,
        "linger.ms": 0,
    }
    producer = Producer(config)
    for _ in range(16):  # 64 KiB against 1 KiB/s: the broker answers with a throttle time
        producer.produce(topic, b"x" * 4096)
    wait_until(lambda: producer.poll(0.1) >= 0 and any(t > 0 for t in throttled))
    producer.purge()


def test_the_local_broker_up_applies_the_files_quotas(
    broker: LocalBroker, prefix: str, tmp_path: Path
) -> None:
    """`adstream kafka up` provisions from the same file, quotas included."""
    entity = f"client-id={prefix}-local"
    base = tmp_path / "kafka.yaml"
    base.write_text(yaml.safe_dump({"quotas": {entity: {"producer_byte_rate": 4096}}}))
    (tmp_path / "kafka.local.yaml").write_text("{}\n")
    same = LocalBroker(broker.layout, broker.dist, base_port=broker.ports.base, state_file=base)
    same.provision()
    admin = local_kafka_settings(broker.layout, broker.ports, "admin")
    with QuotaClient(admin) as client:
        assert client.describe()[QuotaEntity.parse(entity)] == {"producer_byte_rate": 4096.0}
