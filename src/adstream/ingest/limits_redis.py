"""`LimitsStore` on Redis or Valkey: one budget per key across every task that shares it.

On AWS the API tasks share no disk, so the SQLite store (`limits_store`) would give each
task its own bucket; the stack gives them an ElastiCache Serverless (Valkey) cache and sets
``ADSTREAM_API_LIMITS_URL=rediss://…`` instead.

- **Buckets**: one hash per key id (`tokens`, `at`), refilled and spent by one Lua script,
  so concurrent tasks cannot both spend the same tokens. Workers keep leasing tokens in
  chunks (`limits_store.lease_size`) exactly as with SQLite, so most bearer requests never
  reach Redis. The clock is the task's (NTP keeps tasks within milliseconds; a clock
  behind the stored one refills nothing rather than going negative), so the same fake
  clock drives both backends in tests. A bucket expires once it would be full again: an
  idle key costs no memory, and a missing bucket is a full one.
- **Nonces**: ``SET adstream:nonce:<kid>:<nonce> 1 NX PXAT <exp>``: the first use wins,
  a replay is refused until the URL expires, and Redis forgets the nonce by itself then.

When Redis does not answer (down, unreachable, timing out) the store raises
`LimitsStoreDownError` and the `Gate` answers 503 with ``Retry-After``, i.e. **fails
closed**: quotas are what callers are billed and throttled by, and a silent fallback to
per-task limits would multiply every budget by the task count without anyone noticing.
Server-to-server callers retry a 503 after ``Retry-After`` as they do during a Kafka outage.
Every call is bounded (socket and connect timeouts, one retry, and an overall deadline),
and after a failure the store refuses at once for ``down_for_s`` instead of letting each
request wait out its timeout. Tokens a worker already leased are still spent meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import certifi
from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from adstream.ingest.config import ApiSettings
from adstream.ingest.limits_store import LimitsStoreConfigError, LimitsStoreDownError, lease_size

log = logging.getLogger(__name__)

KEY_PREFIX = "adstream:"
"""Every key this store writes starts with it (the ElastiCache user may touch only these)."""
ACCESS_STRING = (
    f"on ~{KEY_PREFIX}* -@all +evalsha +eval +script|load +hmget +hset +pexpire +set +del"
    " +ping +cluster|slots +command"
)
"""The least the store needs: ACLs apply to the commands a script runs, too, and a cluster
client reads the slot map and the command table. The CDK's cache user and the test
server's user both get it, so the tests would catch a missing one."""

TAKE_SCRIPT = """
local now, need, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rate, burst = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local taken, wait = 0, 0
if tokens < need then
  wait = (need - tokens) / rate
else
  taken = math.min(tokens, need + lease)
  tokens = tokens - taken
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {tostring(taken), tostring(wait)}
"""
"""Refill by the time since the last call, then take `need` plus a lease if that many are
there; else say how long until `need` are. Numbers travel as strings (Redis would
truncate a Lua number reply to an integer)."""

T = TypeVar("T")
_FAILURES = (redis_errors.RedisError, redis_errors.RedisClusterException, OSError, TimeoutError)
MAX_CONNECTIONS = 32
"""Calls in flight per worker; more wait for a free connection (within the deadline)
rather than opening hundreds under load (redis-py has no pipelining across callers)."""


class RedisLimits:
    """Token buckets and nonces in Redis/Valkey (see the module docstring)."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout_s: float,
        down_for_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._take = client.register_script(TAKE_SCRIPT)
        self._deadline_s = 3 * timeout_s  # connect + command, and one retry, at most
        self._down_for_s = down_for_s
        self._clock = clock
        self._leases: dict[str, float] = {}
        self._down_until = 0.0
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 0.5,
        down_for_s: float = 1.0,
        cluster: bool = False,
        ca_file: Path | None = None,
    ) -> RedisLimits:
        """A client for ``redis://`` or ``rediss://`` (TLS, the server's certificate and
        host name verified); credentials given here win over none in the URL. `cluster`:
        a cluster-mode client (ElastiCache Serverless is a cluster), which follows the
        slot map; each key lives in one slot, and the script touches one key. `ca_file`:
        the CAs a ``rediss://`` server's certificate must chain to (default: certifi's
        bundle, which holds the Amazon roots ElastiCache's certificates chain to)."""
        options: dict[str, Any] = {
            "username": username,
            "password": password,
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "decode_responses": True,
            "max_connections": MAX_CONNECTIONS,
        }
        if url.startswith("rediss://"):
            options["ssl_ca_certs"] = str(ca_file) if ca_file else certifi.where()
        client: Redis | RedisCluster
        if cluster:
            client = RedisCluster.from_url(url, retry=Retry(NoBackoff(), 1), **options)
        else:  # retry once, for a connection the server closed
            client = Redis.from_url(url, retry=Retry(NoBackoff(), 1), **options)
        return cls(client, timeout_s=timeout_s, down_for_s=down_for_s)

    @classmethod
    def from_settings(cls, api: ApiSettings) -> RedisLimits:
        """The store ``ADSTREAM_API_LIMITS_*`` describe (`limits_url` must be set)."""
        assert api.limits_url is not None
        username, password = api.limits_credentials()
        return cls.from_url(
            api.limits_url.get_secret_value(),
            username=username,
            password=password,
            timeout_s=api.limits_timeout_s,
            down_for_s=api.limits_down_s,
            cluster=api.limits_cluster,
            ca_file=api.limits_ca_file,
        )

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def check(self) -> None:
        """Before serving: can this client log in and run the script?

        `LimitsStoreConfigError` when the server refuses it (wrong password, a user without
        the access string): that will not pass, so `adstream serve` stops (exit 2) and a
        deployment rolls back. `LimitsStoreDownError` when it does not answer: that may
        pass, so the server starts and answers 503 meanwhile.
        """
        try:
            async with asyncio.timeout(self._deadline_s):
                await self._redis.ping()
                await self._redis.script_load(TAKE_SCRIPT)
        except _FAILURES as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                raise LimitsStoreConfigError(
                    f"the rate-limit store refused this client: {refusal}"
                ) from None
            raise LimitsStoreDownError(
                f"the rate-limit store does not answer: {type(exc).__name__}: {exc}", 1
            ) from None

    async def take(self, key_id: str, cost: int, rate_per_s: float, burst: int) -> float:
        held = self._leases.pop(key_id, 0.0)
        if held >= cost:
            self._leases[key_id] = held - cost
            return 0.0
        need = cost - held
        try:
            reply = await self._call(
                self._take(
                    keys=[f"{KEY_PREFIX}bucket:{key_id}"],
                    args=[repr(self._clock()), need, lease_size(burst), rate_per_s, burst],
                )
            )
        except BaseException:
            self._leases[key_id] = self._leases.get(key_id, 0.0) + held  # not spent
            raise
        taken, wait = float(reply[0]), float(reply[1])
        # Other requests of this worker may have leased meanwhile: add, do not overwrite.
        left = self._leases.get(key_id, 0.0) + held + taken - (cost if wait == 0 else 0)
        self._leases[key_id] = left
        return wait

    async def first_use(self, key_id: str, nonce: str, exp: int) -> bool:
        until_ms = max(exp * 1000, int(self._clock() * 1000) + 1000)
        stored = await self._call(
            self._redis.set(f"{KEY_PREFIX}nonce:{key_id}:{nonce}", 1, nx=True, pxat=until_ms)
        )
        return bool(stored)

    async def forget(self, key_id: str, nonce: str) -> None:
        """Best effort, tried even while refusing (the nonce may have been stored just
        before a failure, and the caller was told to retry): if Redis is down, the nonce
        stays refused until the URL expires."""
        try:
            command = self._redis.delete(f"{KEY_PREFIX}nonce:{key_id}:{nonce}")
            await self._call(command, even_if_down=True)
        except LimitsStoreDownError:
            log.warning("could not release nonce of key %s: the limits store is down", key_id)

    async def _call(self, command: Awaitable[T], even_if_down: bool = False) -> T:
        """Await a command within the deadline; `LimitsStoreDownError` if Redis fails."""
        retry_after = max(1, math.ceil(self._down_for_s))
        if self._clock() < self._down_until and not even_if_down:
            _close(command)
            raise LimitsStoreDownError("the rate-limit store is unavailable", retry_after)
        acquired = False
        try:
            async with asyncio.timeout(self._deadline_s):
                await self._slots.acquire()
                acquired = True
                return await command
        except _FAILURES as exc:
            _close(command)  # if it never started
            if not acquired:  # this worker has too many calls in flight: not an outage
                raise LimitsStoreDownError(
                    "the rate-limit store is busy: too many calls waiting", retry_after
                ) from None
            self._down_until = self._clock() + self._down_for_s
            log.error("rate-limit store (Redis) failed: %s: %s", type(exc).__name__, exc)
            raise LimitsStoreDownError("the rate-limit store is unavailable", retry_after) from None
        finally:
            if acquired:
                self._slots.release()


_REFUSALS = (
    redis_errors.AuthenticationError,
    redis_errors.AuthorizationError,
    redis_errors.NoPermissionError,
    ssl.SSLCertVerificationError,  # a certificate we do not trust will not change either
)


def _refusal(exc: BaseException) -> BaseException | None:
    """The server's refusal behind `exc` (a cluster client wraps it), if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _REFUSALS) or "WRONGPASS" in str(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _close(command: Awaitable[Any]) -> None:
    """Close a coroutine that will not be awaited (no 'never awaited' warning)."""
    close = getattr(command, "close", None)
    if close is not None:
        close()
