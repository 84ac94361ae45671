"""The plan: pure diffs between the desired state and what was read from a cluster."""

from __future__ import annotations

import pytest

from adstream.kafka.apply import scope_for
from adstream.kafka.desired_state import (
    DesiredState,
    Operation,
    PatternKind,
    ResourceKind,
    parse_desired_state,
)
from adstream.kafka.plan import (
    AclEntry,
    AddAcl,
    AddPartitions,
    AddUser,
    AlterConfigs,
    CreateTopic,
    DeleteTopic,
    DeleteUser,
    LiveState,
    LiveTopic,
    RemoveAcl,
    compute_plan,
)
from adstream.kafka.settings import KafkaSettings


def _state(**document: object) -> DesiredState:
    return parse_desired_state(document)


def _topic(partitions: int = 3, rf: int = 1, **configs: str) -> dict[str, object]:
    return {"partitions": partitions, "replication_factor": rf, "configs": configs}


def _live(topics: dict[str, LiveTopic] | None = None, **kwargs: object) -> LiveState:
    return LiveState(
        topics or {},
        kwargs.get("acls", frozenset()),  # type: ignore[arg-type]
        kwargs.get("users", {}),  # type: ignore[arg-type]
    )


WRITE = AclEntry("User:api", ResourceKind.TOPIC, "t", PatternKind.LITERAL, Operation.WRITE)
READ = AclEntry("User:api", ResourceKind.TOPIC, "t", PatternKind.LITERAL, Operation.READ)


def test_a_missing_topic_is_created_and_a_matching_one_left_alone() -> None:
    desired = _state(topics={"t": _topic(3, **{"retention.ms": "1000"})})
    plan = compute_plan(desired, _live())
    assert plan.changes == (CreateTopic("t", desired.topics["t"]),)
    live = _live({"t": LiveTopic(3, 1, {"retention.ms": "1000"}, frozenset({"retention.ms"}))})
    assert compute_plan(desired, live).changes == ()


def test_more_partitions_and_a_changed_config_are_planned() -> None:
    desired = _state(
        topics={"t": _topic(6, **{"retention.ms": "2000", "cleanup.policy": "delete"})}
    )
    live = _live({"t": LiveTopic(3, 1, {"retention.ms": "1000", "cleanup.policy": "delete"})})
    plan = compute_plan(desired, live)
    assert plan.changes == (
        AddPartitions("t", 3, 6),
        AlterConfigs("t", {"retention.ms": ("1000", "2000")}, {}),
    )
    assert plan.render().endswith("Plan: 0 to add, 2 to change, 0 to destroy.")


def test_cleanup_policy_order_does_not_matter() -> None:
    desired = _state(topics={"t": _topic(1, **{"cleanup.policy": "compact,delete"})})
    live = _live({"t": LiveTopic(1, 1, {"cleanup.policy": "delete,compact"})})
    assert compute_plan(desired, live).changes == ()


@pytest.mark.parametrize(
    ("live_topic", "reason"),
    [
        (LiveTopic(6, 1), "Kafka cannot remove partitions"),
        (LiveTopic(3, 3), "replication factor 3 -> 1 cannot change in place"),
    ],
)
def test_impossible_changes_are_refused(live_topic: LiveTopic, reason: str) -> None:
    plan = compute_plan(_state(topics={"t": _topic(3)}), _live({"t": live_topic}))
    assert any(reason in r for r in plan.refusals)
    assert "Refused:" in plan.render()


def test_configs_set_outside_the_file_are_reset_only_with_allow_delete() -> None:
    desired = _state(topics={"t": _topic(1)})
    live = _live({"t": LiveTopic(1, 1, {"segment.ms": "60000"}, frozenset({"segment.ms"}))})
    kept = compute_plan(desired, live)
    assert kept.changes == ()
    assert "segment.ms" in kept.skipped[0]
    reset = compute_plan(desired, live, allow_delete=True)
    assert reset.changes == (AlterConfigs("t", {}, {"segment.ms": "60000"}),)


def test_acls_are_added_and_removed_within_the_managed_prefixes() -> None:
    grant = {"topic": "t", "operations": ["read"]}
    stranger = AclEntry("User:x", ResourceKind.TOPIC, "other", PatternKind.LITERAL, Operation.READ)
    desired = _state(acls={"api": [grant]}, managed={"acls": ["t"]})
    live = _live(acls=frozenset({WRITE, stranger}))
    assert compute_plan(desired, live).changes == (AddAcl(READ),)
    assert compute_plan(desired, live, allow_delete=True).changes == (
        AddAcl(READ),
        RemoveAcl(WRITE),
    )


def test_over_iam_to_msk_acls_are_planned_and_users_are_not() -> None:
    """ACLs govern the SCRAM and mTLS principals even when the admin connects over IAM (on
    MSK only an IAM principal can create the first ones); SCRAM users come from Secrets
    Manager there, never from the Admin API."""
    desired = _state(
        acls={"api": [{"topic": "t", "operations": ["read"]}]},
        users={"svc": {"password": "env:P"}},
    )
    iam = KafkaSettings(
        bootstrap_servers=("b-1.adstream.abc.c2.kafka.eu-west-1.amazonaws.com:9098",),
        security="iam",
        iam_region="eu-west-1",
    )
    scope = scope_for(iam)
    assert (scope.acls, scope.users) == (True, False)
    plan = compute_plan(desired, LiveState({}, frozenset(), None, scope.notes))
    assert [type(change).__name__ for change in plan.changes] == ["AddAcl"]
    assert "MSK authorizes IAM principals by their IAM policies" in plan.render()
    assert "SCRAM users skipped" in plan.render()


def test_users_are_added_by_mechanism_and_deleted_only_in_scope() -> None:
    desired = _state(
        users={"svc": {"password": "env:P"}, "old512": {"password": "env:P"}},
        managed={"users": ["svc", "old"]},
    )
    live = _live(
        users={
            "old512": frozenset({"SCRAM-SHA-256"}),
            "svc-gone": frozenset({"SCRAM-SHA-512"}),
            "admin": frozenset({"SCRAM-SHA-512"}),
        }
    )
    plan = compute_plan(desired, live, allow_delete=True)
    assert plan.changes == (
        AddUser("old512", desired.users["old512"]),
        AddUser("svc", desired.users["svc"]),
        DeleteUser("svc-gone", frozenset({"SCRAM-SHA-512"})),
    )


def test_only_unlisted_non_internal_topics_in_scope_are_deleted() -> None:
    desired = _state(topics={"ad-events": _topic(1)}, managed={"topics": ["ad-"]})
    live = _live(
        {
            "ad-events": LiveTopic(1, 1),
            "ad-old": LiveTopic(1, 1),
            "__consumer_offsets": LiveTopic(50, 1),
            "someone-else": LiveTopic(1, 1),
        }
    )
    assert compute_plan(desired, live).changes == ()
    assert compute_plan(desired, live, allow_delete=True).changes == (DeleteTopic("ad-old"),)
