"""Who is calling and what they may do: API keys, signed URLs, scopes and rate limits.

`Gate` is used the same way by the FastAPI routes and the hot path (which answers its
refusals itself: admission spends tokens and nonces, so it must not run twice), before
anything is published:

1. **authenticate**: ``Authorization: Bearer <key>`` (server to server), or the
   signed-URL parameters ``kid, exp, nonce, sig`` (browsers) → 401 if missing or invalid;
   then the caller validates the request's own fields (422);
2. **authorize**: the key's scopes (event types, ad-id prefixes, impressions per event,
   events per request) → 403;
3. **replay** (signed URLs): a nonce already used within its expiry → 409;
4. **admit**: the key's token bucket (one token per event) → 429 with ``Retry-After``.
   A refused request spends no tokens, and its nonce is released again, as it is when
   Kafka does not acknowledge (`release`), so a retry of the same URL can still count.
   If the shared store cannot answer (Redis down): 503 with ``Retry-After``
   (`limits_redis` says why it fails closed).

What guarantees what for signed URLs: the API refuses a replay it has seen (the nonce
store is shared by one server's workers, `limits_store`, or by every task sharing a
Redis, `limits_redis`); the aggregator's event-id
de-duplication guarantees a replay is never counted twice even when the API did not see
it (another task, a restart), because the event id derives from key id and nonce, as long
as the URL's lifetime (at most ``ADSTREAM_API_MAX_URL_TTL_S``) is within the aggregator's
de-duplication window.

Keys never reach a log or an error message: errors say what was wrong, not what was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from adstream.events import AdEvent, EventType
from adstream.ingest.keys import InvalidKeyError, KeyRecord, KeyRing, Scopes
from adstream.ingest.limits_store import LimitsStore, LimitsStoreDownError
from adstream.ingest.signing import SignatureError, SignedParams, signed_event_key

UNKNOWN_CALLER = "unknown"
"""The metrics label of requests whose caller could not be established."""


class AuthError(Exception):
    """A refused request: its HTTP status, error code and (safe to show) detail."""

    status = 401
    error = "unauthenticated"

    def __init__(self, detail: str, caller: str = UNKNOWN_CALLER) -> None:
        super().__init__(detail)
        self.detail = detail
        self.caller = caller

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="adstream"'}


class ForbiddenError(AuthError):
    status = 403
    error = "forbidden"

    def headers(self) -> dict[str, str]:
        return {}


class ReplayedError(AuthError):
    status = 409
    error = "replayed"

    def headers(self) -> dict[str, str]:
        return {}


class RateLimitedError(AuthError):
    status = 429
    error = "rate_limited"

    def __init__(self, detail: str, caller: str, retry_after_s: int) -> None:
        super().__init__(detail, caller)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class LimitsUnavailableError(AuthError):
    """The shared rate-limit and nonce store did not answer: try again shortly."""

    status = 503
    error = "limits_unavailable"

    def __init__(self, detail: str, caller: str, retry_after_s: int) -> None:
        super().__init__(detail, caller)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its name (goes on the Kafka record) and key."""

    name: str
    key_id: str
    scopes: Scopes
    nonce: str | None = None  # set for a signed URL: the replay entry to release on failure
    exp: int = 0  # a signed URL's expiry (epoch s): how long its nonce is remembered

    @property
    def event_key(self) -> str | None:
        """The `Idempotency-Key` a signed event's id derives from (None for a bearer key)."""
        return None if self.nonce is None else signed_event_key(self.key_id, self.nonce)


class CallerObserver(Protocol):
    """Receives each decision per caller (implemented by the Prometheus metrics)."""

    def caller_outcome(self, caller: str, outcome: str, events: int) -> None: ...


class Gate:
    """Authentication, authorization and admission in key mode (see the module docstring)."""

    def __init__(
        self,
        keys: KeyRing,
        limits: LimitsStore,
        observer: CallerObserver,
        max_url_ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.limits = limits
        self.observer = observer
        self.max_url_ttl_s = max_url_ttl_s
        self._clock = clock

    # ---- 1. authenticate ------------------------------------------------------------------
    def bearer(self, authorization: str | None) -> Caller:
        """The caller of an ``Authorization: Bearer <key>`` header; `AuthError` otherwise."""
        if authorization is None:
            raise self._refused(AuthError("an API key is required: Authorization: Bearer <key>"))
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise self._refused(AuthError("the Authorization header must be 'Bearer <key>'"))
        try:
            record = self.keys.verify(key.strip())
        except InvalidKeyError as exc:
            raise self._refused(AuthError(str(exc))) from None
        return _caller(record)

    def signed(self, query: Mapping[str, str], event_type: EventType, ad_id: str) -> Caller:
        """The caller who signed this URL; `AuthError` if it is forged, tampered or expired."""
        try:
            params = SignedParams.parse(query)
            if params is None:
                raise SignatureError("not signed")
            signer = self.keys.signer(params.key_id)
            if signer is None:
                raise SignatureError("unknown or revoked signing key")
            record, secret = signer
            params.verify(secret, event_type.value, ad_id, self._clock(), self.max_url_ttl_s)
        except SignatureError as exc:
            raise self._refused(AuthError(f"invalid signed URL: {exc}")) from None
        return _caller(record, params.nonce, params.exp)

    def single(
        self, authorization: str | None, query: Mapping[str, str], event_type: EventType, ad_id: str
    ) -> Caller:
        """Authenticate a single-event request: signed if it has signed-URL parameters."""
        if any(name in query for name in ("sig", "kid", "nonce", "exp")):
            return self.signed(query, event_type, ad_id)
        return self.bearer(authorization)

    # ---- 2. authorize, 3. replay, 4. admit -------------------------------------------------
    async def admit(self, caller: Caller, events: Sequence[AdEvent]) -> None:
        """Check the events against the caller's scopes and bucket; raise if refused."""
        scopes = caller.scopes
        if len(events) > scopes.max_events:
            self._forbid(caller, f"this key may send at most {scopes.max_events} events a request")
        for event in events:
            if event.type not in scopes.types:
                self._forbid(caller, f"this key may not record {event.type.value} events")
            if not scopes.allows_ad(event.ad_id):
                self._forbid(caller, f"this key may not record events for adId {event.ad_id}")
            if event.impressions > scopes.max_impressions:
                self._forbid(
                    caller, f"this key may record at most {scopes.max_impressions} per event"
                )
        try:
            if caller.nonce is not None and not await self.limits.first_use(
                caller.key_id, caller.nonce, caller.exp
            ):
                raise self._refused(
                    ReplayedError("this signed URL was already used", caller.name), len(events)
                )
            try:
                wait = await self.limits.take(
                    caller.key_id, len(events), scopes.rate_per_s, scopes.burst
                )
            except LimitsStoreDownError:
                await self.release(caller)
                raise
        except LimitsStoreDownError as exc:
            unavailable = LimitsUnavailableError(str(exc), caller.name, exc.retry_after_s)
            raise self._refused(unavailable, len(events)) from None
        if wait > 0:
            await self.release(caller)
            error = RateLimitedError(
                f"rate limit of {scopes.rate_per_s:g} events/s (burst {scopes.burst}) exceeded",
                caller.name,
                max(1, int(wait + 0.999)),
            )
            raise self._refused(error, len(events))
        self.observer.caller_outcome(caller.name, "accepted", len(events))

    async def release(self, caller: Caller) -> None:
        """Forget a signed URL's nonce: its request was not counted, so it may be retried."""
        if caller.nonce is not None:
            await self.limits.forget(caller.key_id, caller.nonce)

    def _forbid(self, caller: Caller, detail: str) -> None:
        raise self._refused(ForbiddenError(detail, caller.name))

    def _refused(self, error: AuthError, events: int = 0) -> AuthError:
        self.observer.caller_outcome(error.caller, error.error, events)
        return error


def _caller(record: KeyRecord, nonce: str | None = None, exp: int = 0) -> Caller:
    return Caller(record.caller, record.id, record.scopes, nonce, exp)
