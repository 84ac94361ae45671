"""MSK IAM tokens (no AWS network) and their wiring into the clients.

Temporary credentials are real botocore objects: `RefreshableCredentials`, the container
provider reading a loopback HTTP endpoint (as on ECS), and STS through botocore's `Stubber`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.stub import Stubber
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


def query(token: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(decode(token)).query).items()}


def signed_at(token: str) -> float:
    """The signing time the token carries (whole seconds, as the signer computes from it)."""
    stamp = datetime.strptime(query(token)["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    return stamp.replace(tzinfo=UTC).timestamp()


def in_seconds(seconds: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)


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


def test_static_credentials_keep_the_signers_expiry_in_seconds() -> None:
    """No expiry on the keys: the token's own 900 s, converted exactly from milliseconds."""
    token, expiry = iam.sign("eu-west-1", Credentials(ACCESS_KEY, "secret", None))
    assert expiry == signed_at(token) + 900


def test_credentials_expiring_before_the_token_cap_its_expiry() -> None:
    """Keys that die in 120 s (botocore refreshes them first): the token says 90 s, not 900 s."""
    expires = in_seconds(120)
    refreshed = []

    def refresh() -> dict[str, str]:
        refreshed.append(True)
        return {
            "access_key": "ASIAADSTREAMROTATED2",
            "secret_key": "rotated-secret",
            "token": "rotated-session-token",
            "expiry_time": expires.isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        {**refresh(), "access_key": "ASIAADSTREAMOLDKEY01"}, refresh, "test"
    )
    refreshed.clear()
    token, expiry = iam.sign("eu-west-1", credentials)
    # Inside botocore's mandatory refresh window: the token is signed with the fresh keys ...
    assert refreshed == [True]
    assert query(token)["X-Amz-Credential"].startswith("ASIAADSTREAMROTATED2/")
    assert query(token)["X-Amz-Security-Token"] == "rotated-session-token"
    # ... and expires a safety margin before them, well before the signer's 900 s.
    assert expiry == expires.timestamp() - iam.CREDENTIALS_SAFETY_MARGIN_S
    assert expiry < signed_at(token) + 900


def test_credentials_outliving_the_token_keep_the_signers_expiry() -> None:
    def must_not_refresh() -> dict[str, str]:
        raise AssertionError("20 minutes left is outside botocore's refresh window")

    credentials = RefreshableCredentials.create_from_metadata(
        {
            "access_key": "ASIAADSTREAMLONGKEY1",
            "secret_key": "s",
            "token": "t",
            "expiry_time": in_seconds(20 * 60).isoformat(),
        },
        must_not_refresh,
        "test",
    )
    token, expiry = iam.sign("eu-west-1", credentials)
    assert expiry == signed_at(token) + 900


def test_env_credentials_with_an_expiration_cap_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    expires = in_seconds(120)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-session-token")
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expires.isoformat())
    token, expiry = iam.generate_token("eu-west-1")
    assert query(token)["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    assert expiry == expires.timestamp() - iam.CREDENTIALS_SAFETY_MARGIN_S


@pytest.fixture
def container_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, datetime]]]:
    """An ECS-style credentials endpoint on loopback handing out a new key on every request,
    each valid for 120 s; yields the keys and expiries handed out so far."""
    issued: list[tuple[str, datetime]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issued.append((f"ASIAADSTREAMTASK{len(issued):04d}", in_seconds(120)))
            body = json.dumps(
                {
                    "AccessKeyId": issued[-1][0],
                    "SecretAccessKey": "task-secret",
                    "Token": "task-session-token",
                    "Expiration": issued[-1][1].strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{server.server_port}/creds"
    )
    try:
        yield issued
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_task_role_credentials_cap_each_refreshed_token(
    container_credentials: list[tuple[str, datetime]],
) -> None:
    """ECS rotation: every refresh signs with the endpoint's current key and stops before it."""
    callback = iam.oauth_callback(iam_settings())
    keys = []
    for _ in range(2):
        token, expiry = callback(None)
        key, expires = container_credentials[-1]
        assert query(token)["X-Amz-Credential"].startswith(f"{key}/")
        assert expiry == expires.timestamp() - iam.CREDENTIALS_SAFETY_MARGIN_S
        assert expiry < signed_at(token) + 900
        keys.append(key)
    assert keys[0] != keys[1]


ROLE_ARN = "arn:aws:iam::123456789012:role/producer"


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """A real STS client whose responses are queued with botocore's Stubber."""
    client = botocore.session.Session().create_client("sts", region_name="eu-west-1")
    created = []

    def create_client(self: object, service: str, **kwargs: Any) -> Any:
        created.append((service, kwargs.get("region_name")))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    assert set(created) == {("sts", "eu-west-1")}


def assume_role_response(stubber: Stubber, key: str, expires: datetime) -> None:
    stubber.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": key,
                "SecretAccessKey": "role-secret-key-0000",
                "SessionToken": "role-session-token",
                "Expiration": expires,
            }
        },
        {"RoleArn": ROLE_ARN, "RoleSessionName": "producer-session"},
    )


def test_assumed_role_expiry_caps_the_token(sts: Stubber) -> None:
    expires = in_seconds(120)
    assume_role_response(sts, "ASIAADSTREAMROLE0001", expires)
    token, expiry = iam.generate_token(
        "eu-west-1", role_arn=ROLE_ARN, session_name="producer-session"
    )
    assert query(token)["X-Amz-Credential"].startswith("ASIAADSTREAMROLE0001/")
    assert query(token)["X-Amz-Security-Token"] == "role-session-token"
    assert expiry == expires.timestamp() - iam.CREDENTIALS_SAFETY_MARGIN_S


def test_assumed_role_is_reused_across_token_refreshes(sts: Stubber) -> None:
    """One AssumeRole for an hour of keys, not one per token (botocore renews them when due)."""
    assume_role_response(sts, "ASIAADSTREAMROLE0002", in_seconds(3600))
    callback = iam.oauth_callback(
        iam_settings(iam_role_arn=ROLE_ARN, iam_session_name="producer-session")
    )
    for _ in range(2):
        token, expiry = callback(None)
        assert query(token)["X-Amz-Credential"].startswith("ASIAADSTREAMROLE0002/")
        assert expiry == signed_at(token) + 900


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    with pytest.raises(iam.NoAwsCredentialsError, match="default AWS credential chain"):
        iam.generate_token("eu-west-1")
