"""The desired state of a Kafka cluster (``deploy/kafka.yaml``): topics, ACLs, SCRAM users,
client quotas.

One reviewed file describes every cluster; per-environment overlays (``kafka.local.yaml``,
``kafka.prod.yaml``) change only what differs. Overlays are applied with JSON Merge Patch
semantics (RFC 7386): mappings merge key by key, ``null`` removes a key, any other value
(lists included) replaces. The merged document is validated by pydantic, and every error
names its entry, e.g. ``topics[ad-events].partitions: Input should be greater than 0``.

Passwords are never in the file, only where to find them (an environment variable, a file,
an AWS Secrets Manager secret, or, for the local broker only, its generated secrets file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

import adstream

CLUSTER_RESOURCE = "kafka-cluster"
"""The name Kafka gives the one cluster resource in ACLs."""
MIN_SCRAM_ITERATIONS = 4096


class DesiredStateError(ValueError):
    """The desired-state file cannot be read or is invalid; the message names the entry."""


class Operation(StrEnum):
    """ACL operations, as Kafka names them (``IdempotentWrite`` is ``idempotent_write``)."""

    ALL = "all"
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DELETE = "delete"
    ALTER = "alter"
    DESCRIBE = "describe"
    CLUSTER_ACTION = "cluster_action"
    DESCRIBE_CONFIGS = "describe_configs"
    ALTER_CONFIGS = "alter_configs"
    IDEMPOTENT_WRITE = "idempotent_write"


class ResourceKind(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional_id"
    CLUSTER = "cluster"


class PatternKind(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


def _operation_name(value: object) -> object:
    """Accept Kafka's spellings too: ``IdempotentWrite``, ``IDEMPOTENT_WRITE``, ``Read``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(text))
    return (text if "_" in text or text.isupper() else snake).lower()


def _config_value(value: object) -> object:
    """Configs are strings on the wire: YAML numbers and booleans become Kafka's spelling."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


ConfigValue = Annotated[str, BeforeValidator(_config_value)]
OperationName = Annotated[Operation, BeforeValidator(_operation_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSpec(_Strict):
    """One topic: its partitions, replication factor and topic-level configs."""

    partitions: int = Field(gt=0)
    replication_factor: int = Field(gt=0, le=32767)
    configs: dict[str, ConfigValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _min_isr_fits(self) -> Self:
        min_isr = self.configs.get("min.insync.replicas")
        if min_isr is not None and min_isr.isdigit() and int(min_isr) > self.replication_factor:
            raise ValueError(
                f"min.insync.replicas={min_isr} exceeds replication_factor="
                f"{self.replication_factor}: no write with acks=all could ever succeed"
            )
        return self


class Grant(_Strict):
    """Operations a principal may (or may not) perform on one resource or resource prefix.

    Exactly one of ``topic``, ``group``, ``transactional_id`` or ``cluster: true`` names the
    resource; ``pattern: prefixed`` makes the name a prefix.
    """

    topic: str | None = None
    group: str | None = None
    transactional_id: str | None = None
    cluster: bool = False
    pattern: PatternKind = PatternKind.LITERAL
    operations: list[OperationName] = Field(min_length=1)
    permission: Literal["allow", "deny"] = "allow"
    host: str = "*"

    @model_validator(mode="after")
    def _one_resource(self) -> Self:
        named = [k for k in ("topic", "group", "transactional_id") if getattr(self, k)]
        if self.cluster:
            named.append("cluster")
        if len(named) != 1:
            found = ", ".join(named) or "none"
            raise ValueError(
                f"name exactly one of topic, group, transactional_id or cluster: true "
                f"(found: {found})"
            )
        if self.cluster and self.pattern is not PatternKind.LITERAL:
            raise ValueError("the cluster resource has no prefixed pattern")
        return self

    @property
    def resource(self) -> tuple[ResourceKind, str]:
        if self.topic:
            return ResourceKind.TOPIC, self.topic
        if self.group:
            return ResourceKind.GROUP, self.group
        if self.transactional_id:
            return ResourceKind.TRANSACTIONAL_ID, self.transactional_id
        return ResourceKind.CLUSTER, CLUSTER_RESOURCE


class PasswordSource(_Strict):
    """Where a SCRAM password comes from, written ``kind:reference`` in the file (one string,
    so an overlay replaces it whole). Never the password itself:

    - ``env:NAME`` an environment variable; ``file:PATH`` a file's content (stripped);
    - ``aws_secret:ID`` a Secrets Manager secret (name or ARN) whose value is JSON with a
      ``password`` key (the format MSK uses for ``AmazonMSK_`` secrets) or the bare password;
    - ``generated`` the local broker's own ``secrets.json`` (``kafka up`` only).
    """

    env: str | None = None
    file: Path | None = None
    aws_secret: str | None = None
    generated: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, dict):  # built in code, e.g. PasswordSource(env="X")
            return value
        if not isinstance(value, str):
            raise ValueError(
                "write the password source as env:NAME, file:PATH, aws_secret:ID or generated"
            )
        if value.strip() == "generated":
            return {"generated": True}
        kind, sep, ref = value.partition(":")
        kind, ref = kind.strip(), ref.strip()
        if not sep or kind not in {"env", "file", "aws_secret"} or not ref:
            raise ValueError(
                f"{value!r} is not env:NAME, file:PATH, aws_secret:ID or generated "
                "(passwords themselves never go in this file)"
            )
        return {kind: ref}

    def describe(self) -> str:
        if self.env:
            return f"env ${self.env}"
        if self.file:
            return f"file {self.file}"
        if self.aws_secret:
            return f"secret {self.aws_secret}"
        return "generated by the local broker"


class UserSpec(_Strict):
    """A SCRAM user. The broker keeps only a salted hash, so a plan never compares passwords."""

    mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    iterations: int = Field(MIN_SCRAM_ITERATIONS, ge=MIN_SCRAM_ITERATIONS, le=16384)
    password: PasswordSource


DEFAULT_ENTITY = "<default>"
"""How the file names the default user or client-id of a quota (``kafka-configs
--entity-default``): it applies to every user / client-id without a quota of its own."""


class QuotaKey(StrEnum):
    """Client quota keys for user and client-id entities, as Kafka 4 names them
    (``org.apache.kafka.server.config.QuotaConfig``)."""

    PRODUCER_BYTE_RATE = "producer_byte_rate"  # bytes/s a client may produce, per broker
    CONSUMER_BYTE_RATE = "consumer_byte_rate"  # bytes/s a client may fetch, per broker
    REQUEST_PERCENTAGE = "request_percentage"  # % of one broker I/O + network thread
    CONTROLLER_MUTATION_RATE = "controller_mutation_rate"  # partitions created/deleted per s


_BYTE_RATES = {QuotaKey.PRODUCER_BYTE_RATE, QuotaKey.CONSUMER_BYTE_RATE}
QUOTA_ENTITY_TYPES = ("user", "client-id")


@dataclass(frozen=True)
class QuotaEntity:
    """Whom a quota applies to: a user, a client-id, or a user's client-id; each a name or
    the default (None). Written ``user=NAME``, ``client-id=NAME`` or
    ``user=NAME,client-id=NAME``, with ``<default>`` for the default."""

    user: str | None = None
    client_id: str | None = None
    has_user: bool = False
    has_client_id: bool = False

    @classmethod
    def parse(cls, text: str) -> QuotaEntity:
        """``user=alice,client-id=<default>`` -> its entity; ValueError saying what is wrong."""
        parts: dict[str, str | None] = {}
        for part in text.split(","):
            kind, sep, name = (p.strip() for p in part.partition("="))
            if not sep or kind not in QUOTA_ENTITY_TYPES or not name:
                raise ValueError(
                    f"{text!r} is not user=NAME, client-id=NAME or user=NAME,client-id=NAME "
                    f"(NAME may be {DEFAULT_ENTITY})"
                )
            if kind in parts:
                raise ValueError(f"{text!r} names {kind} twice")
            parts[kind] = None if name == DEFAULT_ENTITY else name
        return cls(parts.get("user"), parts.get("client-id"), "user" in parts, "client-id" in parts)

    def components(self) -> list[tuple[str, str | None]]:
        """(Kafka entity type, name or None for the default), as the quota APIs take them."""
        out: list[tuple[str, str | None]] = []
        if self.has_user:
            out.append(("user", self.user))
        if self.has_client_id:
            out.append(("client-id", self.client_id))
        return out

    def names(self) -> list[str]:
        """The literal (non-default) names, for the ``managed`` prefixes."""
        return [name for _, name in self.components() if name is not None]

    def __str__(self) -> str:
        return ",".join(
            f"{k}={n if n is not None else DEFAULT_ENTITY}" for k, n in self.components()
        )

    def __lt__(self, other: QuotaEntity) -> bool:
        """Plans list entities in the order of their written form."""
        return str(self) < str(other)


def _quota_value(value: object) -> object:
    if isinstance(value, bool):  # YAML `true` is not a rate
        raise ValueError("a quota is a number")
    return value


QuotaValue = Annotated[float, BeforeValidator(_quota_value)]


class QuotaSpec(_Strict):
    """The quota values of one entity; a key left out means no limit of that kind."""

    producer_byte_rate: QuotaValue | None = Field(None, gt=0)
    consumer_byte_rate: QuotaValue | None = Field(None, gt=0)
    request_percentage: QuotaValue | None = Field(None, gt=0)
    controller_mutation_rate: QuotaValue | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _checked(self) -> Self:
        values = self.values()
        if not values:
            raise ValueError(f"set at least one of {', '.join(k.value for k in QuotaKey)}")
        for key in _BYTE_RATES & values.keys():
            if not values[key].is_integer():
                raise ValueError(f"{key.value} is whole bytes per second, not {values[key]}")
        return self

    def values(self) -> dict[QuotaKey, float]:
        return {k: float(v) for k in QuotaKey if (v := getattr(self, k.value)) is not None}


class Managed(_Strict):
    """Name prefixes that ``--allow-delete`` may delete, per kind; absent means all.

    Set them on a cluster the file shares with others: a topic, ACL (by resource name)
    or user outside these prefixes is never deleted.
    """

    topics: list[str] | None = None
    acls: list[str] | None = None
    users: list[str] | None = None
    quotas: list[str] | None = None


def principal_name(value: str) -> str:
    """``adstream-api`` means ``User:adstream-api``; a name with a type prefix stays as is."""
    return value if value.startswith(("User:", "Group:")) else f"User:{value}"


class DesiredState(_Strict):
    """The whole file: topics by name, grants by principal, SCRAM users by name, quotas by
    entity. ``quotas`` absent (None) means the file does not manage quotas: they are neither
    read nor changed; ``quotas: {}`` manages them and wants none."""

    topics: dict[str, TopicSpec] = Field(default_factory=dict)
    acls: dict[str, list[Grant]] = Field(default_factory=dict)
    users: dict[str, UserSpec] = Field(default_factory=dict)
    quotas: dict[str, QuotaSpec] | None = None
    managed: Managed = Field(default_factory=Managed)

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, value: dict[str, TopicSpec]) -> dict[str, TopicSpec]:
        for name in value:
            if not name or len(name) > 249 or name in {".", ".."}:
                raise ValueError(f"{name!r} is not a valid topic name")
            if any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in name):
                raise ValueError(f"topic name {name!r} may use only letters, digits, '.', '_', '-'")
        return value

    @field_validator("acls")
    @classmethod
    def _principals(cls, value: dict[str, list[Grant]]) -> dict[str, list[Grant]]:
        merged: dict[str, list[Grant]] = {}
        for principal, grants in value.items():
            merged.setdefault(principal_name(principal), []).extend(grants)
        return merged

    @field_validator("quotas")
    @classmethod
    def _quota_entities(cls, value: dict[str, QuotaSpec] | None) -> dict[str, QuotaSpec] | None:
        if value is None:
            return None
        seen: dict[QuotaEntity, str] = {}
        for key in value:
            entity = QuotaEntity.parse(key)
            if entity in seen:
                raise ValueError(f"{key!r} and {seen[entity]!r} are the same entity")
            seen[entity] = key
        return value

    def quota_entities(self) -> dict[QuotaEntity, dict[QuotaKey, float]]:
        """The file's quotas by parsed entity (empty when quotas are not managed)."""
        return {QuotaEntity.parse(k): spec.values() for k, spec in (self.quotas or {}).items()}


# ---- loading ---------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: how an overlay changes the base document."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _location(loc: tuple[int | str, ...]) -> str:
    """``('topics', 'ad-events', 'partitions')`` -> ``topics[ad-events].partitions``."""
    out = ""
    keyed = {"topics", "acls", "users", "quotas"}
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int) or previous in keyed:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous = part if previous not in keyed else None
    return out or "(file)"


def describe_errors(error: ValidationError) -> str:
    return "\n".join(f"  {_location(e['loc'])}: {e['msg']}" for e in error.errors())


def _read_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is a base dependency
        raise DesiredStateError("reading YAML needs PyYAML: pip install pyyaml") from exc
    try:
        text = path.read_text()
    except OSError as exc:
        raise DesiredStateError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DesiredStateError(f"{path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise DesiredStateError(f"{path}: the top level must be a mapping")
    return data or {}


def parse_desired_state(document: Any, source: str = "desired state") -> DesiredState:
    """Validate a merged document; errors name each bad entry."""
    try:
        return DesiredState.model_validate(document)
    except ValidationError as exc:
        raise DesiredStateError(f"invalid {source}:\n{describe_errors(exc)}") from None


def overlay_path(base: Path, env: str) -> Path:
    """``deploy/kafka.yaml`` + ``local`` -> ``deploy/kafka.local.yaml``."""
    return base.with_name(f"{base.stem}.{env}{base.suffix}")


def load_desired_state(files: list[Path], env: str | None = None) -> DesiredState:
    """The first file, each further file, then (with ``env``) the first file's overlay, merged."""
    if not files:
        raise DesiredStateError("no desired-state file given")
    paths = [*files, *([overlay_path(files[0], env)] if env else [])]
    document: Any = {}
    for path in paths:
        document = merge_patch(document, _read_yaml(path))
    return parse_desired_state(document, " + ".join(str(p) for p in paths))


def shipped_deploy_path(relative: str) -> Path | None:
    """``deploy/<relative>`` inside the installed package (wheels carry a copy of
    ``deploy/``) or in the source checkout this package runs from; None if neither has it."""
    package = Path(adstream.__file__).resolve().parent
    for root in (package / "deploy", package.parents[1] / "deploy"):
        if (root / relative).exists():
            return root / relative
    return None


def default_state_file() -> Path:
    """The shipped ``deploy/kafka.yaml``."""
    found = shipped_deploy_path("kafka.yaml")
    if found is None or not found.is_file():
        raise DesiredStateError(
            f"no deploy/kafka.yaml next to {Path(adstream.__file__).resolve().parent}: "
            "pass the desired-state file explicitly"
        )
    return found


# ---- passwords -------------------------------------------------------------------------------


def resolve_password(user: str, source: PasswordSource) -> str:
    """The password a source names; raises DesiredStateError saying what is missing."""
    if source.env:
        value = os.environ.get(source.env)
        if not value:
            raise DesiredStateError(f"users[{user}].password: ${source.env} is not set")
        return value
    if source.file:
        try:
            value = source.file.read_text().strip()
        except OSError as exc:
            raise DesiredStateError(f"users[{user}].password: cannot read {source.file}") from exc
        if not value:
            raise DesiredStateError(f"users[{user}].password: {source.file} is empty")
        return value
    if source.aws_secret:
        return _aws_secret_password(user, source.aws_secret)
    raise DesiredStateError(
        f"users[{user}].password: 'generated' passwords exist only on the local broker "
        "(adstream kafka up); use env, file or aws_secret for other clusters"
    )


def _aws_secret_password(user: str, secret_id: str) -> str:
    """Read the secret with botocore (a base dependency), using the default AWS credentials."""
    from botocore.session import get_session

    try:
        region = secret_id.split(":")[3] if secret_id.startswith("arn:") else None
        client = get_session().create_client("secretsmanager", region_name=region)
        value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # botocore raises many types; the message says which
        raise DesiredStateError(f"users[{user}].password: AWS secret {secret_id}: {exc}") from exc
    try:
        parsed = json.loads(value)
    except ValueError:
        return str(value)
    password = parsed.get("password") if isinstance(parsed, dict) else None
    if isinstance(password, str):
        return password
    raise DesiredStateError(f"users[{user}].password: AWS secret {secret_id} has no 'password' key")
