"""What authentication costs one hot-path request: `python -m bench.auth`.

Times the `Gate` steps the hot path runs per request, in process (no broker, no HTTP):
a bearer key (parse, HMAC-SHA256 with the pepper, constant-time compare, scopes, the
token bucket from its in-memory lease), a signed URL (query parsing, HMAC, compare,
expiry, the shared nonce insert in SQLite, the bucket), and the SQLite bucket update a
worker makes when its lease runs out; then the same store calls against a local
redis-server (`ADSTREAM_API_LIMITS_URL`, as on AWS: the Lua bucket and ``SET NX PXAT``),
started here if `redis-server` is installed (scripts/system-deps.sh). Prints microseconds
per call (best of 5 runs). The Redis rows are loopback round trips: in a VPC add the
network's (~0.2 to 0.5 ms within an AZ), which the worker's event loop spends serving others.

`--http` also runs `adstream serve` (2 workers, mutual TLS, its own broker) with
ADSTREAM_API_AUTH=none and =keys in turn, `--rounds` times each, and prints wrk's req/s
and p99 for `POST /ads/AD1/impression` (with a key in keys mode).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

from adstream.events import AdEvent, EventType
from adstream.ingest import signing
from adstream.ingest.auth import Gate
from adstream.ingest.hot_path import _query
from adstream.ingest.keys import (
    KeyFile,
    KeyRecord,
    KeyRing,
    Scopes,
    key_hash,
    new_key,
    now_utc,
    signing_secret,
)
from adstream.ingest.limits_store import LimitsStore, SharedLimits
from adstream.ingest.metrics import Metrics

PEPPER = b"bench-pepper-0123456789abcdef0123456789"
N = 20_000


def _best(statement: object, number: int = N) -> float:
    """Microseconds per call, best of 5."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def _best_async(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]], number: int = N
) -> float:
    """Microseconds per awaited call, best of 5, all in one event loop; records this
    process's CPU time per call too (what a request costs the worker while Redis answers
    a networked call, the event loop serves others) in `CPU_US`."""

    async def timed() -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            await call()
        return time.perf_counter() - started, time.process_time() - cpu

    runs = [loop.run_until_complete(timed()) for _ in range(5)]
    CPU_US.append(min(c for _, c in runs) / number * 1e6)
    return min(w for w, _ in runs) / number * 1e6


CPU_US: list[float] = []


def micro() -> None:
    key_id, key = new_key()
    scopes = Scopes(rate_per_s=1e9, burst=10**9)
    record = KeyRecord(
        id=key_id, caller="bench", hash=key_hash(PEPPER, key), created=now_utc(), scopes=scopes
    )
    ring = KeyRing(PEPPER, KeyFile(keys=[record]))
    event = AdEvent.create(
        event_id=uuid.uuid4(), ad_id="AD1", type=EventType.IMPRESSION, timestamp=1
    )
    secret = signing_secret(PEPPER, key_id)
    loop = asyncio.new_event_loop()
    bearer = f"Bearer {key}"

    def sign_only() -> None:
        signing.sign("AD1", "impression", key_id=key_id, secret=secret)

    def gate_rows(limits: LimitsStore, store: str) -> dict[str, float]:
        gate = Gate(ring, limits, Metrics(), max_url_ttl_s=3600)

        async def with_key() -> None:
            await gate.admit(gate.bearer(bearer), [event])

        async def signed() -> None:
            query = urlencode(signing.sign("AD1", "impression", key_id=key_id, secret=secret))
            params = _query({"query_string": query.encode()})
            await gate.admit(gate.single(None, params, EventType.IMPRESSION, "AD1"), [event])

        nonces = (f"n{i}" for i in range(10**9))
        exp = int(time.time()) + 3600
        sign_us = rows["signed URL: sign (the ad server's side, subtracted)"]
        timed = {
            f"{store}: bearer key: verify + scopes + bucket (leased)": _best_async(loop, with_key),
            f"{store}: signed URL, collector side: parse + verify + nonce + bucket": _best_async(
                loop, signed, 5000
            )
            - sign_us,
            f"{store}: bucket refill (a worker's lease ran out)": _best_async(
                loop, lambda: limits.take("solo", 1, 1e9, 1), 5000
            ),
            f"{store}: nonce alone": _best_async(
                loop, lambda: limits.first_use("solo", next(nonces), exp), 5000
            ),
        }
        CPU_US[1] -= sign_us
        for name, cpu in zip(list(timed), CPU_US, strict=True):
            cpu_rows[name] = cpu
        CPU_US.clear()
        return timed

    cpu_rows: dict[str, float] = {}

    rows = {
        "key hash alone (HMAC-SHA256)": _best(lambda: key_hash(PEPPER, key)),
        "signed URL: sign (the ad server's side, subtracted)": _best(sign_only),
    }
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SharedLimits(Path(tmp))
        rows |= gate_rows(sqlite, "SQLite")
        loop.run_until_complete(sqlite.aclose())
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (scripts/system-deps.sh): no Redis rows")
    else:
        from tests.support.redis import PASSWORD, USER, running_redis

        from adstream.ingest.limits_redis import RedisLimits

        with running_redis() as server:
            redis = RedisLimits.from_url(
                server.url, username=USER, password=PASSWORD, timeout_s=5
            )  # measures cost, not how a starved loop times out
            rows |= gate_rows(redis, "Redis (loopback)")
            loop.run_until_complete(redis.aclose())
    loop.close()
    width = max(map(len, rows))
    print(f"{'':<{width}}  {'wall':>10}  {'our CPU':>10}")
    for name, micros in rows.items():
        cpu = f"{cpu_rows[name]:7.1f} µs" if name in cpu_rows else ""
        print(f"{name:<{width}}  {micros:7.1f} µs  {cpu:>10}")


def http(rounds: int, seconds: int) -> None:
    """wrk against `adstream serve` without and with keys, alternating to share the noise."""
    from bench.run import POST_LUA, Server, wrk
    from tests.support.ports import free_base_port

    from adstream.local.broker import LocalBroker
    from adstream.local.jars import ensure_kafka_jars
    from adstream.local.layout import BrokerLayout

    with tempfile.TemporaryDirectory(prefix="adstream-bench-auth-") as tmp:
        root = Path(tmp)
        key_id, key = new_key()
        record = KeyRecord(
            id=key_id,
            caller="bench",
            hash=key_hash(PEPPER, key),
            created=now_utc(),
            scopes=Scopes(rate_per_s=1e9, burst=10**9),
        )
        KeyFile(keys=[record]).write(root / "keys.json")
        keyed = {
            "ADSTREAM_API_AUTH": "keys",
            "ADSTREAM_API_KEYS_FILE": str(root / "keys.json"),
            "ADSTREAM_API_PEPPER": PEPPER.decode(),
        }
        lua = root / "keyed.lua"
        lua.write_text(f'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer {key}"\n')
        broker = LocalBroker(
            BrokerLayout.at(root / "kafka"), ensure_kafka_jars(), base_port=free_base_port()
        )
        broker.up()
        try:
            props = broker.layout.client_properties("tls")
            results: dict[str, list[dict[str, float]]] = {"none": [], "keys": []}
            for _ in range(rounds):
                for mode, env, script in (("none", {}, POST_LUA), ("keys", keyed, lua)):
                    server = Server(props, 2, {"ADSTREAM_API_AUTH": "none", **env})
                    try:
                        url = f"{server.url}/ads/AD1/impression"
                        wrk(url, script, 5, 64)  # warm-up
                        results[mode].append(wrk(url, script, seconds, 64))
                    finally:
                        server.stop()
        finally:
            broker.down()
    for mode, runs in results.items():
        rps = ", ".join(f"{r['rps']:,.0f}" for r in runs)
        p99 = ", ".join(f"{r['p99']:.1f}" for r in runs)
        print(f"auth {mode}: req/s {rps}; p99 ms {p99}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    micro()
    if args.http:
        http(args.rounds, args.seconds)


if __name__ == "__main__":
    main()
