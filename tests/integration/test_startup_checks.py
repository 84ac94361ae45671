"""Services refuse to start half-configured: topics missing or replicated less than the
deployment demands (read from the real broker), or a deployed aggregator without a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourceType

from adstream.kafka.topic_check import TopicCheckError, TopicRequirements, check_topics
from adstream.local.broker import LocalBroker
from tests.integration.aggregate_helpers import AGGREGATOR, PrivateTopic, aggregator_settings
from tests.integration.kafka_helpers import allow
from tests.integration.service_env import kafka_env

pytestmark = pytest.mark.integration

ADSTREAM = [sys.executable, "-m", "adstream"]
DURABLE = TopicRequirements(replication_factor=3, min_insync_replicas=2)


def grant_describe_configs(broker: LocalBroker, *topics: str) -> None:
    bindings = [
        allow(AGGREGATOR, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, t) for t in topics
    ]
    admin = broker.admin()  # held: a collected client fails its pending futures
    for future in admin.create_acls(bindings).values():
        future.result(30)


def test_topics_as_created_pass_what_they_have(broker: LocalBroker, topic: PrivateTopic) -> None:
    grant_describe_configs(broker, topic.topic, topic.dead_letters)
    # The local broker has one node: replication factor 1, min.insync.replicas 1.
    check_topics(
        aggregator_settings(broker),
        [topic.topic, topic.dead_letters],
        TopicRequirements(replication_factor=1, min_insync_replicas=1),
    )


def test_less_than_demanded_names_each_topic_and_shortfall(
    broker: LocalBroker, topic: PrivateTopic
) -> None:
    grant_describe_configs(broker, topic.topic, topic.dead_letters)
    with pytest.raises(TopicCheckError) as caught:
        check_topics(aggregator_settings(broker), [topic.topic, topic.dead_letters], DURABLE)
    assert caught.value.problems == (
        f"topic {topic.topic} has replication factor 1, 3 is required",
        f"topic {topic.topic} has min.insync.replicas=1, 2 is required",
        f"topic {topic.dead_letters} has replication factor 1, 3 is required",
        f"topic {topic.dead_letters} has min.insync.replicas=1, 2 is required",
    )


def test_a_missing_topic_is_reported(broker: LocalBroker, topic: PrivateTopic) -> None:
    missing = f"{topic.topic}-missing"
    with pytest.raises(TopicCheckError, match=f"topic {missing} does not exist"):
        check_topics(aggregator_settings(broker), [topic.topic, missing], TopicRequirements())


def test_min_isr_without_the_grant_to_read_it_fails_closed(
    broker: LocalBroker, topic: PrivateTopic
) -> None:
    with pytest.raises(TopicCheckError) as caught:
        check_topics(
            aggregator_settings(broker), [topic.topic], TopicRequirements(min_insync_replicas=1)
        )
    (problem,) = caught.value.problems
    assert problem.startswith(f"cannot read min.insync.replicas of topic {topic.topic}:")
    assert "grant describe_configs" in problem


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in a clean environment: only what the test sets, plus PATH/PYTHONPATH."""
    keep = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "HOME") if k in os.environ}
    return subprocess.run(
        [*ADSTREAM, *args],
        env={**keep, "ADSTREAM_LOG_FORMAT": "console", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deployed_aggregator_refuses_an_underreplicated_topic(
    broker: LocalBroker, topic: PrivateTopic, tmp_path: Path
) -> None:
    grant_describe_configs(broker, topic.topic, topic.dead_letters)
    env = {
        **kafka_env(broker, AGGREGATOR),
        "ADSTREAM_DEPLOYED": "true",
        "ADSTREAM_REQUIRE_REPLICATION_FACTOR": "3",
        "ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS": "1",
        "ADSTREAM_AGGREGATE_DB": f"sqlite:///{tmp_path / 'counts.db'}",
    }
    done = _run(["aggregate", "--topic", topic.topic, "--group", topic.group], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"topic {topic.topic} has replication factor 1, 3 is required" in done.stderr
    assert f"topic {topic.dead_letters} has replication factor 1, 3 is required" in done.stderr
    assert "min.insync.replicas" not in done.stderr  # 1 is what the topics have
    assert not (tmp_path / "counts.db").exists()  # refused before opening the store


def test_deployed_aggregator_refuses_to_start_without_a_database(
    broker: LocalBroker, topic: PrivateTopic, tmp_path: Path
) -> None:
    env = {**kafka_env(broker, AGGREGATOR), "ADSTREAM_DEPLOYED": "true"}
    done = _run(["aggregate", "--topic", topic.topic, "--group", topic.group], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "no count database: set ADSTREAM_AGGREGATE_DB" in done.stderr
    assert not (tmp_path / ".adstream").exists()  # the SQLite default was not created


def test_deployed_api_refuses_a_missing_topic(broker: LocalBroker, tmp_path: Path) -> None:
    missing = "ad-events-missing"
    env = {
        **kafka_env(broker, "adstream-api"),
        "ADSTREAM_DEPLOYED": "true",
        "ADSTREAM_API_TOPIC": missing,
    }
    done = _run(["serve", "--port", "1"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"topic {missing} does not exist" in done.stderr


def test_api_checks_min_isr_of_its_topic_with_the_shipped_grants(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """deploy/kafka.yaml grants adstream-api describe_configs on ad-events: the check reads
    min.insync.replicas=1 and refuses it against a demand of 2."""
    env = {
        **kafka_env(broker, "adstream-api"),
        "ADSTREAM_DEPLOYED": "true",
        "ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS": "2",
    }
    done = _run(["serve", "--port", "1"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "topic ad-events has min.insync.replicas=1, 2 is required" in done.stderr
