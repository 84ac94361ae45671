"""`adstream keys create | list | revoke` and `adstream sign`, as a user runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adstream.cli import app
from adstream.ingest.config import ApiSettings
from adstream.ingest.keys import InvalidKeyError
from adstream.ingest.signing import SignedParams

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADSTREAM_API_KEYS_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("ADSTREAM_API_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.delenv("ADSTREAM_API_PEPPER", raising=False)
    monkeypatch.delenv("ADSTREAM_SIGNING_SECRET", raising=False)
    return tmp_path


def _field(output: str, name: str) -> str:
    [value] = re.findall(rf"^{name}: +(\S+)$", output, re.MULTILINE)
    return value


def test_create_list_sign_revoke(env: Path) -> None:
    created = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--caller",
            "adserver-eu",
            "--type",
            "impression",
            "--ad-prefix",
            "AD",
            "--max-events",
            "10",
            "--burst",
            "100",
        ],
    )
    assert created.exit_code == 0, created.output
    key_id, key = _field(created.output, "key id"), _field(created.output, "API key")
    secret = _field(created.output, "URL-signing secret")
    ring = ApiSettings(auth="keys").key_ring()
    assert ring.verify(key).scopes.ad_prefixes == ("AD",)
    assert key not in (env / "keys.json").read_text()

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0
    assert key_id in listed.output
    assert "adserver-eu" in listed.output
    assert "valid" in listed.output
    assert key not in listed.output
    assert secret not in listed.output

    signed = runner.invoke(app, ["sign", "AD1", "--key-id", key_id, "--ttl", "60"])
    assert signed.exit_code == 0, signed.output
    url = signed.output.strip()
    assert url.startswith("http://127.0.0.1:8080/pixel.gif?adId=AD1&kid=")
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    params = SignedParams.parse(query)
    assert params is not None
    params.verify(secret, "impression", "AD1", params.exp - 30, 3600)

    revoked = runner.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0
    with pytest.raises(InvalidKeyError):
        ApiSettings(auth="keys").key_ring().verify(key)
    assert runner.invoke(app, ["keys", "revoke", "k_0000000000"]).exit_code == 2


def test_bad_input_exits_2(env: Path) -> None:
    assert runner.invoke(app, ["keys", "create", "--caller", "Bad Name"]).exit_code == 2
    small = ["keys", "create", "--caller", "x", "--max-events", "10", "--burst", "5"]
    assert runner.invoke(app, small).exit_code == 2
    no_pepper = runner.invoke(app, ["sign", "AD1", "--key-id", "k_0123456789"])
    assert no_pepper.exit_code == 2
    assert "ADSTREAM_SIGNING_SECRET" in no_pepper.output
