"""API keys: who may call the ingestion API, with which scopes; hashed at rest.

A key looks like ``adsk.k_1a2b3c4d5e.<43 random URL-safe characters>``: a public key id
(for lookup, logs, metrics and the Kafka caller header) and 256 random bits. The key file
stores, per key id, ``HMAC-SHA256(pepper, key)``, never the key. Why HMAC with a pepper
and not argon2/scrypt: a slow hash protects *guessable* secrets (passwords); a 256-bit
random key cannot be guessed however fast the hash, and every request verifies a key, so
argon2's tens of milliseconds per check would cap a worker at a few dozen requests per
second. The pepper (a server secret kept apart from the key file: an environment variable
from Secrets Manager on AWS, a 0600 file locally) means a leaked key file alone does not
even let anyone test a candidate key.

Each key also has a URL-signing secret, ``HMAC-SHA256(pepper, "url-signing\\0" + key id)``,
derived, never stored, printed once by ``adstream keys create`` for the ad server that
signs pixel URLs (`signing.py`). Rotation: create a second key for the same caller, roll
it out, revoke the first; both are valid meanwhile. Revoking a key also invalidates the
URLs it signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adstream.events import AD_ID_PATTERN, MAX_BATCH_EVENTS, MAX_IMPRESSIONS, EventType

log = logging.getLogger(__name__)

KEY_PREFIX = "adsk"
KEY_ID = re.compile(r"^k_[0-9a-f]{10}$")
CALLER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_KEY = re.compile(r"^adsk\.(k_[0-9a-f]{10})\.([A-Za-z0-9_-]{43})$")
MIN_PEPPER_CHARS = 32
RELOAD_EVERY_S = 1.0


class InvalidKeyError(ValueError):
    """The presented key is malformed, unknown, revoked or does not match its hash."""


class KeyConfigError(ValueError):
    """The key file or the pepper cannot be used; the message says which and why."""


class Scopes(BaseModel):
    """What a key may do. Limits count events; the bucket refills `rate_per_s` per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: tuple[EventType, ...] = (EventType.IMPRESSION, EventType.CLICK)
    ad_prefixes: tuple[str, ...] = Field(
        default=(), description="adIds the key may count: any if empty"
    )
    max_impressions: int = Field(default=MAX_IMPRESSIONS, ge=1, le=MAX_IMPRESSIONS)
    max_events: int = Field(default=MAX_BATCH_EVENTS, ge=1, le=MAX_BATCH_EVENTS)
    rate_per_s: float = Field(default=1000.0, gt=0)
    burst: int = Field(default=2000, ge=1)

    @field_validator("ad_prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        pattern = re.compile(AD_ID_PATTERN.replace("{1,64}", "{1,63}"))
        for prefix in value:
            if not pattern.fullmatch(prefix):
                raise ValueError(f"ad-id prefix {prefix!r} must match {pattern.pattern}")
        return value

    @model_validator(mode="after")
    def _burst_holds_a_batch(self) -> Scopes:
        if self.burst < self.max_events:
            raise ValueError("burst must be at least max_events, or a full batch never passes")
        return self

    def allows_ad(self, ad_id: str) -> bool:
        return not self.ad_prefixes or ad_id.startswith(self.ad_prefixes)


class KeyRecord(BaseModel):
    """One key as stored: its id, caller, hash (not the key), scopes, and revocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=KEY_ID.pattern)
    caller: str = Field(pattern=CALLER.pattern)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    created: datetime
    revoked: datetime | None = None
    scopes: Scopes = Scopes()


class KeyFile(BaseModel):
    """The key file (JSON): locally a file, on AWS the same document in Secrets Manager."""

    model_config = ConfigDict(extra="forbid")

    keys: list[KeyRecord] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> KeyFile:
        ids = [key.id for key in self.keys]
        if len(ids) != len(set(ids)):
            raise ValueError("key ids must be unique")
        return self

    @classmethod
    def read(cls, path: Path) -> KeyFile:
        """The file's keys; an absent file holds none."""
        if not path.exists():
            return cls()
        return cls.parse(path.read_bytes(), str(path))

    @classmethod
    def parse(cls, raw: bytes | str, source: str) -> KeyFile:
        try:
            return cls.model_validate_json(raw)
        except ValueError as exc:
            raise KeyConfigError(f"invalid key file {source}: {exc}") from None

    def write(self, path: Path) -> None:
        """Replace the file atomically (readers never see half of it), mode 0600."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.model_dump_json(indent=2, exclude_defaults=False))
        tmp.replace(path)


def key_hash(pepper: bytes, key: str) -> str:
    """What the key file stores for `key`."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def signing_secret(pepper: bytes, key_id: str) -> str:
    """The key's URL-signing secret (derived from the pepper, so never stored)."""
    digest = hmac.new(pepper, b"url-signing\0" + key_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_key() -> tuple[str, str]:
    """A fresh (key id, key)."""
    key_id = f"k_{secrets.token_hex(5)}"
    return key_id, f"{KEY_PREFIX}.{key_id}.{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The key id inside a well-formed key, else None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def check_pepper(pepper: str) -> bytes:
    if len(pepper) < MIN_PEPPER_CHARS:
        raise KeyConfigError(f"the pepper must have at least {MIN_PEPPER_CHARS} characters")
    return pepper.encode()


def read_or_create_pepper(path: Path) -> bytes:
    """The local pepper file's content, created (0600, 256 random bits) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return check_pepper(path.read_text().strip())


class KeyRing:
    """The valid keys, verified against their hashes; reloads the file when it changes.

    Built from a file (`from_file`: re-read at most once a second when its mtime
    changes, so `adstream keys revoke` takes effect without a restart) or from a
    document (Secrets Manager, read once: restart the tasks after a change).
    """

    def __init__(self, pepper: bytes, keys: KeyFile, path: Path | None = None) -> None:
        self._pepper = pepper
        self._path = path
        self._mtime = path.stat().st_mtime_ns if path is not None and path.exists() else 0
        self._checked = time.monotonic()
        self._keys: dict[str, KeyRecord] = {}
        self._secrets: dict[str, str] = {}
        self._load(keys)

    @classmethod
    def from_file(cls, pepper: bytes, path: Path) -> KeyRing:
        return cls(pepper, KeyFile.read(path), path)

    def _load(self, keys: KeyFile) -> None:
        self._keys = {key.id: key for key in keys.keys if key.revoked is None}
        self._secrets = {}

    def _refresh(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if now - self._checked < RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            mtime = self._path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._load(KeyFile.read(self._path))
                self._mtime = mtime
                log.info("reloaded %d valid API keys from %s", len(self._keys), self._path)
        except (OSError, KeyConfigError) as exc:  # keep the last good keys
            log.error("API keys not reloaded, keeping the previous ones: %s", exc)

    def verify(self, key: str) -> KeyRecord:
        """The record of a valid key; raises `InvalidKeyError` (never says which part failed)."""
        self._refresh()
        key_id = key_id_of(key)
        record = self._keys.get(key_id) if key_id is not None else None
        if record is None:
            raise InvalidKeyError("unknown or revoked API key")
        if not hmac.compare_digest(key_hash(self._pepper, key), record.hash):
            raise InvalidKeyError("unknown or revoked API key")
        return record

    def signer(self, key_id: str) -> tuple[KeyRecord, str] | None:
        """A valid key's record and URL-signing secret, or None."""
        self._refresh()
        record = self._keys.get(key_id)
        if record is None:
            return None
        secret = self._secrets.get(key_id)
        if secret is None:
            secret = self._secrets[key_id] = signing_secret(self._pepper, key_id)
        return record, secret

    @property
    def callers(self) -> frozenset[str]:
        return frozenset(key.caller for key in self._keys.values())


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
