"""Doctor steps through a real librdkafka client: authentication, metadata, authorization.

librdkafka reports the precise cause (e.g. SASL failure) through `error_cb` while the call
itself fails with a generic timeout, so errors from both are collected and the most
specific one is classified into the step that failed and its usual fix.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from enum import StrEnum

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from cryptography import x509

from adstream.kafka.checks import Step, StepResult
from adstream.kafka.factory import base_config
from adstream.kafka.settings import KafkaSettings, SecurityMode
from adstream.kafka.tls import TlsMaterial, resolve_tls

_GENERIC = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT})
_AUTH_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.ILLEGAL_SASL_STATE,
    }
)
_AUTHZ_CODES = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    }
)


class Operation(StrEnum):
    """Topic operations the doctor can require (names of confluent-kafka `AclOperation`)."""

    DESCRIBE = "DESCRIBE"
    WRITE = "WRITE"
    READ = "READ"


def _auth_fix(mode: SecurityMode) -> str:
    if mode is SecurityMode.SCRAM:
        return (
            "check scram_username / scram_password; on MSK the user is a Secrets Manager "
            "secret named AmazonMSK_..., encrypted with a customer KMS key and associated "
            "with the cluster, and SCRAM listens on port 9096"
        )
    if mode is SecurityMode.IAM:
        return (
            "check the AWS credentials (profile / role), iam_region, and that the IAM policy "
            "allows kafka-cluster:Connect on the cluster; IAM listens on port 9098"
        )
    return "check the authentication settings match the listener of this port"


def pick_error(errors: Sequence[KafkaError]) -> KafkaError:
    """The most telling error: a specific cause beats the generic timeout it led to."""
    specific = [e for e in errors if e.code() not in _GENERIC]
    return (specific or list(errors))[0]


def classify_kafka_error(error: KafkaError, mode: SecurityMode, topic: str) -> StepResult:
    """Map a librdkafka error to the doctor step that failed and the usual fix."""
    code, reason = error.code(), error.str()
    if code in _AUTH_CODES:
        return StepResult.failed(
            Step.AUTHENTICATION, f"authentication failed: {reason}", _auth_fix(mode)
        )
    if code == KafkaError.UNSUPPORTED_SASL_MECHANISM:
        return StepResult.failed(
            Step.AUTHENTICATION,
            f"the broker does not offer this SASL mechanism: {reason}",
            "enable the auth method on the cluster and use its port (9096 SCRAM, 9098 IAM)",
        )
    if code == KafkaError._SSL:
        return StepResult.failed(
            Step.TLS, f"TLS failed in librdkafka: {reason}", "check the CA and client certificate"
        )
    if code == KafkaError._RESOLVE:
        return StepResult.failed(
            Step.DNS,
            f"librdkafka cannot resolve a broker: {reason}",
            "brokers advertise names that must resolve from this machine (VPC DNS)",
        )
    if code in _AUTHZ_CODES:
        return StepResult.failed(
            Step.AUTHORIZATION,
            f"not authorized: {reason}",
            f"grant this principal ACLs on topic {topic} (e.g. DESCRIBE, WRITE for producers, "
            "READ on the topic and group for consumers); with IAM, allow kafka-cluster:"
            "DescribeTopic / WriteData / ReadData in its policy",
        )
    if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
        return StepResult.failed(
            Step.AUTHORIZATION,
            f"topic {topic} does not exist: {reason}",
            f"create topic {topic} (auto-creation is off on MSK by default)",
        )
    step = Step.AUTHENTICATION if mode in (SecurityMode.SCRAM, SecurityMode.IAM) else Step.METADATA
    return StepResult.failed(
        step,
        f"no answer from the cluster: {reason}",
        "the security settings probably do not match this listener (e.g. SASL settings on "
        "the TLS port, or plaintext on a TLS port); "
        + (_auth_fix(mode) if step is Step.AUTHENTICATION else "check security.protocol"),
    )


def check_cluster(
    settings: KafkaSettings,
    tls: TlsMaterial | None,
    topic: str,
    required: Iterable[Operation],
    timeout: float,
) -> list[StepResult]:
    """Authenticate, read metadata and check the principal's operations on `topic`."""
    errors: list[KafkaError] = []
    conf = dict(base_config(settings, tls))
    conf.update(
        {
            "error_cb": errors.append,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "log_level": 0,
        }
    )
    admin = AdminClient(conf)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        return [classify_kafka_error(pick_error([*errors, exc.args[0]]), settings.security, topic)]
    results = [_authenticated(settings, tls)]
    brokers = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    unresolvable = [str(b.host) for b in metadata.brokers.values() if not _resolves(str(b.host))]
    if unresolvable:
        results.append(
            StepResult.failed(
                Step.METADATA,
                f"brokers advertise names this machine cannot resolve: {', '.join(unresolvable)}",
                "resolve the advertised broker names (VPC DNS, or advertised.listeners "
                "of a self-managed broker)",
            )
        )
        return results
    results.append(
        StepResult.passed(
            Step.METADATA, f"cluster {metadata.cluster_id}, brokers {', '.join(brokers)}"
        )
    )
    results.append(_authorization(admin, settings.security, topic, set(required), timeout))
    return results


def describe_identity(settings: KafkaSettings, tls: TlsMaterial | None = None) -> str:
    """Who these settings authenticate as, for error messages: the broker maps it to a principal."""
    mode = settings.security
    if mode is SecurityMode.SCRAM:
        return f"SCRAM user {settings.scram_username}"
    if mode is SecurityMode.IAM:
        who = settings.iam_role_arn or f"profile {settings.iam_profile or 'default'}"
        return f"IAM identity ({who})"
    if mode is SecurityMode.MTLS:
        material = tls if tls is not None else resolve_tls(settings)
        if material is not None and material.identity is not None:
            cert = x509.load_pem_x509_certificate(material.identity.cert_pem.encode())
            return f"client certificate {cert.subject.rfc4514_string()}"
    return "User:ANONYMOUS" if mode is SecurityMode.PLAINTEXT else f"security={mode.value}"


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return True


def _authenticated(settings: KafkaSettings, tls: TlsMaterial | None) -> StepResult:
    mode = settings.security
    if mode is SecurityMode.SCRAM:
        return StepResult.passed(
            Step.AUTHENTICATION, f"{settings.scram_mechanism} as {settings.scram_username}"
        )
    if mode is SecurityMode.IAM:
        return StepResult.passed(Step.AUTHENTICATION, f"IAM (OAUTHBEARER) in {settings.iam_region}")
    if mode is SecurityMode.MTLS and tls is not None and tls.identity is not None:
        return StepResult.passed(Step.AUTHENTICATION, "mutual TLS client certificate accepted")
    return StepResult.skipped(Step.AUTHENTICATION, f"security={mode.value} does not authenticate")


def _authorization(
    admin: AdminClient, mode: SecurityMode, topic: str, required: set[Operation], timeout: float
) -> StepResult:
    futures = admin.describe_topics(
        TopicCollection([topic]), include_authorized_operations=True, request_timeout=timeout
    )
    try:
        description = futures[topic].result()
    except KafkaException as exc:
        return classify_kafka_error(exc.args[0], mode, topic)
    return authorization_result(topic, description.authorized_operations, required)


def authorization_result(
    topic: str, authorized: Iterable[object] | None, required: set[Operation]
) -> StepResult:
    """Compare the broker's authorized operations (AclOperation values) with `required`."""
    if authorized is None:
        return StepResult.passed(
            Step.AUTHORIZATION,
            f"DESCRIBE on {topic} allowed; the broker did not report other operations",
        )
    granted = {getattr(op, "name", str(op)) for op in authorized}
    missing = sorted(
        op.value for op in required if op.value not in granted and "ALL" not in granted
    )
    if missing:
        return StepResult.failed(
            Step.AUTHORIZATION,
            f"this principal lacks {', '.join(missing)} on topic {topic} "
            f"(granted: {', '.join(sorted(granted)) or 'nothing'})",
            f"grant {', '.join(missing)} on topic {topic} to this principal (kafka-acls "
            "--add --allow-principal ... --operation ...; with IAM, the matching "
            "kafka-cluster:* actions in its policy)",
        )
    return StepResult.passed(
        Step.AUTHORIZATION, f"on {topic}: {', '.join(sorted(granted & _wanted(required)))}"
    )


def _wanted(required: set[Operation]) -> set[str]:
    return {op.value for op in required} | {"ALL"}
