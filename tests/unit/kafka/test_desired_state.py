"""The desired-state file: schema errors name the entry; overlays merge as JSON Merge Patch."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adstream.kafka.desired_state import (
    DesiredStateError,
    Operation,
    PasswordSource,
    default_state_file,
    load_desired_state,
    merge_patch,
    parse_desired_state,
    resolve_password,
)
from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP, DEAD_LETTER_TOPIC


def _error(document: object) -> str:
    with pytest.raises(DesiredStateError) as raised:
        parse_desired_state(document)
    return str(raised.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"topics": {"ad-events": {"partitions": 0, "replication_factor": 3}}},
            "topics[ad-events].partitions: Input should be greater than 0",
        ),
        (
            {"topics": {"ad-events": {"partitions": 6}}},
            "topics[ad-events].replication_factor: Field required",
        ),
        (
            {
                "topics": {
                    "t": {
                        "partitions": 1,
                        "replication_factor": 2,
                        "configs": {"min.insync.replicas": 3},
                    }
                }
            },
            "topics[t]: Value error, min.insync.replicas=3 exceeds replication_factor=2",
        ),
        (
            {"topics": {"bad name!": {"partitions": 1, "replication_factor": 1}}},
            "topics: Value error, topic name 'bad name!' may use only",
        ),
        (
            {"acls": {"api": [{"topic": "t", "group": "g", "operations": ["read"]}]}},
            "acls[api][0]: Value error, name exactly one of topic, group, transactional_id or "
            "cluster: true (found: topic, group)",
        ),
        (
            {"acls": {"api": [{"topic": "t", "operations": ["read", "fly"]}]}},
            "acls[api][0].operations[1]: Input should be",
        ),
        (
            {"users": {"svc": {"password": "hunter2"}}},
            "users[svc].password: Value error, 'hunter2' is not env:NAME, file:PATH, "
            "aws_secret:ID or generated (passwords themselves never go in this file)",
        ),
        (
            {"users": {"svc": {"password": "env:X", "iterations": 100}}},
            "users[svc].iterations: Input should be greater than or equal to 4096",
        ),
        ({"topic": {}}, "topic: Extra inputs are not permitted"),
    ],
    ids=[
        "partitions",
        "missing-rf",
        "min-isr",
        "topic-name",
        "two-resources",
        "operation",
        "literal-password",
        "iterations",
        "unknown-key",
    ],
)
def test_errors_name_the_entry(document: object, message: str) -> None:
    assert message in _error(document)


def test_kafka_spellings_and_yaml_scalars_are_normalised() -> None:
    state = parse_desired_state(
        {
            "topics": {
                "t": {
                    "partitions": 1,
                    "replication_factor": 1,
                    "configs": {"retention.ms": 60000, "preallocate": False},
                }
            },
            "acls": {
                "api": [{"topic": "t", "operations": ["IdempotentWrite", "DESCRIBE_CONFIGS"]}]
            },
        }
    )
    assert state.topics["t"].configs == {"retention.ms": "60000", "preallocate": "false"}
    grants = state.acls["User:api"]
    assert grants[0].operations == [Operation.IDEMPOTENT_WRITE, Operation.DESCRIBE_CONFIGS]


def test_merge_patch_merges_maps_removes_nulls_and_replaces_lists() -> None:
    base = {"topics": {"a": {"partitions": 6, "configs": {"x": "1", "y": "2"}}}, "l": [1, 2]}
    patch = {"topics": {"a": {"configs": {"x": "9", "y": None}}, "b": {"partitions": 1}}, "l": [3]}
    assert merge_patch(base, patch) == {
        "topics": {"a": {"partitions": 6, "configs": {"x": "9"}}, "b": {"partitions": 1}},
        "l": [3],
    }


def test_env_overlay_is_found_next_to_the_base_file(tmp_path: Path) -> None:
    base = {"topics": {"t": {"partitions": 3, "replication_factor": 3}}}
    (tmp_path / "kafka.yaml").write_text(yaml.safe_dump(base))
    overlay = {"topics": {"t": {"replication_factor": 1}}, "users": {"u": {"password": "env:P"}}}
    (tmp_path / "kafka.test.yaml").write_text(yaml.safe_dump(overlay))
    state = load_desired_state([tmp_path / "kafka.yaml"], env="test")
    assert (state.topics["t"].partitions, state.topics["t"].replication_factor) == (3, 1)
    assert state.users["u"].password == PasswordSource(env="P")
    with pytest.raises(DesiredStateError, match=r"cannot read .*kafka\.nope\.yaml"):
        load_desired_state([tmp_path / "kafka.yaml"], env="nope")


def test_a_broken_yaml_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "kafka.yaml"
    path.write_text("topics: [unclosed\n")
    with pytest.raises(DesiredStateError, match="is not valid YAML"):
        load_desired_state([path])


@pytest.mark.parametrize("env", [None, "local", "dev", "prod"])
def test_the_project_file_and_each_overlay_are_valid(env: str | None) -> None:
    state = load_desired_state([default_state_file()], env)
    assert {AD_EVENTS_TOPIC, DEAD_LETTER_TOPIC} <= state.topics.keys()
    groups = {g.group for g in state.acls["User:adstream-aggregator"]}
    assert AGGREGATOR_GROUP in groups


def test_only_the_local_overlay_grants_anonymous() -> None:
    base = load_desired_state([default_state_file()])
    local = load_desired_state([default_state_file()], "local")
    assert "User:ANONYMOUS" not in base.acls
    assert "User:ANONYMOUS" in local.acls
    assert all(t.replication_factor == 1 for t in local.topics.values())


def test_passwords_come_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAC_PW", "from-env")
    assert resolve_password("u", PasswordSource(env="KAC_PW")) == "from-env"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert resolve_password("u", PasswordSource(file=secret)) == "from-file"
    monkeypatch.delenv("KAC_PW")
    with pytest.raises(DesiredStateError, match=r"users\[u\]\.password: \$KAC_PW is not set"):
        resolve_password("u", PasswordSource(env="KAC_PW"))
    with pytest.raises(DesiredStateError, match="exist only on the local broker"):
        resolve_password("u", PasswordSource(generated=True))
