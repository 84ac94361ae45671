"""Signed event URLs: what an ad server puts in ad markup, where no secret can live.

This module imports only the standard library, so an ad server can copy this one file
(or `pip install adstream` and import it) and call `signed_url`:

    >>> signed_url("https://collect.example.com", "AD123", "impression",
    ...            key_id="k_1a2b3c4d", secret="…", ttl_s=600)  # doctest: +SKIP
    'https://collect.example.com/pixel.gif?adId=AD123&kid=k_1a2b3c4d&exp=…&nonce=…&sig=…'

The signature is HMAC-SHA256, keyed with the key's URL-signing secret (printed once by
`adstream keys create`), over a versioned canonical message of key id, event type, ad id,
expiry (epoch seconds) and nonce. The collector recomputes it and compares in constant
time (`hmac.compare_digest`), refuses an expired URL, and refuses a nonce it has seen
before within the expiry. The event id derives from key id and nonce (see
`signed_event_key`), so even a replay that got past the collector (another instance,
a restart) is the same event, which the aggregator de-duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

VERSION = "adstream-url-v1"
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""A nonce: 16-64 URL-safe characters (`secrets.token_urlsafe(16)` gives 22)."""
PARAMS = ("kid", "exp", "nonce", "sig")
"""The query parameters a signed URL adds to `adId`."""
PATHS = {"impression": "/ads/{adId}/impression", "click": "/ads/{adId}/click"}
PIXEL_PATH = "/pixel.gif"


class SignatureError(ValueError):
    """The URL's signature is missing, malformed, tampered with or expired."""


def signature(secret: str, key_id: str, event_type: str, ad_id: str, exp: int, nonce: str) -> str:
    """The URL-safe base64 HMAC-SHA256 (no padding) over the canonical message."""
    message = "\n".join((VERSION, key_id, event_type, ad_id, str(exp), nonce)).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(
    ad_id: str,
    event_type: str,
    *,
    key_id: str,
    secret: str,
    ttl_s: int = 600,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The query parameters (`adId`, `kid`, `exp`, `nonce`, `sig`) of one signed event.

    Use a fresh nonce per ad rendering: the collector counts each nonce once.
    """
    exp = int((time.time() if now is None else now) + ttl_s)
    nonce = nonce or secrets.token_urlsafe(16)
    sig = signature(secret, key_id, event_type, ad_id, exp, nonce)
    return {"adId": ad_id, "kid": key_id, "exp": str(exp), "nonce": nonce, "sig": sig}


def signed_url(
    base_url: str,
    ad_id: str,
    event_type: str = "impression",
    *,
    key_id: str,
    secret: str,
    ttl_s: int = 600,
    pixel: bool = True,
    now: float | None = None,
    nonce: str | None = None,
) -> str:
    """A signed URL: `GET /pixel.gif` (impressions) or `POST /ads/{adId}/{event_type}`."""
    params = sign(
        ad_id, event_type, key_id=key_id, secret=secret, ttl_s=ttl_s, now=now, nonce=nonce
    )
    if pixel:
        if event_type != "impression":
            raise ValueError("the pixel records impressions only; sign a click route instead")
        return f"{base_url.rstrip('/')}{PIXEL_PATH}?{urlencode(params)}"
    del params["adId"]  # it is in the path
    path = PATHS[event_type].replace("{adId}", ad_id)
    return f"{base_url.rstrip('/')}{path}?{urlencode(params)}"


@dataclass(frozen=True, slots=True)
class SignedParams:
    """A request's signed-URL parameters, parsed but not yet verified."""

    key_id: str
    exp: int
    nonce: str
    sig: str

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> SignedParams | None:
        """The parameters, or None when the request carries none of them (not signed).

        Raises `SignatureError` when some are there but any is missing or malformed.
        """
        present = [name for name in PARAMS if name in query]
        if not present:
            return None
        if len(present) != len(PARAMS):
            missing = ", ".join(name for name in PARAMS if name not in query)
            raise SignatureError(f"signed URL incomplete: missing {missing}")
        exp, nonce = query["exp"], query["nonce"]
        if not exp.isdigit() or len(exp) > 12:
            raise SignatureError("exp must be epoch seconds")
        if not NONCE.fullmatch(nonce):
            raise SignatureError("nonce must be 16-64 URL-safe characters")
        return cls(query["kid"], int(exp), nonce, query["sig"])

    def verify(self, secret: str, event_type: str, ad_id: str, now: float, max_ttl_s: int) -> None:
        """Raise `SignatureError` unless the signature matches and the URL is live.

        The signature is compared first and in constant time, so the answer for a forged
        URL does not depend on how much of the signature was right.
        """
        expected = signature(secret, self.key_id, event_type, ad_id, self.exp, self.nonce)
        if not hmac.compare_digest(expected.encode(), self.sig.encode("utf-8", "replace")):
            raise SignatureError("bad signature")
        if self.exp <= now:
            raise SignatureError("signed URL expired")
        if self.exp > now + max_ttl_s:
            raise SignatureError(f"signed URL expires more than {max_ttl_s} s ahead")


def signed_event_key(key_id: str, nonce: str) -> str:
    """The `Idempotency-Key` a signed event's id derives from: one nonce, one event id."""
    return f"signed:{key_id}:{nonce}"
