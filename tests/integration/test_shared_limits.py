"""The rate-limit and nonce stores: one contract for the SQLite file (one server's workers)
and for Redis (every task), the latter against a real redis-server with the AWS user's
ACL; and what a Redis outage answers (`limits_redis`: fail closed, bounded)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adstream.ingest.limits_redis import RedisLimits
from adstream.ingest.limits_store import (
    LimitsStore,
    LimitsStoreConfigError,
    LimitsStoreDownError,
    SharedLimits,
)
from tests.support.redis import PASSWORD, USER, RedisServer, running_redis

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0
Clock = Callable[[], float]
Workers = Callable[[Clock], LimitsStore]
"""Makes one worker's store (a new connection to the same shared state) on a clock."""


def redis_limits(
    server: RedisServer, clock: Clock = time.time, *, cluster: bool = False, **options: float
) -> RedisLimits:
    limits = RedisLimits.from_url(
        server.url, username=USER, password=PASSWORD, cluster=cluster, **options
    )
    if clock is not time.time:
        limits._clock = clock
    return limits


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisServer]:
    """A one-node Redis cluster: ElastiCache Serverless is cluster mode (a cluster client)."""
    with running_redis(cluster=True) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def worker(request: pytest.FixtureRequest, tmp_path: Path) -> Workers:
    if request.param == "sqlite":
        return lambda clock=time.time: SharedLimits(tmp_path, clock=clock)
    cluster = request.param == "redis-cluster"
    server: RedisServer = request.getfixturevalue("redis_cluster" if cluster else "redis_server")
    server.client().flushall()
    # The contract, not timing: generous timeouts on a machine shared with other tests.
    return lambda clock=time.time: redis_limits(server, clock, cluster=cluster, timeout_s=5.0)


# ---- the contract, on both backends -----------------------------------------------------
def test_bucket_is_shared_by_two_workers_and_says_how_long_to_wait(worker: Workers) -> None:
    clock = [NOW]

    async def scenario() -> None:
        one, two = worker(lambda: clock[0]), worker(lambda: clock[0])
        assert await one.take("k", 2, rate_per_s=1.0, burst=3) == 0.0
        assert await two.take("k", 1, rate_per_s=1.0, burst=3) == 0.0
        assert await one.take("k", 2, rate_per_s=1.0, burst=3) == pytest.approx(2.0)
        assert await two.take("k", 1, rate_per_s=1.0, burst=3) == pytest.approx(1.0)
        clock[0] += 1.0
        assert await two.take("k", 1, rate_per_s=1.0, burst=3) == 0.0
        assert await one.take("k", 1, rate_per_s=1.0, burst=3) > 0
        assert await one.take("other", 3, rate_per_s=1.0, burst=3) == 0.0  # per key
        await one.aclose()
        await two.aclose()

    asyncio.run(scenario())


def test_a_large_bucket_is_leased_in_chunks_and_never_overspent_by_more(
    worker: Workers,
) -> None:
    clock = [NOW]

    async def scenario() -> int:
        workers = [worker(lambda: clock[0]) for _ in range(2)]
        granted = 0
        for i in range(3000):
            granted += await workers[i % 2].take("k", 1, rate_per_s=0.001, burst=1000) == 0
        for store in workers:
            await store.aclose()
        return granted

    assert 1000 - 2 * 50 <= asyncio.run(scenario()) <= 1000


def test_concurrent_requests_of_one_worker_spend_no_token_twice(worker: Workers) -> None:
    """Requests of one worker interleave while one awaits the store: the leases they bring
    back are added up, none overwritten or lost, so the budget is granted exactly."""
    clock = [NOW]

    async def scenario() -> int:
        store = worker(lambda: clock[0])
        answers = await asyncio.gather(
            *(store.take("k", 1, rate_per_s=0.001, burst=400) for _ in range(600))
        )
        more = [await store.take("k", 1, rate_per_s=0.001, burst=400) for _ in range(600)]
        await store.aclose()
        return sum(1 for wait in [*answers, *more] if wait == 0)

    assert asyncio.run(scenario()) == 400


def test_a_nonce_is_accepted_once_until_forgotten(worker: Workers) -> None:
    async def scenario() -> None:
        one, two = worker(time.time), worker(time.time)
        exp = int(time.time()) + 60
        assert await one.first_use("k", "n1", exp)
        assert not await two.first_use("k", "n1", exp)
        assert await two.first_use("k2", "n1", exp)
        await one.forget("k", "n1")
        assert await two.first_use("k", "n1", exp)
        await one.aclose()
        await two.aclose()

    asyncio.run(scenario())


# ---- Redis specifics ----------------------------------------------------------------------
def test_redis_forgets_nonces_at_the_urls_expiry_and_idle_buckets(
    redis_server: RedisServer,
) -> None:
    redis_server.client().flushall()

    exp = int(time.time()) + 120

    async def scenario() -> None:
        store = redis_limits(redis_server)
        assert await store.first_use("kid", "nonce", exp)
        assert await store.take("kid", 1, rate_per_s=2.0, burst=10) == 0.0
        await store.aclose()

    asyncio.run(scenario())
    admin = redis_server.client()
    assert admin.pexpiretime("adstream:nonce:kid:nonce") == exp * 1000
    # One token spent at 2/s refills in 0.5 s: the bucket lives about that long (+1 s).
    assert 0 < admin.pttl("adstream:bucket:kid") <= 1500
    assert set(admin.keys("*")) == {b"adstream:nonce:kid:nonce", b"adstream:bucket:kid"}


@pytest.mark.parametrize("cluster", [False, True], ids=["redis", "redis-cluster"])
def test_redis_down_is_refused_at_once_and_recovers_after_it_is_back(cluster: bool) -> None:
    """Down: `LimitsStoreDownError` (the Gate's 503), then at once without trying for
    `down_for_s`; back: served again. Leased tokens are still spent meanwhile."""
    clock = [time.time()]
    with running_redis(cluster) as server:

        async def scenario() -> None:
            store = redis_limits(
                server, lambda: clock[0], down_for_s=5.0, cluster=cluster, timeout_s=5.0
            )
            assert await store.take("k", 1, rate_per_s=0.001, burst=100) == 0.0  # leases 5
            server.stop()
            for _ in range(5):  # the lease
                assert await store.take("k", 1, rate_per_s=0.001, burst=100) == 0.0
            with pytest.raises(LimitsStoreDownError) as down:
                await store.take("k", 1, rate_per_s=0.001, burst=100)
            assert down.value.retry_after_s == 5
            with pytest.raises(LimitsStoreDownError):
                await store.first_use("k", "n", int(clock[0]) + 60)
            server.start()
            with pytest.raises(LimitsStoreDownError):  # still within down_for_s
                await store.first_use("k", "n", int(clock[0]) + 60)
            clock[0] += 5.0
            assert await store.first_use("k", "n", int(clock[0]) + 60)
            assert await store.take("k", 1, rate_per_s=0.001, burst=100) == 0.0
            await store.forget("k", "n")
            await store.aclose()

        asyncio.run(scenario())


def test_a_nonce_is_released_even_while_the_store_refuses(redis_server: RedisServer) -> None:
    """The nonce was stored, then the bucket call failed: the caller gets 503 and is told
    to retry, so the release must not be skipped by the refusal that failure starts."""
    redis_server.client().flushall()
    admin = redis_server.client()
    clock = [time.time()]

    async def scenario() -> None:
        store = redis_limits(redis_server, lambda: clock[0], down_for_s=60.0, timeout_s=1.0)
        exp = int(clock[0]) + 600
        assert await store.first_use("k", "kept", exp)
        admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")  # writes wait: a timeout
        try:
            with pytest.raises(LimitsStoreDownError):
                await store.take("k", 1, rate_per_s=1.0, burst=10)
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
        with pytest.raises(LimitsStoreDownError):  # refusing for down_for_s
            await store.first_use("k", "other", exp)
        await store.forget("k", "kept")
        clock[0] += 60.0
        assert await store.first_use("k", "kept", exp)
        await store.aclose()

    asyncio.run(scenario())


def test_a_redis_that_does_not_answer_times_out_rather_than_hangs() -> None:
    """A listening socket that never answers (a black-holed endpoint): the socket timeout
    ends the call (pytest-timeout would fail a hang)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes connections; nobody reads or writes
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        async def scenario() -> None:
            store = RedisLimits.from_url(url, password="x", timeout_s=0.2)
            with pytest.raises(LimitsStoreDownError):
                await store.first_use("k", "n", int(time.time()) + 60)
            await store.forget("k", "n")  # best effort: logs, does not raise
            await store.aclose()

        asyncio.run(scenario())


# ---- the start-up check of `adstream serve` -------------------------------------------------
@pytest.mark.parametrize("cluster", [False, True], ids=["redis", "redis-cluster"])
def test_wrong_credentials_are_a_config_error_and_an_outage_is_not(
    request: pytest.FixtureRequest, cluster: bool
) -> None:
    """A refused login will not pass (serve exits 2, a deployment rolls back); a server
    that does not answer may come back (serve starts and answers 503 meanwhile)."""
    server: RedisServer = request.getfixturevalue("redis_cluster" if cluster else "redis_server")

    async def check(**options: object) -> None:
        store = RedisLimits.from_url(server.url, cluster=cluster, **options)  # type: ignore[arg-type]
        try:
            await store.check()
        finally:
            await store.aclose()

    asyncio.run(check(username=USER, password=PASSWORD))
    with pytest.raises(LimitsStoreConfigError, match="refused"):
        asyncio.run(check(username=USER, password="wrong"))
    with pytest.raises(LimitsStoreConfigError):
        asyncio.run(check(username="admin-less", password=PASSWORD))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = RedisLimits.from_url(f"redis://127.0.0.1:{port}", password="x", cluster=cluster)
    with pytest.raises(LimitsStoreDownError):
        asyncio.run(store.check())


def test_serve_stops_on_refused_credentials_and_starts_when_redis_is_down(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`adstream serve`'s auth check, before any worker starts (exit 2 = bad config)."""
    import typer

    from adstream.ingest import cli
    from adstream.ingest.keys import check_pepper

    pepper = "p" * 40
    check_pepper(pepper)
    monkeypatch.setenv("ADSTREAM_API_AUTH", "keys")
    monkeypatch.setenv("ADSTREAM_API_PEPPER", pepper)
    monkeypatch.setenv("ADSTREAM_API_KEYS_JSON", '{"keys": []}')
    monkeypatch.setenv("ADSTREAM_API_LIMITS_URL", redis_server.url)
    monkeypatch.setenv("ADSTREAM_API_LIMITS_USERNAME", USER)
    monkeypatch.setenv("ADSTREAM_API_LIMITS_PASSWORD", PASSWORD)
    cli._check_auth("0.0.0.0")  # noqa: S104
    monkeypatch.setenv("ADSTREAM_API_LIMITS_PASSWORD", "wrong")
    with pytest.raises(typer.Exit) as stopped:
        cli._check_auth("0.0.0.0")  # noqa: S104
    assert stopped.value.exit_code == cli.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert "ADSTREAM_API_LIMITS_URL" in err
    assert "wrong" not in err  # the password never
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("ADSTREAM_API_LIMITS_URL", f"redis://127.0.0.1:{port}")
    cli._check_auth("0.0.0.0")  # noqa: S104
    assert "starting anyway" in capsys.readouterr().err


def test_rediss_verifies_the_servers_certificate() -> None:
    """TLS as on AWS (``rediss://``): the server's certificate must chain to the CA file
    (default certifi's bundle, which does not hold this test's CA: refused as a config
    error, not taken for an outage)."""
    with running_redis(tls=True) as server:
        assert server.url.startswith("rediss://")

        async def scenario(ca_file: Path | None) -> bool:
            store = RedisLimits.from_url(
                server.url, username=USER, password=PASSWORD, ca_file=ca_file
            )
            try:
                await store.check()
                return await store.first_use("k", "n", int(time.time()) + 60)
            finally:
                await store.aclose()

        assert asyncio.run(scenario(server.ca_file))
        with pytest.raises(LimitsStoreConfigError, match="certificate"):
            asyncio.run(scenario(None))
