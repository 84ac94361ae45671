"""Only trusted callers move the counts: API keys, scopes, rate limits and signed URLs,
against the real broker (and the aggregator), through the hot path and the FastAPI routes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from adstream.aggregate.store import SqlCountStore
from adstream.events import EventType, wire
from adstream.ingest import signing
from adstream.ingest.app import create_app
from adstream.ingest.config import ApiSettings
from adstream.ingest.keys import KeyFile, KeyRecord, Scopes, key_hash, new_key, now_utc
from adstream.ingest.keys import signing_secret as derive_secret
from adstream.ingest.rsgi import front
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from tests.integration.aggregate_helpers import PrivateTopic, RunningAggregator, wait_until
from tests.integration.ingest_support import high_watermarks, plaintext_settings, read_from
from tests.support.redis import PASSWORD as REDIS_PASSWORD
from tests.support.redis import USER as REDIS_USER
from tests.support.redis import RedisServer, running_redis
from tests.support.rsgi import RsgiTransport

pytestmark = pytest.mark.integration

PEPPER = "integration-test-pepper-0123456789abcdef"


@dataclass(frozen=True)
class Key:
    key_id: str
    key: str
    caller: str
    scopes: Scopes

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def secret(self) -> str:
        return derive_secret(PEPPER.encode(), self.key_id)

    def record(self) -> KeyRecord:
        return KeyRecord(
            id=self.key_id,
            caller=self.caller,
            hash=key_hash(PEPPER.encode(), self.key),
            created=now_utc(),
            scopes=self.scopes,
        )


def _key(caller: str, **scopes: object) -> Key:
    key_id, key = new_key()
    return Key(key_id, key, caller, Scopes(**scopes))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Keys:
    full: Key
    narrow: Key  # impressions of ads "AD…", at most 10 impressions an event, 5 events a request
    scarce: Key  # a bucket of 2 events that practically never refills
    other: Key  # another caller's valid key, for signature swaps

    @property
    def all(self) -> list[Key]:
        return [self.full, self.narrow, self.scarce, self.other]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        full=_key("adserver-eu"),
        narrow=_key(
            "partner-x",
            types=(EventType.IMPRESSION,),
            ad_prefixes=("AD",),
            max_impressions=10,
            max_events=5,
        ),
        scarce=_key("tiny", rate_per_s=0.001, burst=2, max_events=2),
        other=_key("someone-else"),
    )


def keyed_settings(keys: Keys, state_dir: Path | None, **changes: object) -> ApiSettings:
    document = KeyFile(keys=[k.record() for k in keys.all]).model_dump_json()
    return ApiSettings(
        auth="keys",
        keys_json=document,  # type: ignore[arg-type]
        pepper=PEPPER,  # type: ignore[arg-type]
        state_dir=state_dir,
        delivery_timeout_s=10,
        **changes,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def clients(
    broker: LocalBroker, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, TestClient]]:
    """One app with the hot path and one without (each its own state: own buckets)."""
    settings = plaintext_settings(broker)
    hot = create_app(settings, keyed_settings(keys, tmp_path_factory.mktemp("hot")))
    plain = create_app(
        settings, keyed_settings(keys, tmp_path_factory.mktemp("plain"), hot_path=False)
    )
    with TestClient(hot) as hot_client, TestClient(plain) as plain_client:
        yield {"hot": hot_client, "plain": plain_client}


@pytest.fixture(scope="module")
def rsgi(
    broker: LocalBroker, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The RSGI front `adstream serve` runs, in-process (its own state: own buckets)."""
    settings = keyed_settings(keys, tmp_path_factory.mktemp("rsgi"))
    app = front(create_app(plaintext_settings(broker), settings))
    with httpx.Client(transport=RsgiTransport(app), base_url="http://testserver") as client:
        yield client


@pytest.fixture(params=["hot", "plain", "rsgi"])
def client(
    request: pytest.FixtureRequest, clients: dict[str, TestClient]
) -> TestClient | httpx.Client:
    if request.param == "rsgi":
        rsgi: httpx.Client = request.getfixturevalue("rsgi")
        return rsgi
    return clients[request.param]


def _signed(key: Key, ad_id: str, kind: str = "impression", **changes: object) -> dict[str, str]:
    return signing.sign(ad_id, kind, key_id=key.key_id, secret=key.secret, **changes)  # type: ignore[arg-type]


# ---- 401: no key, a bad key -----------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer adsk.k_0000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ],
)
def test_no_or_bad_key_is_401_and_nothing_is_published(
    client: TestClient, broker: LocalBroker, headers: dict[str, str]
) -> None:
    before = high_watermarks(broker)
    answers = [
        client.post("/ads/AD1/impression", headers=headers),
        client.post("/ads/AD1/click", headers=headers),
        client.post("/events", json=[{"adId": "AD1"}], headers=headers),
        client.get("/pixel.gif", params={"adId": "AD1"}, headers=headers),
    ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "unauthenticated"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert high_watermarks(broker) == before


def test_a_revoked_key_is_401(
    broker: LocalBroker, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys from a file: `adstream keys revoke` takes effect in a running app."""
    monkeypatch.setattr("adstream.ingest.keys.RELOAD_EVERY_S", 0.0)
    path = tmp_path / "keys.json"
    KeyFile(keys=[keys.full.record()]).write(path)
    settings = keyed_settings(keys, tmp_path / "state").model_copy(
        update={"keys_json": None, "keys_file": path}
    )
    with TestClient(create_app(plaintext_settings(broker), settings)) as app:
        assert app.post("/ads/AD1/impression", headers=keys.full.bearer).status_code == 200
        revoked = keys.full.record().model_copy(update={"revoked": now_utc()})
        KeyFile(keys=[revoked]).write(path)
        refused = app.post("/ads/AD1/impression", headers=keys.full.bearer)
        assert refused.status_code == 401


# ---- 403: outside the key's scopes -------------------------------------------------------
def test_wrong_scope_is_403_and_nothing_is_published(
    client: TestClient, broker: LocalBroker, keys: Keys
) -> None:
    auth = keys.narrow.bearer
    before = high_watermarks(broker)
    answers = [
        client.post("/ads/AD1/click", headers=auth),  # impressions only
        client.post("/ads/XY1/impression", headers=auth),  # ads "AD…" only
        client.post("/events", json=[{"adId": "AD1", "impressions": 11}], headers=auth),
        client.post("/events", json=[{"adId": "AD1"}] * 6, headers=auth),
        client.post("/events", json=[{"adId": "AD1"}, {"adId": "ZZ"}], headers=auth),
        client.post("/ads/AD1/click", params=_signed(keys.narrow, "AD1", "click")),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "forbidden"
    assert high_watermarks(broker) == before
    assert client.post(
        "/events", json=[{"adId": "AD1", "impressions": 10}] * 5, headers=auth
    ).json() == {"accepted": 5}


# ---- 429: over the key's rate ------------------------------------------------------------
def test_over_quota_is_429_with_retry_after(
    client: TestClient, broker: LocalBroker, keys: Keys
) -> None:
    """`scarce` holds 2 events and refills one in ~17 minutes (each app has its own bucket)."""
    auth = keys.scarce.bearer
    assert client.post("/ads/AD1/impression", headers=auth).status_code == 200
    assert (
        client.post("/events", json=[{"adId": "AD1"}, {"adId": "AD1"}], headers=auth).status_code
        == 429
    )
    assert client.post("/ads/AD1/impression", headers=auth).status_code == 200
    before = high_watermarks(broker)
    for answer in (
        client.post("/ads/AD1/impression", headers=auth),
        client.post("/ads/AD1/click", params=_signed(keys.scarce, "AD1", "click")),
        client.post("/events", json=[{"adId": "AD1"}], headers=auth),
    ):
        assert answer.status_code == 429, answer.text
        assert answer.json()["error"] == "rate_limited"
        assert int(answer.headers["retry-after"]) >= 900
    assert high_watermarks(broker) == before
    # Other keys have their own buckets.
    assert client.post("/ads/AD1/impression", headers=keys.full.bearer).status_code == 200


# ---- signed URLs -------------------------------------------------------------------------
def test_tampered_or_expired_signed_urls_are_401(client: TestClient, keys: Keys) -> None:
    good = _signed(keys.full, "AD1")
    forged_by_other = {**good, "sig": _signed(keys.other, "AD1", nonce=good["nonce"])["sig"]}
    cases = {
        "another ad": {**good, "adId": "AD2"},
        "later expiry": {**good, "exp": str(int(good["exp"]) + 60)},
        "another nonce": {**good, "nonce": "N" * 22},
        "another key's signature": forged_by_other,
        "truncated signature": {**good, "sig": good["sig"][:-2]},
        "no signature": {k: v for k, v in good.items() if k != "sig"},
        "expired": _signed(keys.full, "AD1", ttl_s=-1),
        "unknown key id": {**good, "kid": "k_0000000000"},
        "too far ahead": _signed(keys.full, "AD1", ttl_s=10 * 24 * 3600),
    }
    for name, params in cases.items():
        pixel = client.get("/pixel.gif", params=params)
        assert pixel.status_code == 401, name
        assert pixel.json()["error"] == "unauthenticated"
        route = client.post(
            "/ads/AD1/impression", params={k: v for k, v in params.items() if k != "adId"}
        )
        if name != "another ad":  # the path holds the ad that was signed
            assert route.status_code == 401, name


def test_a_signed_url_is_counted_once_and_its_replay_refused(
    broker: LocalBroker,
    keys: Keys,
    topic: PrivateTopic,
    store: SqlCountStore,
    tmp_path: Path,
) -> None:
    """The API refuses the replay it has seen; a replay it could not see (another task,
    a restart: another state directory) has the same event id, and the aggregator drops it."""
    admin = local_kafka_settings(broker.layout, broker.ports, "admin")
    first = create_app(admin, keyed_settings(keys, tmp_path / "a", topic=topic.topic))
    second = create_app(admin, keyed_settings(keys, tmp_path / "b", topic=topic.topic))
    url = signing.signed_url(
        "http://testserver", "SIGNED1", key_id=keys.full.key_id, secret=keys.full.secret
    )
    click = _signed(keys.full, "SIGNED1", "click")
    with TestClient(first) as one, TestClient(second) as two:
        counted = one.get(url)
        assert counted.status_code == 200
        assert counted.headers["content-type"] == "image/gif"
        replay = one.get(url)
        assert replay.status_code == 409
        assert replay.json()["error"] == "replayed"
        elsewhere = two.get(url)
        assert elsewhere.status_code == 200
        assert elsewhere.headers["x-event-id"] == counted.headers["x-event-id"]
        click_params = {k: v for k, v in click.items() if k != "adId"}
        assert one.post("/ads/SIGNED1/click", params=click_params).status_code == 200
        assert one.post("/ads/SIGNED1/click", params=click_params).status_code == 409
    with RunningAggregator(broker, topic, store) as running:
        wait_until(
            lambda: running.counted("counted") == 2 and running.counted("duplicate") == 1,
            state=lambda: {o: running.counted(o) for o in ("counted", "duplicate")},
        )
    [(ad, _, impressions, clicks)] = store.totals()
    assert (ad, impressions, clicks) == ("SIGNED1", 1, 1)


# ---- limits and nonces shared across tasks (Redis, as on AWS) -----------------------------
def redis_settings(keys: Keys, server: RedisServer, **changes: object) -> ApiSettings:
    """Keys mode with the limits in `server`: no state directory, nothing per server."""
    return keyed_settings(
        keys,
        None,
        limits_url=server.url,
        limits_username=REDIS_USER,
        limits_password=REDIS_PASSWORD,
        **changes,
    )


def test_two_servers_sharing_redis_share_one_bucket_and_the_nonces(
    broker: LocalBroker, keys: Keys, redis_server: RedisServer
) -> None:
    """Two tasks (one with the hot path, one without): `scarce`'s 2 events are spent across
    both, and a signed URL counted by one is a replay for the other. (With a SQLite
    file per server each would grant 2, and each would accept the URL once.)"""
    redis_server.client().flushall()
    settings = plaintext_settings(broker)
    first = create_app(settings, redis_settings(keys, redis_server))
    second = create_app(settings, redis_settings(keys, redis_server, hot_path=False))
    auth = keys.scarce.bearer
    with TestClient(first) as one, TestClient(second) as two:
        assert one.post("/ads/AD1/impression", headers=auth).status_code == 200
        assert two.post("/ads/AD1/click", headers=auth).status_code == 200
        before = high_watermarks(broker)
        for client in (one, two):
            answer = client.post("/ads/AD1/impression", headers=auth)
            assert answer.status_code == 429, answer.text
            assert int(answer.headers["retry-after"]) >= 900
        assert high_watermarks(broker) == before
        url = _signed(keys.full, "SHARED1")
        assert one.get("/pixel.gif", params=url).status_code == 200
        replay = two.get("/pixel.gif", params=url)
        assert replay.status_code == 409
        assert replay.json()["error"] == "replayed"
    assert redis_server.client().exists(f"adstream:nonce:{keys.full.key_id}:{url['nonce']}")


@pytest.mark.parametrize("hot_path", [True, False])
def test_redis_down_is_503_with_retry_after_and_nothing_published(
    broker: LocalBroker, keys: Keys, hot_path: bool
) -> None:
    """Fail closed (`limits_redis` says why): what needs the store gets 503 and
    Retry-After, fast and never a 500; once Redis is back the same URL counts."""
    settings = plaintext_settings(broker)
    with running_redis() as server:
        app = create_app(
            settings,
            redis_settings(keys, server, limits_down_s=0, limits_timeout_s=2.0, hot_path=hot_path),
        )
        url = _signed(keys.full, "DOWN1")
        with TestClient(app) as client:
            assert client.post("/ads/AD1/impression", headers=keys.scarce.bearer).status_code == 200
            server.stop()
            before = high_watermarks(broker)
            answers = [
                client.get("/pixel.gif", params=url),
                client.post("/ads/DOWN1/click", params=_signed(keys.full, "DOWN1", "click")),
                client.post("/ads/AD1/impression", headers=keys.scarce.bearer),
                client.post("/events", json=[{"adId": "AD1"}], headers=keys.scarce.bearer),
            ]
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "limits_unavailable"
                assert answer.headers["retry-after"] == "1"
            assert high_watermarks(broker) == before
            server.start()
            assert client.get("/pixel.gif", params=url).status_code == 200


# ---- the caller on the Kafka record ------------------------------------------------------
def test_the_caller_travels_as_a_record_header_never_the_key(
    client: TestClient, broker: LocalBroker, keys: Keys
) -> None:
    ad_id = f"CALLER-{uuid.uuid4().hex[:6]}"
    before = high_watermarks(broker)
    assert client.post(f"/ads/{ad_id}/impression", headers=keys.full.bearer).status_code == 200
    assert client.get("/pixel.gif", params=_signed(keys.other, ad_id)).status_code == 200
    batch = [{"adId": ad_id, "impressions": 3}]
    assert client.post("/events", json=batch, headers=keys.full.bearer).status_code == 200
    messages = read_from(broker, before, 3)
    callers = sorted(wire.caller_of(m.headers()) or "" for m in messages)
    assert callers == ["adserver-eu", "adserver-eu", "someone-else"]
    for message in messages:
        assert orjson.loads(message.value())["adId"] == ad_id  # type: ignore[arg-type]
        raw = repr(message.headers()) + repr(message.value())
        assert all(k.key not in raw and k.secret not in raw for k in keys.all)


def test_without_auth_no_caller_header(broker: LocalBroker) -> None:
    before = high_watermarks(broker)
    with TestClient(create_app(plaintext_settings(broker), ApiSettings(auth="none"))) as app:
        assert app.post("/ads/OPEN1/impression").status_code == 200
    [message] = read_from(broker, before, 1)
    assert wire.caller_of(message.headers()) is None


# ---- the hot path answers as the routes do -----------------------------------------------
def test_hot_path_and_routes_refuse_alike(
    clients: dict[str, TestClient], rsgi: httpx.Client, keys: Keys
) -> None:
    requests = [
        ("/ads/AD1/impression", {}, {}),
        ("/ads/AD1/impression", {"Authorization": "Bearer nope"}, {}),
        ("/ads/AD1/click", keys.narrow.bearer, {}),
        ("/ads/XY/impression", keys.narrow.bearer, {}),
        ("/ads/AD1/impression", {}, {"kid": keys.full.key_id, "sig": "x"}),
        ("/ads/bad%20id/impression", {}, {}),  # 422 before authentication, in both
        ("/ads/AD1/impression", {**keys.full.bearer, "Idempotency-Key": "has space"}, {}),
    ]
    for path, headers, params in requests:
        plain = clients["plain"].post(path, headers=headers, params=params)
        for client in (clients["hot"], rsgi):
            hot = client.post(path, headers=headers, params=params)
            assert (hot.status_code, hot.text) == (plain.status_code, plain.text), path
            for name in ("content-type", "content-length", "www-authenticate", "retry-after"):
                assert hot.headers.get(name) == plain.headers.get(name), (path, name)
    # RSGI hides a header value that is not ASCII: the same refusal, another detail.
    bad = {"Authorization": b"Bearer cl\xe9"}
    plain = clients["plain"].post("/ads/AD1/impression", headers=bad)
    for client in (clients["hot"], rsgi):
        hot = client.post("/ads/AD1/impression", headers=bad)
        assert (hot.status_code, hot.json()["error"]) == (401, plain.json()["error"])
        assert hot.headers.get("www-authenticate") == plain.headers.get("www-authenticate")


# ---- keys never logged, caller metrics ---------------------------------------------------
def test_keys_never_appear_in_logs_and_callers_are_counted(
    clients: dict[str, TestClient], keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for client in clients.values():
        client.post("/ads/AD1/impression", headers=keys.full.bearer)
        client.post("/ads/AD1/impression", headers={"Authorization": f"Bearer {keys.full.key}x"})
        client.post("/ads/AD1/click", headers=keys.narrow.bearer)
        client.post(
            "/events",
            content=b"not json",
            headers={**keys.full.bearer, "content-type": "application/json"},
        )
        client.get("/pixel.gif", params={**_signed(keys.full, "AD1"), "sig": "x" * 43})
    logged = caplog.text + repr([r.__dict__ for r in caplog.records])
    for key in keys.all:
        assert key.key not in logged
        assert key.key.split(".")[2] not in logged
        assert key.secret not in logged
    metrics = clients["hot"].get("/metrics").text
    assert 'adstream_api_caller_requests_total{caller="adserver-eu",outcome="accepted"}' in metrics
    assert (
        'adstream_api_caller_requests_total{caller="unknown",outcome="unauthenticated"}' in metrics
    )
    assert 'adstream_api_caller_requests_total{caller="partner-x",outcome="forbidden"}' in metrics
    assert "adstream_api_caller_events_total{caller=" in metrics


def test_auth_none_is_the_open_mode(broker: LocalBroker) -> None:
    """Without keys anyone may send (local development): the previous behaviour."""
    with TestClient(create_app(plaintext_settings(broker), ApiSettings(auth="none"))) as app:
        assert app.post("/ads/AD1/impression").status_code == 200
        assert app.post("/events", json=[{"adId": "AD1", "impressions": 1000}]).status_code == 200
