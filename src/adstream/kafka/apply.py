"""Read a live cluster into plain data and apply a plan to it, through the Kafka Admin API.

The order of ``apply_plan`` and what it guarantees:
1. nothing is changed unless ``check_with_broker`` found no refusal (the caller checks);
2. topics are created, partitions added, configs altered (``incremental_alter_configs``
   changes only the named configs, so settings made elsewhere survive);
3. ACLs are created, then removed; it returns once the broker serves them, so a client
   started right after sees the new permissions;
4. SCRAM users are created or deleted, client quotas set or removed (through
   ``adstream.kafka.quotas``: librdkafka has no quota API), then topics deleted (last: the
   only change that loses data).
A failure midway leaves the earlier steps applied; every step is idempotent, so running
``apply`` again finishes the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from adstream.kafka.desired_state import (
    DesiredState,
    Operation,
    PasswordSource,
    PatternKind,
    QuotaEntity,
    ResourceKind,
    resolve_password,
)
from adstream.kafka.plan import (
    AclEntry,
    AddAcl,
    AddPartitions,
    AddUser,
    AlterConfigs,
    AlterQuota,
    CreateTopic,
    DeleteTopic,
    DeleteUser,
    LiveState,
    LiveTopic,
    Plan,
    RemoveAcl,
)
from adstream.kafka.quotas import QuotaClient, QuotaError
from adstream.kafka.settings import KafkaSettings, SecurityMode

PasswordResolver = Callable[[str, PasswordSource], str]

_RESOURCE = {
    ResourceKind.TOPIC: ResourceType.TOPIC,
    ResourceKind.GROUP: ResourceType.GROUP,
    ResourceKind.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
    ResourceKind.CLUSTER: ResourceType.BROKER,
}
_KIND = {v: k for k, v in _RESOURCE.items()}
_PATTERN = {
    PatternKind.LITERAL: ResourcePatternType.LITERAL,
    PatternKind.PREFIXED: ResourcePatternType.PREFIXED,
}
_PATTERN_KIND = {v: k for k, v in _PATTERN.items()}
_PERMISSION = {"allow": AclPermissionType.ALLOW, "deny": AclPermissionType.DENY}
_MECHANISM = {
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
}


class ApplyError(RuntimeError):
    """The cluster could not be read or changed; the message names the resource."""


@dataclass(frozen=True)
class Scope:
    """Which parts of the file this connection manages, and why others are skipped."""

    acls: bool = True
    users: bool = True
    notes: tuple[str, ...] = ()
    quotas: bool = True


def scope_for(settings: KafkaSettings) -> Scope:
    """What this connection manages. ACLs always: over IAM they still govern the cluster's
    SCRAM and mTLS principals (MSK accepts ACL calls from an IAM principal with
    ``kafka-cluster:AlterCluster``, and on MSK, which has no ``super.users``, only an IAM
    principal can create the first ones). SCRAM users not on MSK, which creates them only
    from Secrets Manager secrets associated with the cluster, never through the Admin API.
    Client quotas not on MSK Serverless, whose throughput limits AWS fixes per cluster and
    partition and whose broker configuration (where quotas live) cannot be changed."""
    notes: list[str] = []
    if settings.security is SecurityMode.IAM:
        notes.append(
            "ACLs apply to the SCRAM and mTLS principals only: MSK authorizes IAM principals "
            "by their IAM policies"
        )
    users = not any(".amazonaws.com" in server for server in settings.bootstrap_servers)
    if not users:
        notes.append(
            "SCRAM users skipped: MSK takes them from AmazonMSK_ secrets associated with the "
            "cluster (BatchAssociateScramSecret), not from the Kafka Admin API"
        )
    quotas = not any(".kafka-serverless." in server for server in settings.bootstrap_servers)
    if not quotas:
        notes.append(
            "client quotas skipped: MSK Serverless does not take Kafka client quotas (AWS "
            "sets fixed per-cluster and per-partition throughput limits instead)"
        )
    return Scope(True, users, tuple(notes), quotas)


def _result(future: Future[Any], what: str, timeout: float) -> Any:
    try:
        return future.result(timeout)
    except KafkaException as exc:
        raise ApplyError(f"{what}: {exc.args[0].str()}") from exc


def _match_all() -> AclBindingFilter:
    # None matches any name, principal and host (the stubs say str, the client allows None).
    return AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def _acl_fields(entry: AclEntry) -> tuple[Any, ...]:
    return (
        _RESOURCE[entry.resource],
        entry.name,
        _PATTERN[entry.pattern],
        entry.principal,
        entry.host,
        AclOperation[entry.operation.name],
        _PERMISSION[entry.permission],
    )


def binding(entry: AclEntry) -> AclBinding:
    """The Admin API form of one ACL entry."""
    return AclBinding(*_acl_fields(entry))


def binding_filter(entry: AclEntry) -> AclBindingFilter:
    """A filter matching exactly one ACL entry (what ``delete_acls`` takes)."""
    return AclBindingFilter(*_acl_fields(entry))


def _entry(acl: AclBinding) -> AclEntry | None:
    """None for bindings the file cannot express (delegation tokens, user resources)."""
    restype, pattern_type, operation = acl.restype, acl.resource_pattern_type, acl.operation
    if not isinstance(restype, ResourceType) or not isinstance(pattern_type, ResourcePatternType):
        return None
    kind, pattern = _KIND.get(restype), _PATTERN_KIND.get(pattern_type)
    if not isinstance(operation, AclOperation) or operation.name not in Operation.__members__:
        return None
    if kind is None or pattern is None:
        return None
    permission = "allow" if acl.permission_type is AclPermissionType.ALLOW else "deny"
    return AclEntry(
        acl.principal, kind, acl.name, pattern, Operation[operation.name], permission, acl.host
    )


def read_acls(admin: AdminClient, timeout: float) -> frozenset[AclEntry]:
    bindings = _result(admin.describe_acls(_match_all()), "describe ACLs", timeout)
    return frozenset(e for e in map(_entry, bindings) if e is not None)


def read_users(admin: AdminClient, timeout: float) -> dict[str, frozenset[str]]:
    """User -> its SCRAM mechanisms (the broker never returns passwords or hashes).

    The principal's right to describe the cluster is checked first: confluent-kafka 2.16
    aborts the whole process (``munmap_chunk(): invalid pointer``) when it frees a refused
    DescribeUserScramCredentials result, so the refusal must never reach it.
    """
    cluster = admin.describe_cluster(include_authorized_operations=True, request_timeout=timeout)
    allowed = _result(cluster, "describe the cluster", timeout).authorized_operations
    if not allowed or AclOperation.DESCRIBE not in allowed:
        raise ApplyError(
            "describe SCRAM users: this principal may not DESCRIBE the cluster; "
            "run plan/apply as an admin principal (or leave `users` out of the file)"
        )
    future = admin.describe_user_scram_credentials(request_timeout=timeout)
    found = _result(future, "describe SCRAM users", timeout)  # type: ignore[arg-type]
    return {
        user: frozenset(
            info.mechanism.name.replace("_", "-") for info in description.scram_credential_infos
        )
        for user, description in found.items()
    }


def _read_configs(
    admin: AdminClient, names: Iterable[str], timeout: float
) -> dict[str, tuple[dict[str, str], frozenset[str]]]:
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    if not resources:
        return {}
    out = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        entries: Mapping[str, ConfigEntry] = _result(future, f"describe {resource.name}", timeout)
        values = {k: e.value for k, e in entries.items() if e.value is not None}
        overrides = frozenset(
            k for k, e in entries.items() if e.source is ConfigSource.DYNAMIC_TOPIC_CONFIG
        )
        out[resource.name] = (values, overrides)
    return out


def read_live_state(
    admin: AdminClient,
    desired: DesiredState,
    scope: Scope,
    timeout: float = 30.0,
    quotas: QuotaClient | None = None,
) -> LiveState:
    """Topics (configs only for those the file names), ACLs, SCRAM users and (when the file
    has a ``quotas`` section and ``quotas`` is given) client quotas, as plain data."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ApplyError(f"list topics: {exc.args[0].str()}") from exc
    shapes = {}
    for name, topic in metadata.topics.items():
        if topic.error is not None:
            continue
        first = next(iter(topic.partitions.values()), None)
        shapes[name] = (len(topic.partitions), len(first.replicas) if first else 0)
    configs = _read_configs(admin, (n for n in desired.topics if n in shapes), timeout)
    topics = {
        name: LiveTopic(count, rf, *configs.get(name, ({}, frozenset())))
        for name, (count, rf) in shapes.items()
    }
    acls = read_acls(admin, timeout) if scope.acls else None
    users = read_users(admin, timeout) if scope.users else None
    live_quotas = None
    if desired.quotas is not None and scope.quotas and quotas is not None:
        try:
            live_quotas = quotas.describe()
        except QuotaError as exc:
            raise ApplyError(str(exc)) from exc
    return LiveState(topics, acls, users, scope.notes, live_quotas)


# ---- validation ------------------------------------------------------------------------------


def _new_topic(change: CreateTopic) -> NewTopic:
    spec = change.spec
    return NewTopic(
        change.name, spec.partitions, spec.replication_factor, config=dict(spec.configs)
    )


def _config_resource(change: AlterConfigs) -> ConfigResource:
    entries = [
        ConfigEntry(name, new, incremental_operation=AlterConfigOpType.SET)
        for name, (_old, new) in change.set.items()
    ] + [
        ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)
        for name in change.reset
    ]
    return ConfigResource(ResourceType.TOPIC, change.topic, incremental_configs=entries)


def _refusals(
    futures: Mapping[Any, Future[Any]], name: Callable[[Any], str], timeout: float
) -> list[str]:
    out = []
    for key, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            out.append(f"{name(key)}: the broker refuses it: {exc.args[0].str()}")
    return out


def _quota_alterations(
    plan: Plan,
) -> dict[QuotaEntity, tuple[dict[str, float], list[str]]]:
    return {
        c.entity: ({k: new for k, (_old, new) in c.set.items()}, sorted(c.remove))
        for c in plan.of(AlterQuota)
    }


def check_with_broker(
    admin: AdminClient, plan: Plan, timeout: float = 30.0, quotas: QuotaClient | None = None
) -> Plan:
    """Ask the broker to validate every topic and quota change (``validate_only``) without
    making it, so a value it refuses stops the whole plan before anything changes."""
    refusals: list[str] = []
    creates = [_new_topic(c) for c in plan.of(CreateTopic)]
    if creates:
        futures = admin.create_topics(creates, validate_only=True, request_timeout=timeout)
        refusals += _refusals(futures, lambda n: f"create topic {n}", timeout)
    grows = [NewPartitions(c.topic, c.wanted) for c in plan.of(AddPartitions)]
    if grows:
        grown = admin.create_partitions(grows, validate_only=True, request_timeout=timeout)
        refusals += _refusals(grown, lambda n: f"add partitions to {n}", timeout)
    alters = [_config_resource(c) for c in plan.of(AlterConfigs)]
    if alters:
        altered = admin.incremental_alter_configs(
            alters, validate_only=True, request_timeout=timeout
        )
        refusals += _refusals(altered, lambda r: f"alter configs of {r.name}", timeout)
    alterations = _quota_alterations(plan)
    if alterations and quotas is not None:
        try:
            refused = quotas.alter(alterations, validate_only=True)
        except QuotaError as exc:
            raise ApplyError(str(exc)) from exc
        refusals += [f"quota {e}: the broker refuses it: {why}" for e, why in refused.items()]
    return plan.with_refusals(refusals) if refusals else plan


# ---- apply -----------------------------------------------------------------------------------


def _wait(futures: Mapping[Any, Future[Any]], what: Callable[[Any], str], timeout: float) -> None:
    for key, future in futures.items():
        _result(future, what(key), timeout)


def _wait_for_acls(
    admin: AdminClient, present: set[AclEntry], absent: set[AclEntry], timeout: float
) -> None:
    """Block until the broker's authorizer serves the change: ``create_acls`` returns once
    the controller committed it, and a client racing in between would see the old ACLs."""

    def missing() -> str | None:
        live = read_acls(admin, timeout)
        if present <= live and not absent & live:
            return None
        return "the broker did not apply the ACL changes in time"

    _wait_until(missing, timeout)


def _wait_for_users(admin: AdminClient, wanted: dict[str, str], timeout: float) -> None:
    def missing() -> str | None:
        users = read_users(admin, timeout)
        if all(m in users.get(u, frozenset()) for u, m in wanted.items()):
            return None
        return f"the broker did not list the SCRAM users {sorted(wanted)} in time"

    _wait_until(missing, timeout)


def _wait_until(missing: Callable[[], str | None], timeout: float) -> None:
    """Ask `missing` every 0.1 s until it says nothing is missing (None); once `timeout`
    has passed, its last answer is the `ApplyError`."""
    deadline = time.monotonic() + timeout
    while (what := missing()) is not None:
        if time.monotonic() > deadline:
            raise ApplyError(what)
        time.sleep(0.1)


def resolve_passwords(plan: Plan, resolver: PasswordResolver = resolve_password) -> dict[str, str]:
    """Every password the plan needs, read before anything changes."""
    return {c.name: resolver(c.name, c.spec.password) for c in plan.of(AddUser)}


def apply_plan(
    admin: AdminClient,
    plan: Plan,
    passwords: Mapping[str, str],
    timeout: float = 30.0,
    quotas: QuotaClient | None = None,
) -> None:
    """Make the plan's changes, in the order the module docstring gives."""
    if plan.refusals:
        raise ApplyError("the plan has refused changes; nothing was applied")
    if plan.of(AlterQuota) and quotas is None:
        raise ApplyError("the plan changes client quotas but no quota client was given")
    creates = [_new_topic(c) for c in plan.of(CreateTopic)]
    if creates:
        _wait(
            admin.create_topics(creates, request_timeout=timeout), lambda n: f"create {n}", timeout
        )
    grows = [NewPartitions(c.topic, c.wanted) for c in plan.of(AddPartitions)]
    if grows:
        futures = admin.create_partitions(grows, request_timeout=timeout)
        _wait(futures, lambda n: f"add partitions to {n}", timeout)
    alters = [_config_resource(c) for c in plan.of(AlterConfigs)]
    if alters:
        altered = admin.incremental_alter_configs(alters, request_timeout=timeout)
        _wait(altered, lambda r: f"alter configs of {r.name}", timeout)
    _apply_acls(admin, plan, timeout)
    _apply_users(admin, plan, passwords, timeout)
    if quotas is not None:
        _apply_quotas(quotas, plan, timeout)
    deletes = [c.name for c in plan.of(DeleteTopic)]
    if deletes:
        _wait(
            admin.delete_topics(deletes, request_timeout=timeout), lambda n: f"delete {n}", timeout
        )


def _apply_acls(admin: AdminClient, plan: Plan, timeout: float) -> None:
    added = {c.entry for c in plan.of(AddAcl)}
    removed = {c.entry for c in plan.of(RemoveAcl)}
    if added:
        futures = admin.create_acls([binding(e) for e in sorted(added)], request_timeout=timeout)
        _wait(futures, lambda b: f"create ACL {b}", timeout)
    if removed:
        filters = [binding_filter(e) for e in sorted(removed)]
        deleted = admin.delete_acls(filters, request_timeout=timeout)
        _wait(deleted, lambda b: f"delete ACL {b}", timeout)
    if added or removed:
        _wait_for_acls(admin, added, removed, timeout)


def _apply_users(
    admin: AdminClient, plan: Plan, passwords: Mapping[str, str], timeout: float
) -> None:
    alterations: list[UserScramCredentialAlteration] = []
    created: dict[str, str] = {}
    for change in plan.of(AddUser):
        spec = change.spec
        info = ScramCredentialInfo(_MECHANISM[spec.mechanism], spec.iterations)
        alterations.append(
            UserScramCredentialUpsertion(change.name, info, passwords[change.name].encode())
        )
        created[change.name] = spec.mechanism
    for deletion in plan.of(DeleteUser):
        alterations += [
            UserScramCredentialDeletion(deletion.name, _MECHANISM[m])
            for m in sorted(deletion.mechanisms)
            if m in _MECHANISM
        ]
    if alterations:
        futures = admin.alter_user_scram_credentials(alterations, request_timeout=timeout)
        _wait(futures, lambda u: f"SCRAM user {u}", timeout)
    if created:
        _wait_for_users(admin, created, timeout)


def _apply_quotas(client: QuotaClient, plan: Plan, timeout: float) -> None:
    """Alter every entity's quotas in one request, then wait until a describe shows them
    (the broker serves quotas from its copy of the metadata log)."""
    alterations = _quota_alterations(plan)
    if not alterations:
        return
    try:
        refused = client.alter(alterations)
    except QuotaError as exc:
        raise ApplyError(str(exc)) from exc
    if refused:
        raise ApplyError("; ".join(f"quota {e}: {why}" for e, why in refused.items()))

    def missing() -> str | None:
        try:
            live = client.describe()
        except QuotaError as exc:
            raise ApplyError(str(exc)) from exc
        pending = [
            entity
            for entity, (sets, removes) in alterations.items()
            if any(live.get(entity, {}).get(k) != v for k, v in sets.items())
            or any(k in live.get(entity, {}) for k in removes)
        ]
        return f"the broker did not show the quotas of {pending[0]} in time" if pending else None

    _wait_until(missing, timeout)
