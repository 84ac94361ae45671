"""The difference between the desired state and a live cluster, as pure functions on data.

``compute_plan`` compares what ``adstream.kafka.apply`` read from the cluster with the
file and returns every change in the order it will be applied, the changes it refuses
(fewer partitions, another replication factor: Kafka cannot do either in place), and what
it skipped and why (deletions without ``--allow-delete``, ACLs under IAM). A plan with
refusals is never applied, not even in part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from adstream.kafka.desired_state import (
    DesiredState,
    Operation,
    PatternKind,
    QuotaEntity,
    ResourceKind,
    TopicSpec,
    UserSpec,
)

INTERNAL_TOPIC_PREFIX = "__"


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ACL binding, as Kafka stores it: one principal, resource and operation."""

    principal: str
    resource: ResourceKind
    name: str
    pattern: PatternKind
    operation: Operation
    permission: str = "allow"
    host: str = "*"

    def render(self) -> str:
        target = f"{self.name}*" if self.pattern is PatternKind.PREFIXED else self.name
        where = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal} {self.permission} {self.operation.value} "
            f"on {self.resource.value} {target}{where}"
        )


@dataclass(frozen=True)
class LiveTopic:
    """A topic as the cluster has it: ``configs`` holds every value, ``overrides`` the
    names set on the topic itself (the rest are broker defaults)."""

    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)
    overrides: frozenset[str] = frozenset()


Quotas = Mapping[QuotaEntity, Mapping[str, float]]
"""Client quotas: entity -> quota key -> value."""


@dataclass(frozen=True)
class LiveState:
    """What was read from the cluster. ``acls``/``users``/``quotas`` are None when they are
    not managed over this connection (or, for quotas, by the file); ``notes`` then say why."""

    topics: Mapping[str, LiveTopic]
    acls: frozenset[AclEntry] | None
    users: Mapping[str, frozenset[str]] | None  # user -> SCRAM mechanisms it has
    notes: tuple[str, ...] = ()
    quotas: Quotas | None = None


# ---- changes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTopic:
    name: str
    spec: TopicSpec
    symbol = "+"

    def lines(self) -> list[str]:
        head = (
            f"+ topic {self.name}: {self.spec.partitions} partitions, "
            f"replication factor {self.spec.replication_factor}"
        )
        return [head, *(f"    {k} = {v}" for k, v in sorted(self.spec.configs.items()))]


@dataclass(frozen=True)
class AddPartitions:
    topic: str
    current: int
    wanted: int
    symbol = "~"

    def lines(self) -> list[str]:
        return [f"~ topic {self.topic}: partitions {self.current} -> {self.wanted}"]


@dataclass(frozen=True)
class AlterConfigs:
    """Set configs (name -> (old value or None, new value)) and reset others to the default."""

    topic: str
    set: Mapping[str, tuple[str | None, str]]
    reset: Mapping[str, str]
    symbol = "~"

    def lines(self) -> list[str]:
        out = [f"~ topic {self.topic}: configs"]
        for name, (old, new) in sorted(self.set.items()):
            out.append(
                f"    ~ {name}: {old} -> {new}" if old is not None else f"    + {name} = {new}"
            )
        out += [f"    - {n} (was {v}; back to the default)" for n, v in sorted(self.reset.items())]
        return out


@dataclass(frozen=True)
class DeleteTopic:
    name: str
    symbol = "-"

    def lines(self) -> list[str]:
        return [f"- topic {self.name} (and all its records)"]


@dataclass(frozen=True)
class AddAcl:
    entry: AclEntry
    symbol = "+"

    def lines(self) -> list[str]:
        return [f"+ acl {self.entry.render()}"]


@dataclass(frozen=True)
class RemoveAcl:
    entry: AclEntry
    symbol = "-"

    def lines(self) -> list[str]:
        return [f"- acl {self.entry.render()}"]


@dataclass(frozen=True)
class AddUser:
    name: str
    spec: UserSpec
    symbol = "+"

    def lines(self) -> list[str]:
        spec = self.spec
        return [
            f"+ user {self.name}: {spec.mechanism}, {spec.iterations} iterations, "
            f"password from {spec.password.describe()}"
        ]


@dataclass(frozen=True)
class DeleteUser:
    name: str
    mechanisms: frozenset[str]
    symbol = "-"

    def lines(self) -> list[str]:
        return [f"- user {self.name} ({', '.join(sorted(self.mechanisms))})"]


def quota_number(value: float) -> str:
    """``1048576.0`` -> ``1048576``; fractions stay (``request_percentage: 12.5``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class AlterQuota:
    """Set quota keys (key -> (old value or None, new value)) and remove others of one
    entity; ``live`` is what the entity had. Removing every key it has removes its quota."""

    entity: QuotaEntity
    set: Mapping[str, tuple[float | None, float]]
    remove: Mapping[str, float]
    live: Mapping[str, float] = field(default_factory=dict)

    @property
    def symbol(self) -> str:
        if not self.live:
            return "+"
        return "-" if not self.set and self.remove.keys() == self.live.keys() else "~"

    def lines(self) -> list[str]:
        if self.symbol == "+":
            values = ", ".join(f"{k} = {quota_number(v)}" for k, (_, v) in sorted(self.set.items()))
            return [f"+ quota {self.entity}: {values}"]
        if self.symbol == "-":
            values = ", ".join(f"{k} = {quota_number(v)}" for k, v in sorted(self.remove.items()))
            return [f"- quota {self.entity} ({values})"]
        out = [f"~ quota {self.entity}"]
        for key, (old, new) in sorted(self.set.items()):
            out.append(
                f"    ~ {key}: {quota_number(old)} -> {quota_number(new)}"
                if old is not None
                else f"    + {key} = {quota_number(new)}"
            )
        out += [f"    - {k} (was {quota_number(v)})" for k, v in sorted(self.remove.items())]
        return out


Change = (
    CreateTopic
    | AddPartitions
    | AlterConfigs
    | DeleteTopic
    | AddAcl
    | RemoveAcl
    | AddUser
    | DeleteUser
    | AlterQuota
)

C = TypeVar("C", bound=Change)


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    refusals: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def of(self, kind: type[C]) -> list[C]:
        """The changes of one kind, in order."""
        return [c for c in self.changes if isinstance(c, kind)]

    def with_refusals(self, refusals: list[str]) -> Plan:
        return Plan(self.changes, (*self.refusals, *refusals), self.skipped, self.notes)

    def render(self) -> str:
        out = [f"note: {n}" for n in self.notes]
        for change in self.changes:
            out += change.lines()
        out += [f"skipped: {s}" for s in self.skipped]
        out += [f"refused: {r}" for r in self.refusals]
        counts = {s: sum(c.symbol == s for c in self.changes) for s in "+~-"}
        if self.refusals:
            out.append(f"Refused: {len(self.refusals)} change(s) cannot be applied; nothing was.")
        elif self.changes:
            out.append(
                f"Plan: {counts['+']} to add, {counts['~']} to change, {counts['-']} to destroy."
            )
        else:
            out.append("No changes: the cluster matches the desired state.")
        return "\n".join(out)


# ---- diff ------------------------------------------------------------------------------------


def desired_acls(state: DesiredState) -> frozenset[AclEntry]:
    """Each grant of the file expanded to Kafka's one-operation bindings."""
    return frozenset(
        AclEntry(principal, *grant.resource, grant.pattern, op, grant.permission, grant.host)
        for principal, grants in state.acls.items()
        for grant in grants
        for op in grant.operations
    )


def _in_scope(name: str, prefixes: list[str] | None) -> bool:
    return prefixes is None or any(name.startswith(p) for p in prefixes)


def _same_value(name: str, live: str | None, wanted: str) -> bool:
    if live is None:
        return False
    if name == "cleanup.policy":  # a list: "compact,delete" == "delete,compact"
        return sorted(p.strip() for p in live.split(",")) == sorted(wanted.split(","))
    return live.strip() == wanted.strip()


def _topic_changes(
    name: str, spec: TopicSpec, live: LiveTopic, allow_delete: bool
) -> Iterator[Change | str]:
    """Changes to one existing topic; refusals and skips are yielded as strings."""
    if spec.replication_factor != live.replication_factor:
        yield (
            f"refuse: topic {name}: replication factor {live.replication_factor} -> "
            f"{spec.replication_factor} cannot change in place (reassign partitions with "
            "kafka-reassign-partitions, then update the file)"
        )
    if spec.partitions < live.partitions:
        yield (
            f"refuse: topic {name}: partitions {live.partitions} -> {spec.partitions}: Kafka "
            "cannot remove partitions (create a new topic and migrate)"
        )
    elif spec.partitions > live.partitions:
        yield AddPartitions(name, live.partitions, spec.partitions)
    changed = {
        key: (live.configs.get(key), value)
        for key, value in spec.configs.items()
        if not _same_value(key, live.configs.get(key), value)
    }
    extra = {key: live.configs.get(key, "") for key in live.overrides - spec.configs.keys()}
    if extra and not allow_delete:
        yield f"skip: topic {name}: configs {', '.join(sorted(extra))} are set on the " + (
            "cluster but not in the file (--allow-delete resets them)"
        )
        extra = {}
    if changed or extra:
        yield AlterConfigs(name, changed, extra)


def _quota_changes(
    desired: DesiredState, live: Quotas, allow_delete: bool, skipped: list[str]
) -> list[Change]:
    """Quota keys to set, and (with ``allow_delete``) keys and entities to remove."""
    wanted = {
        e: {k.value: v for k, v in values.items()} for e, values in desired.quota_entities().items()
    }
    prefixes = desired.managed.quotas
    changes: list[Change] = []
    kept: list[str] = []
    for entity in sorted(wanted.keys() | live.keys()):
        want, have = wanted.get(entity, {}), live.get(entity, {})
        changed = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        extra = {k: v for k, v in have.items() if k not in want}
        in_scope = (
            entity in wanted
            or prefixes is None
            or any(name.startswith(p) for name in entity.names() for p in prefixes)
        )
        if extra and not (allow_delete and in_scope):
            if in_scope:
                kept.append(f"{entity} ({', '.join(sorted(extra))})")
            extra = {}
        if changed or extra:
            changes.append(AlterQuota(entity, changed, extra, dict(have)))
    if kept:
        skipped.append(f"quotas not in the file (--allow-delete removes them): {'; '.join(kept)}")
    return changes


def compute_plan(desired: DesiredState, live: LiveState, *, allow_delete: bool = False) -> Plan:
    """Every change that makes ``live`` match ``desired``, in the order ``apply`` runs them."""
    changes: list[Change] = []
    refusals: list[str] = []
    skipped: list[str] = []

    def take(items: Iterator[Change | str]) -> None:
        for item in items:
            if isinstance(item, str):
                kind, _, text = item.partition(": ")
                (refusals if kind == "refuse" else skipped).append(text)
            else:
                changes.append(item)

    for name, spec in sorted(desired.topics.items()):
        if name not in live.topics:
            changes.append(CreateTopic(name, spec))
        else:
            take(_topic_changes(name, spec, live.topics[name], allow_delete))

    if live.acls is not None:
        wanted = desired_acls(desired)
        changes += [AddAcl(e) for e in sorted(wanted - live.acls)]
        extra = sorted(e for e in live.acls - wanted if _in_scope(e.name, desired.managed.acls))
        if allow_delete:
            changes += [RemoveAcl(e) for e in extra]
        elif extra:
            skipped.append(f"{len(extra)} ACL(s) not in the file (--allow-delete removes them)")

    if live.users is not None:
        for user, user_spec in sorted(desired.users.items()):
            if user_spec.mechanism not in live.users.get(user, frozenset()):
                changes.append(AddUser(user, user_spec))
        extra_users = sorted(
            u for u in live.users if u not in desired.users and _in_scope(u, desired.managed.users)
        )
        if allow_delete:
            changes += [DeleteUser(u, live.users[u]) for u in extra_users]
        elif extra_users:
            skipped.append(
                f"users {', '.join(extra_users)} are not in the file (--allow-delete removes them)"
            )

    if live.quotas is not None and desired.quotas is not None:
        changes += _quota_changes(desired, live.quotas, allow_delete, skipped)

    extra_topics = sorted(
        t
        for t in live.topics
        if t not in desired.topics
        and not t.startswith(INTERNAL_TOPIC_PREFIX)
        and _in_scope(t, desired.managed.topics)
    )
    if allow_delete:
        changes += [DeleteTopic(t) for t in extra_topics]
    elif extra_topics:
        skipped.append(
            f"topics {', '.join(extra_topics)} are not in the file (--allow-delete deletes them)"
        )
    return Plan(tuple(changes), tuple(refusals), tuple(skipped), live.notes)
