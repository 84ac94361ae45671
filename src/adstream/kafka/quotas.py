"""Client quotas (KIP-546) read and changed through kafka-python, the one place it is used.

Why a second Kafka client: confluent-kafka (librdkafka) has no DescribeClientQuotas /
AlterClientQuotas (the request is open as confluentinc/librdkafka#5227, the Python side as
the draft confluent-kafka-python#2321), and since Kafka 4 has no ZooKeeper, those two
requests are the only way to manage quotas. kafka-python 3.0 ships both messages, generated
from Kafka's own JSON schemas, but no admin method for them; ``_QuotaAdmin`` sends them over
its ``KafkaAdminClient``'s connection manager exactly as that client's own admin methods do
(``self._manager.run(self._manager.send, request)``). kafka-python is untyped: everything
that touches it stays in this module, behind the typed ``QuotaClient``.

It connects from the same ``KafkaSettings`` as every other client, so every auth mode works:
TLS and mTLS with the ``ssl.SSLContext`` the doctor uses (same CA, client identity and host
name check), SCRAM with the same user, and MSK IAM as SASL/OAUTHBEARER with the tokens of
``adstream.kafka.iam`` (the signer and credential handling librdkafka's ``oauth_cb`` uses).
Kafka authorizes DescribeClientQuotas with DESCRIBE_CONFIGS and AlterClientQuotas with
ALTER_CONFIGS on the cluster (on MSK IAM: ``kafka-cluster:DescribeClusterDynamicConfiguration``
and ``kafka-cluster:AlterClusterDynamicConfiguration``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, Self

import kafka.errors as kafka_errors
from kafka import KafkaAdminClient
from kafka.net.sasl.oauth import AbstractTokenProvider
from kafka.protocol.admin import (
    AlterClientQuotasRequest,
    DescribeClientQuotasRequest,
)

from adstream.kafka.desired_state import QUOTA_ENTITY_TYPES, QuotaEntity
from adstream.kafka.factory import security_protocol
from adstream.kafka.iam import OAuthCallback, oauth_callback
from adstream.kafka.settings import KafkaSettings, SecurityMode
from adstream.kafka.tls import resolve_tls, ssl_context

# Renew an IAM token this long before librdkafka's rule would (its expiry is already capped
# at the credentials' own).
TOKEN_RENEW_MARGIN_S = 60.0

Quotas = dict[QuotaEntity, dict[str, float]]

# kafka-python logs every connection at INFO; a plan's output is the plan, not that chatter.
logging.getLogger("kafka").setLevel(logging.WARNING)


class QuotaError(RuntimeError):
    """A quota request failed; the message names the entity and Kafka's error."""


class _MskTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """kafka-python's OAUTHBEARER token source, backed by the project's MSK IAM signer;
    one token is reused until shortly before it expires."""

    def __init__(self, callback: OAuthCallback) -> None:
        super().__init__()
        self._callback = callback
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._token[1] - TOKEN_RENEW_MARGIN_S:
                self._token = self._callback(None)
            return self._token[0]


def kafka_python_config(settings: KafkaSettings, timeout: float = 30.0) -> dict[str, Any]:
    """``KafkaAdminClient`` keyword arguments equivalent to ``factory.base_config``."""
    conf: dict[str, Any] = {
        "bootstrap_servers": list(settings.bootstrap_servers),
        "client_id": settings.client_id,
        "security_protocol": security_protocol(settings),
        "request_timeout_ms": int(timeout * 1000),
        "bootstrap_timeout_ms": int(timeout * 1000),
    }
    material = resolve_tls(settings)
    if material is not None:
        conf["ssl_context"] = ssl_context(material)  # CA, identity and check_hostname in one
    if settings.security is SecurityMode.SCRAM:
        assert settings.scram_password is not None  # guaranteed by KafkaSettings validation
        conf["sasl_mechanism"] = settings.scram_mechanism
        conf["sasl_plain_username"] = settings.scram_username
        conf["sasl_plain_password"] = settings.scram_password.get_secret_value()
    elif settings.security is SecurityMode.IAM:
        conf["sasl_mechanism"] = "OAUTHBEARER"
        conf["sasl_oauth_token_provider"] = _MskTokenProvider(oauth_callback(settings))
    return conf


class _QuotaAdmin(KafkaAdminClient):  # type: ignore[misc]
    """kafka-python's admin client plus a way to send a request it has no method for."""

    def send(self, request: Any, timeout_ms: int) -> Any:
        return self._manager.run(self._manager.send, request, None, timeout_ms)


def _error(code: int, message: str | None) -> str:
    return f"{kafka_errors.for_code(code).__name__}" + (f": {message}" if message else "")


def _entity(parts: Iterable[Any]) -> QuotaEntity | None:
    """None for entities the file cannot express (IP quotas)."""
    found = {p.entity_type: p.entity_name for p in parts}
    if not found or not set(found) <= set(QUOTA_ENTITY_TYPES):
        return None
    return QuotaEntity(
        found.get("user"), found.get("client-id"), "user" in found, "client-id" in found
    )


class QuotaClient:
    """Describe and alter client quotas of user / client-id entities."""

    def __init__(self, settings: KafkaSettings, timeout: float = 30.0) -> None:
        self._timeout_ms = int(timeout * 1000)
        try:
            self._admin = _QuotaAdmin(**kafka_python_config(settings, timeout))
        except kafka_errors.KafkaError as exc:
            raise QuotaError(f"connect for client quotas: {exc!r}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._admin.close()

    def _send(self, request: Any, what: str) -> Any:
        try:
            return self._admin.send(request, self._timeout_ms)
        except kafka_errors.KafkaError as exc:
            raise QuotaError(f"{what}: {exc!r}") from exc

    def describe(self) -> Quotas:
        """Every user / client-id quota on the cluster (IP quotas are left out)."""
        request = DescribeClientQuotasRequest(components=[], strict=False)
        response = self._send(request, "describe client quotas")
        if response.error_code:
            raise QuotaError(
                f"describe client quotas: {_error(response.error_code, response.error_message)}"
            )
        out: Quotas = {}
        for entry in response.entries or []:
            entity = _entity(entry.entity)
            if entity is not None:
                out[entity] = {v.key: float(v.value) for v in entry.values}
        return out

    def alter(
        self,
        changes: Mapping[QuotaEntity, tuple[Mapping[str, float], Iterable[str]]],
        *,
        validate_only: bool = False,
    ) -> dict[QuotaEntity, str]:
        """Set and remove keys per entity (entity -> (key -> value, keys to remove)) in one
        request; return the broker's error per refused entity (empty: all done)."""
        if not changes:
            return {}
        entry = AlterClientQuotasRequest.EntryData
        entries = [
            entry(
                entity=[
                    entry.EntityData(entity_type=kind, entity_name=name)
                    for kind, name in entity.components()
                ],
                ops=[entry.OpData(key=k, value=float(v), remove=False) for k, v in sets.items()]
                + [entry.OpData(key=k, value=0.0, remove=True) for k in removes],
            )
            for entity, (sets, removes) in sorted(changes.items())
        ]
        request = AlterClientQuotasRequest(entries=entries, validate_only=validate_only)
        response = self._send(request, "alter client quotas")
        errors: dict[QuotaEntity, str] = {}
        for result in response.entries:
            entity = _entity(result.entity)
            if result.error_code and entity is not None:
                errors[entity] = _error(result.error_code, result.error_message)
        return errors


def quota_client_if(
    needed: bool, settings: KafkaSettings, timeout: float = 30.0
) -> AbstractContextManager[QuotaClient | None]:
    """A quota connection only when `needed` (the file manages quotas, or the plan changes
    them), else None: a file without `quotas` never asks for the rights to read them."""
    return QuotaClient(settings, timeout) if needed else nullcontext()
