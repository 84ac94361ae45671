"""What authentication costs one hot-path request: `python -m bench.auth`.

Times the `Gate` steps the hot path runs per request, in process (no broker, no HTTP):
a bearer key (parse, HMAC-SHA256 with the pepper, constant-time compare, scopes, the
token bucket from its in-memory lease), a signed URL (query parsing, HMAC, compare,
expiry, the shared nonce insert in SQLite, the bucket), and the SQLite bucket update a
worker makes when its lease runs out. Prints microseconds per call (best of 5 runs).
"""

from __future__ import annotations

import tempfile
import timeit
import uuid
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
from adstream.ingest.limits_store import SharedLimits
from adstream.ingest.metrics import Metrics

PEPPER = b"bench-pepper-0123456789abcdef0123456789"
N = 20_000


def _best(statement: object, number: int = N) -> float:
    """Microseconds per call, best of 5."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
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
    with tempfile.TemporaryDirectory() as tmp:
        limits = SharedLimits(Path(tmp))
        gate = Gate(ring, limits, Metrics(), max_url_ttl_s=3600)
        bearer = f"Bearer {key}"

        def with_key() -> None:
            gate.admit(gate.bearer(bearer), [event])

        def signed() -> None:
            query = urlencode(signing.sign("AD1", "impression", key_id=key_id, secret=secret))
            params = _query({"query_string": query.encode()})
            gate.admit(gate.single(None, params, EventType.IMPRESSION, "AD1"), [event])

        def sign_only() -> None:
            signing.sign("AD1", "impression", key_id=key_id, secret=secret)

        rows = {
            "bearer key: verify + scopes + bucket (leased)": _best(with_key),
            "signed URL: sign (the ad server's side, subtracted below)": _best(sign_only),
            "signed URL: sign + parse + verify + nonce insert + bucket": _best(signed),
            "bucket refill in SQLite (a worker's lease ran out)": _best(
                lambda: limits.take("solo", 1, 1e9, 1), number=5000
            ),
            "key hash alone (HMAC-SHA256)": _best(lambda: key_hash(PEPPER, key)),
        }
        limits.close()
    rows["signed URL: collector side only"] = (
        rows["signed URL: sign + parse + verify + nonce insert + bucket"]
        - rows["signed URL: sign (the ad server's side, subtracted below)"]
    )
    width = max(map(len, rows))
    for name, micros in rows.items():
        print(f"{name:<{width}}  {micros:7.1f} µs")


if __name__ == "__main__":
    main()
