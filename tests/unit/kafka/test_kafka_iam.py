"""MSK IAM tokens from static credentials (no network) and their wiring into the clients."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka.admin import AdminClient

from adstream.kafka import iam
from adstream.kafka.factory import admin_config, producer_config
from adstream.kafka.settings import KafkaSettings

ACCESS_KEY = "AKIAADSTREAMTEST0001"


@pytest.fixture(autouse=True)
def static_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[dev]\naws_access_key_id = AKIAADSTREAMPROFILE1\n"
        "aws_secret_access_key = profile-secret-key\n"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "static-secret-key")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def decode(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def iam_settings(**values: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers="127.0.0.1:1", security="iam", iam_region="eu-west-1", **values
    )


def test_token_is_a_presigned_connect_url_for_the_region() -> None:
    token, expiry = iam.generate_token("eu-west-1")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), "base64url without padding"
    url = urlsplit(decode(token))
    assert (url.scheme, url.netloc, url.path) == ("https", "kafka.eu-west-1.amazonaws.com", "/")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["Action"] == "kafka-cluster:Connect"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert re.fullmatch(
        rf"{ACCESS_KEY}/\d{{8}}/eu-west-1/kafka-cluster/aws4_request", query["X-Amz-Credential"]
    )
    assert re.fullmatch(r"\d{8}T\d{6}Z", query["X-Amz-Date"])
    assert query["X-Amz-Expires"] == "900"
    assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"])
    # Seconds since the epoch (the signer's milliseconds would be ~1000x larger).
    assert abs(expiry - (time.time() + 900)) < 120


def test_profile_credentials_are_used() -> None:
    token, _ = iam.generate_token("us-east-1", profile="dev")
    query = parse_qs(urlsplit(decode(token)).query)
    assert query["X-Amz-Credential"][0].startswith("AKIAADSTREAMPROFILE1/")
    assert "/us-east-1/" in query["X-Amz-Credential"][0]


def test_role_arn_dispatch_and_millisecond_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    """Assuming a role needs STS; the signer's entry point is replaced to stay offline."""
    calls = []

    def fake(region: str, role_arn: str, session: str) -> tuple[str, int]:
        calls.append((region, role_arn, session))
        return "tok", 1_700_000_900_123

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token_from_role_arn", fake)
    arn = "arn:aws:iam::123456789012:role/producer"
    assert iam.generate_token("eu-west-1", role_arn=arn, session_name="s") == (
        "tok",
        1_700_000_900.123,
    )
    assert calls == [("eu-west-1", arn, "s")]


def test_oauth_callback_returns_token_and_seconds() -> None:
    callback = iam.oauth_callback(iam_settings())
    token, expiry = callback("")
    assert urlsplit(decode(token)).netloc == "kafka.eu-west-1.amazonaws.com"
    assert time.time() < expiry < time.time() + 1000


def test_client_config_wires_oauthbearer() -> None:
    conf = producer_config(iam_settings(iam_profile="dev"))
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "OAUTHBEARER"
    token, _ = conf["oauth_cb"](None)
    assert "AKIAADSTREAMPROFILE1" in decode(token)
    assert "oauth_cb" in repr(conf)
    assert "<callback" in repr(conf)
    assert "enable.idempotence" in conf


def test_librdkafka_accepts_the_iam_config() -> None:
    admin = AdminClient(dict(admin_config(iam_settings(), {"log_level": 0})))
    assert admin is not None
