"""API keys, signed URLs, the shared token bucket and the gate's decisions (no broker)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from adstream.events import AdEvent, EventType
from adstream.ingest import signing
from adstream.ingest.auth import (
    AuthError,
    ForbiddenError,
    Gate,
    RateLimitedError,
    ReplayedError,
)
from adstream.ingest.keys import (
    InvalidKeyError,
    KeyConfigError,
    KeyFile,
    KeyRecord,
    KeyRing,
    Scopes,
    key_hash,
    new_key,
    now_utc,
    signing_secret,
)
from adstream.ingest.limits_store import SharedLimits
from adstream.ingest.metrics import MAX_CALLER_LABELS, Metrics

PEPPER = b"p" * 40
NOW = 1_800_000_000.0


def _record(key: str, key_id: str, caller: str = "adserver", **scopes: object) -> KeyRecord:
    return KeyRecord(
        id=key_id,
        caller=caller,
        hash=key_hash(PEPPER, key),
        created=now_utc(),
        scopes=Scopes(**scopes),  # type: ignore[arg-type]
    )


class Decisions:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def caller_outcome(self, caller: str, outcome: str, events: int) -> None:
        self.seen.append((caller, outcome, events))


# ---- signing -----------------------------------------------------------------------------
def test_a_signed_url_verifies_and_any_change_is_refused() -> None:
    params = signing.sign("AD1", "impression", key_id="k_0123456789", secret="s", now=NOW)
    parsed = signing.SignedParams.parse(params)
    assert parsed is not None
    parsed.verify("s", "impression", "AD1", NOW, 3600)
    for secret, kind, ad_id in (
        ("t", "impression", "AD1"),
        ("s", "click", "AD1"),
        ("s", "impression", "AD2"),
    ):
        with pytest.raises(signing.SignatureError, match="bad signature"):
            parsed.verify(secret, kind, ad_id, NOW, 3600)
    for name, value in (("exp", str(int(NOW) + 601)), ("nonce", "x" * 22), ("kid", "k_9999999999")):
        tampered = signing.SignedParams.parse({**params, name: value})
        assert tampered is not None
        with pytest.raises(signing.SignatureError, match="bad signature"):
            tampered.verify("s", "impression", "AD1", NOW, 3600)


def test_an_expired_or_too_long_lived_url_is_refused() -> None:
    params = signing.sign("AD1", "click", key_id="k_0123456789", secret="s", ttl_s=60, now=NOW)
    parsed = signing.SignedParams.parse(params)
    assert parsed is not None
    with pytest.raises(signing.SignatureError, match="expired"):
        parsed.verify("s", "click", "AD1", NOW + 60, 3600)
    with pytest.raises(signing.SignatureError, match="ahead"):
        parsed.verify("s", "click", "AD1", NOW, 30)


def test_incomplete_or_malformed_signed_parameters_are_refused() -> None:
    assert signing.SignedParams.parse({"adId": "AD1"}) is None
    with pytest.raises(signing.SignatureError, match="missing exp, nonce"):
        signing.SignedParams.parse({"kid": "k", "sig": "x"})
    base = {"kid": "k", "exp": "1", "nonce": "n" * 16, "sig": "x"}
    with pytest.raises(signing.SignatureError, match="exp"):
        signing.SignedParams.parse({**base, "exp": "-1"})
    with pytest.raises(signing.SignatureError, match="nonce"):
        signing.SignedParams.parse({**base, "nonce": "short"})


def test_signed_url_forms() -> None:
    pixel = signing.signed_url("http://h/", "AD1", key_id="k_0123456789", secret="s", now=NOW)
    assert pixel.startswith("http://h/pixel.gif?adId=AD1&kid=k_0123456789&exp=1800000600&nonce=")
    click = signing.signed_url(
        "http://h", "AD1", "click", key_id="k_0123456789", secret="s", pixel=False, nonce="n" * 16
    )
    assert click.startswith("http://h/ads/AD1/click?kid=k_0123456789&exp=")
    with pytest.raises(ValueError, match="impressions only"):
        signing.signed_url("http://h", "AD1", "click", key_id="k", secret="s")


# ---- keys --------------------------------------------------------------------------------
def test_keys_are_stored_hashed_and_verified(tmp_path: Path) -> None:
    key_id, key = new_key()
    path = tmp_path / "keys.json"
    KeyFile(keys=[_record(key, key_id)]).write(path)
    assert key not in path.read_text()
    assert key.split(".")[2] not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    ring = KeyRing.from_file(PEPPER, path)
    assert ring.verify(key).caller == "adserver"
    _, other = new_key()
    for bad in (other, key[:-1] + ("A" if key[-1] != "A" else "B"), "nonsense", ""):
        with pytest.raises(InvalidKeyError):
            ring.verify(bad)
    with pytest.raises(InvalidKeyError):  # the right key with another pepper's hash
        KeyRing.from_file(b"q" * 40, path).verify(key)
    assert repr(ring.verify(key)).count(key_hash(PEPPER, key)) == 0


def test_two_keys_of_one_caller_are_valid_at_once_and_revocation_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (old_id, old), (new_id, new) = new_key(), new_key()
    path = tmp_path / "keys.json"
    KeyFile(keys=[_record(old, old_id), _record(new, new_id)]).write(path)
    ring = KeyRing.from_file(PEPPER, path)
    assert ring.verify(old).caller == ring.verify(new).caller == "adserver"
    revoked = _record(old, old_id).model_copy(update={"revoked": now_utc()})
    KeyFile(keys=[revoked, _record(new, new_id)]).write(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    monkeypatch.setattr("adstream.ingest.keys.RELOAD_EVERY_S", 0.0)
    with pytest.raises(InvalidKeyError):
        ring.verify(old)
    assert ring.verify(new).id == new_id
    assert ring.signer(old_id) is None


def test_a_bad_key_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"id": "nope"}]}')
    with pytest.raises(KeyConfigError, match=str(path)):
        KeyFile.read(path)


def test_scopes_refuse_a_burst_smaller_than_a_batch() -> None:
    with pytest.raises(ValueError, match="burst"):
        Scopes(max_events=100, burst=10)


# The stores' contract (SQLite and Redis): tests/integration/test_shared_limits.py.


# ---- the gate ----------------------------------------------------------------------------
@pytest.fixture
def gate(tmp_path: Path) -> tuple[Gate, str, str, Decisions]:
    key_id, key = new_key()
    record = _record(
        key,
        key_id,
        types=(EventType.IMPRESSION,),
        ad_prefixes=("AD",),
        max_impressions=10,
        max_events=3,
        rate_per_s=0.001,
        burst=4,
    )
    decisions = Decisions()
    ring = KeyRing(PEPPER, KeyFile(keys=[record]))
    return Gate(ring, SharedLimits(tmp_path), decisions, 3600), key_id, key, decisions


def _event(ad_id: str = "AD1", kind: EventType = EventType.IMPRESSION, n: int = 1) -> AdEvent:
    return AdEvent.create(event_id=uuid.uuid4(), ad_id=ad_id, type=kind, timestamp=1, impressions=n)


def test_gate_statuses(gate: tuple[Gate, str, str, Decisions]) -> None:
    asyncio.run(_gate_statuses(*gate))


async def _gate_statuses(g: Gate, key_id: str, key: str, decisions: Decisions) -> None:
    with pytest.raises(AuthError) as missing:
        g.bearer(None)
    assert missing.value.status == 401
    with pytest.raises(AuthError):
        g.bearer(f"Basic {key}")
    caller = g.bearer(f"Bearer {key}")
    assert (caller.name, caller.key_id, caller.event_key) == ("adserver", key_id, None)
    for events in ([_event(kind=EventType.CLICK)], [_event("XY")], [_event(n=11)], [_event()] * 4):
        with pytest.raises(ForbiddenError):
            await g.admit(caller, events)
    await g.admit(caller, [_event()] * 3)
    with pytest.raises(RateLimitedError) as limited:
        await g.admit(caller, [_event()] * 2)
    assert limited.value.status == 429
    assert int(limited.value.headers()["Retry-After"]) >= 1
    outcomes = [outcome for _, outcome, _ in decisions.seen]
    assert outcomes == [
        "unauthenticated",
        "unauthenticated",
        *["forbidden"] * 4,
        "accepted",
        "rate_limited",
    ]
    assert key not in repr(decisions.seen)


def test_gate_signed_url_is_counted_once_and_released_when_refused(
    gate: tuple[Gate, str, str, Decisions],
) -> None:
    asyncio.run(_gate_signed_url(gate[0], gate[1]))


async def _gate_signed_url(g: Gate, key_id: str) -> None:
    secret = signing_secret(PEPPER, key_id)
    params = signing.sign("AD1", "impression", key_id=key_id, secret=secret)
    caller = g.single(None, params, EventType.IMPRESSION, "AD1")
    assert caller.event_key == f"signed:{key_id}:{params['nonce']}"
    await g.admit(caller, [_event()])
    with pytest.raises(ReplayedError):
        await g.admit(g.single(None, params, EventType.IMPRESSION, "AD1"), [_event()])
    with pytest.raises(AuthError, match="bad signature"):
        g.single(None, params, EventType.IMPRESSION, "AD2")
    with pytest.raises(AuthError, match="bad signature"):
        g.single(None, params, EventType.CLICK, "AD1")
    await g.release(caller)  # e.g. Kafka did not acknowledge: the URL may be retried
    await g.admit(g.single(None, params, EventType.IMPRESSION, "AD1"), [_event()])


def test_caller_labels_are_bounded() -> None:
    metrics = Metrics()
    for i in range(MAX_CALLER_LABELS + 20):
        metrics.caller_outcome(f"c{i}", "accepted", 1)
    metrics.flush()
    text = metrics.render()[0].decode()
    assert text.count("adstream_api_caller_requests_total{") == MAX_CALLER_LABELS + 1
    assert 'adstream_api_caller_requests_total{caller="other",outcome="accepted"} 20.0' in text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"adId=AD1&kid=k_0123456789&exp=1&nonce=abc-_def&sig=x_y-z",
        b"a=1&&b&c=&a=2",
        b"a=%41+b&c=d",
        b"=x&y=",
    ],
)
def test_the_hot_paths_query_parser_reads_as_starlette_does(raw: bytes) -> None:
    from starlette.datastructures import QueryParams

    from adstream.ingest.hot_path import _query

    expected = QueryParams(raw.decode("latin-1"))
    assert _query(raw.decode("latin-1")) == {k: expected[k] for k in expected}


def test_a_signed_url_cannot_outlive_the_aggregators_dedupe_window() -> None:
    from pydantic import ValidationError

    from adstream.ingest.config import ApiSettings

    assert ApiSettings(max_url_ttl_s=24 * 3600).max_url_ttl_s == 86400
    with pytest.raises(ValidationError):
        ApiSettings(max_url_ttl_s=24 * 3600 + 1)
