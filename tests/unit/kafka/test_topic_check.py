"""What the start-up topic check reports, and when a deployment asks for it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adstream.deployment import DeploymentSettings
from adstream.kafka.topic_check import FoundTopic, TopicRequirements, topic_problems

DURABLE = TopicRequirements(replication_factor=3, min_insync_replicas=2)


def test_a_missing_topic_is_named() -> None:
    problems = topic_problems(["ad-events"], {}, TopicRequirements())
    assert len(problems) == 1
    assert "topic ad-events does not exist" in problems[0]


def test_each_shortfall_names_the_topic_and_the_demand() -> None:
    found = {"ad-events": FoundTopic(1, 1), "ad-events.dlq": FoundTopic(3, 1)}
    problems = topic_problems(["ad-events", "ad-events.dlq"], found, DURABLE)
    assert problems == [
        "topic ad-events has replication factor 1, 3 is required",
        "topic ad-events has min.insync.replicas=1, 2 is required",
        "topic ad-events.dlq has min.insync.replicas=1, 2 is required",
    ]


def test_a_topic_meeting_the_demand_passes() -> None:
    assert topic_problems(["ad-events"], {"ad-events": FoundTopic(3, 2)}, DURABLE) == []
    assert topic_problems(["ad-events"], {"ad-events": FoundTopic(4, 3)}, DURABLE) == []


def test_an_unreadable_min_isr_is_a_problem_not_a_pass() -> None:
    found = {"ad-events": FoundTopic(3, config_error="Authorization failed")}
    (problem,) = topic_problems(["ad-events"], found, DURABLE)
    assert problem == "cannot read min.insync.replicas of topic ad-events: Authorization failed"


def test_min_isr_is_not_judged_when_not_demanded() -> None:
    found = {"ad-events": FoundTopic(3, config_error="Authorization failed")}
    assert topic_problems(["ad-events"], found, TopicRequirements(replication_factor=3)) == []


def test_no_check_without_a_deployment_or_a_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEPLOYED", "REQUIRE_REPLICATION_FACTOR", "REQUIRE_MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(f"ADSTREAM_{name}", raising=False)
    assert DeploymentSettings().topic_requirements() is None


def test_deployed_checks_existence_and_the_demands_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADSTREAM_DEPLOYED", "true")
    assert DeploymentSettings().topic_requirements() == TopicRequirements()
    monkeypatch.setenv("ADSTREAM_REQUIRE_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS", "2")
    assert DeploymentSettings().topic_requirements() == DURABLE


def test_a_demand_alone_turns_the_check_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSTREAM_DEPLOYED", raising=False)
    monkeypatch.setenv("ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS", "2")
    assert DeploymentSettings().topic_requirements() == TopicRequirements(min_insync_replicas=2)


def test_a_zero_demand_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_REQUIRE_REPLICATION_FACTOR", "0")
    with pytest.raises(ValidationError, match="require_replication_factor"):
        DeploymentSettings()
