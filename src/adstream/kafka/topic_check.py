"""Start-up check: the topics a service needs exist, replicated as its deployment demands.

``acks=all`` only waits for the *in-sync* replicas: on a topic with replication factor 1 or
``min.insync.replicas`` 1, a 2xx (or a committed count) can be lost with one broker. A
deployment states what it demands (``adstream.deployment``) and a service that finds less
refuses to start, naming each topic and what is wrong, instead of running half-configured.
Reading ``min.insync.replicas`` needs the ``describe_configs`` grant on the topic (on MSK
with IAM: ``kafka-cluster:DescribeTopicDynamicConfiguration``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from adstream.kafka.factory import make_admin
from adstream.kafka.settings import KafkaSettings

MIN_ISR = "min.insync.replicas"


@dataclass(frozen=True)
class TopicRequirements:
    """What every needed topic must have; None: not checked (existence always is)."""

    replication_factor: int | None = None
    min_insync_replicas: int | None = None


@dataclass(frozen=True)
class FoundTopic:
    """A topic as the cluster reports it. ``replication_factor`` is its least-replicated
    partition's; ``min_insync_replicas`` is None when not read, ``config_error`` says why
    it could not be."""

    replication_factor: int
    min_insync_replicas: int | None = None
    config_error: str | None = None


class TopicCheckError(RuntimeError):
    """A needed topic is missing or replicated less than demanded: a configuration error."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class TopicCheckUnavailableError(RuntimeError):
    """The cluster could not be asked (unreachable, timed out): not a configuration error."""


def topic_problems(
    needed: Iterable[str], found: Mapping[str, FoundTopic], wanted: TopicRequirements
) -> list[str]:
    """Each way a needed topic falls short, one sentence naming the topic."""
    problems = []
    for name in needed:
        topic = found.get(name)
        if topic is None:
            problems.append(
                f"topic {name} does not exist (or this principal may not describe it): "
                "create it with `adstream kafka apply`"
            )
            continue
        rf = wanted.replication_factor
        if rf is not None and topic.replication_factor < rf:
            problems.append(
                f"topic {name} has replication factor {topic.replication_factor}, {rf} is required"
            )
        isr = wanted.min_insync_replicas
        if isr is None:
            continue
        if topic.config_error is not None:
            problems.append(f"cannot read {MIN_ISR} of topic {name}: {topic.config_error}")
        elif topic.min_insync_replicas is None or topic.min_insync_replicas < isr:
            problems.append(
                f"topic {name} has {MIN_ISR}={topic.min_insync_replicas}, {isr} is required"
            )
    return problems


def read_topics(
    admin: AdminClient, names: Sequence[str], *, read_min_isr: bool, timeout: float = 30.0
) -> dict[str, FoundTopic]:
    """The needed topics that exist, with their replication (and ``min.insync.replicas``).

    All topics are listed rather than each requested by name: a metadata request for one
    topic can auto-create it on brokers that allow that, hiding the very error we look for.
    """
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise TopicCheckUnavailableError(f"cannot list topics: {exc.args[0].str()}") from exc
    shapes = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            continue
        shapes[name] = min(len(p.replicas) for p in topic.partitions.values())
    if not read_min_isr or not shapes:
        return {name: FoundTopic(rf) for name, rf in shapes.items()}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in shapes]
    found = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        rf = shapes[resource.name]
        try:
            entry = future.result(timeout).get(MIN_ISR)
        except KafkaException as exc:
            error = exc.args[0]
            if error.retriable():
                raise TopicCheckUnavailableError(
                    f"cannot describe topic {resource.name}: {error.str()}"
                ) from exc
            found[resource.name] = FoundTopic(
                rf, config_error=f"{error.str()} (grant describe_configs on the topic)"
            )
            continue
        value = int(entry.value) if entry is not None and entry.value is not None else None
        found[resource.name] = FoundTopic(rf, value)
    return found


def check_topics(
    settings: KafkaSettings,
    names: Sequence[str],
    wanted: TopicRequirements,
    timeout: float = 30.0,
) -> None:
    """Raise ``TopicCheckError`` listing every shortfall of ``names`` on the cluster."""
    admin = make_admin(settings)
    found = read_topics(
        admin, names, read_min_isr=wanted.min_insync_replicas is not None, timeout=timeout
    )
    problems = topic_problems(names, found, wanted)
    if problems:
        raise TopicCheckError(problems)
