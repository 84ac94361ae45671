"""Passwords of a local broker: generated once, kept in ``<dir>/secrets.json`` (mode 0600).

They are never logged or printed; the README tells where to find them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, SecretStr


class LocalSecrets(BaseModel):
    """The store password shared by all local key/trust stores and each SCRAM user's password."""

    store_password: SecretStr
    scram_passwords: dict[str, SecretStr]

    def scram_password(self, user: str) -> str:
        return self.scram_passwords[user].get_secret_value()


def _new_password() -> str:
    # URL-safe characters only: they survive Java properties and JAAS quoting without escaping.
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class SecretsFile:
    path: Path

    def load_or_create(self, users: tuple[str, ...]) -> LocalSecrets:
        """Load the secrets, creating missing ones; existing passwords never change."""
        existing = self.path.exists()
        data = json.loads(self.path.read_text()) if existing else {}
        scram: dict[str, str] = dict(data.get("scram_passwords", {}))
        missing = [user for user in users if user not in scram]
        scram |= {user: _new_password() for user in missing}
        store = str(data.get("store_password") or _new_password())
        loaded = LocalSecrets.model_validate({"store_password": store, "scram_passwords": scram})
        changed = not existing or bool(missing)
        if changed:
            self._write(loaded)
        return loaded

    def _write(self, value: LocalSecrets) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "store_password": value.store_password.get_secret_value(),
            "scram_passwords": {u: p.get_secret_value() for u, p in value.scram_passwords.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
        tmp.replace(self.path)
