"""MSK IAM authentication: SASL/OAUTHBEARER tokens from AWS's signer library.

The token is a base64url SigV4-presigned `kafka-cluster:Connect` URL. The signer returns the
expiry in *milliseconds* since the epoch while confluent-kafka's `oauth_cb` must return
*seconds*; getting that wrong makes librdkafka think the token lives for ~50,000 years and
the connection fails on the first refresh.

The signer always claims 15 minutes, but a token is only as good as the credentials that
signed it: temporary credentials (ECS task role, EC2 instance profile, an assumed role, SSO)
may run out sooner. We therefore resolve the botocore credentials ourselves, sign with exactly
those keys, and cap the expiry handed to librdkafka at the credentials' own expiry (less a
safety margin), so librdkafka asks for a new token while the old keys still work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import botocore.session
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from botocore.credentials import (
    CredentialProvider,
    Credentials,
    DeferredRefreshableCredentials,
)

from adstream.kafka.settings import KafkaSettings

OAuthCallback = Callable[[str | None], tuple[str, float]]

# Refresh the token this long before the credentials expire (or half the time left, if less).
CREDENTIALS_SAFETY_MARGIN_S = 30.0


class NoAwsCredentialsError(RuntimeError):
    """The AWS credential chain found nothing to sign the MSK token with."""


class _ResolvedCredentials(CredentialProvider):  # type: ignore[misc]
    """Hands the signer keys we already resolved (its only entry point for our own keys)."""

    METHOD = "adstream-resolved"

    def __init__(self, access_key: str, secret_key: str, token: str | None) -> None:
        super().__init__()
        self._credentials = Credentials(access_key, secret_key, token, method=self.METHOD)

    def load(self) -> Credentials:
        return self._credentials


def credentials_expiry(credentials: Credentials) -> float | None:
    """When `credentials` stop working, in seconds since the epoch; None if they never expire.

    botocore keeps the expiry of temporary credentials (`RefreshableCredentials`: IMDS, ECS,
    assumed roles, SSO, `AWS_CREDENTIAL_EXPIRATION`) in `_expiry_time` and has no public
    accessor; the unit tests use real botocore objects, so a rename there fails them.
    """
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry.timestamp() if isinstance(expiry, datetime) else None


def sign(region: str, credentials: Credentials) -> tuple[str, float]:
    """Return `(token, expiry)` signed with `credentials`; expiry in seconds since the epoch.

    The expiry is the signer's (+15 min) unless the credentials expire sooner, then it is
    theirs minus `CREDENTIALS_SAFETY_MARGIN_S` (or minus half the time left, if that is less).
    """
    # Freezing refreshes credentials that are due, so the expiry read next belongs to them.
    frozen = credentials.get_frozen_credentials()
    expires_at = credentials_expiry(credentials)
    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(
        region, _ResolvedCredentials(frozen.access_key, frozen.secret_key, frozen.token)
    )
    expiry = int(expiry_ms) / 1000.0
    if expires_at is not None:
        margin = min(CREDENTIALS_SAFETY_MARGIN_S, (expires_at - time.time()) / 2)
        expiry = min(expiry, expires_at - margin)
    return str(token), expiry


def assumed_role_credentials(
    session: botocore.session.Session, region: str, role_arn: str, session_name: str
) -> Credentials:
    """Credentials of `role_arn`, assumed with the session's own credentials via regional STS.

    botocore refreshes them (a new AssumeRole) shortly before they expire, and keeps their
    expiry, which the signer's own role-ARN entry point throws away.
    """
    sts = session.create_client("sts", region_name=region)

    def assume() -> dict[str, str]:
        response = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
        keys = response["Credentials"]
        return {
            "access_key": keys["AccessKeyId"],
            "secret_key": keys["SecretAccessKey"],
            "token": keys["SessionToken"],
            "expiry_time": keys["Expiration"].isoformat(),
        }

    return DeferredRefreshableCredentials(refresh_using=assume, method="assume-role")


def resolve_credentials(*, profile: str | None = None) -> Credentials:
    """The default AWS chain's credentials (env vars, shared files, container/instance role).

    A new botocore session each time, as the signer does, so rotated files are picked up.
    """
    credentials = botocore.session.Session(profile=profile).get_credentials()
    if credentials is None:
        where = f"profile {profile!r}" if profile else "the default AWS credential chain"
        raise NoAwsCredentialsError(f"no AWS credentials found in {where} for MSK IAM")
    return credentials


def generate_token(
    region: str,
    *,
    profile: str | None = None,
    role_arn: str | None = None,
    session_name: str = "adstream",
) -> tuple[str, float]:
    """Return `(token, expiry)` with expiry in seconds since the epoch (one-off use).

    Credentials: an assumed role if `role_arn`, a named profile if `profile`, else the default
    AWS chain (env vars, shared files, instance/task role).
    """
    if role_arn:
        session = botocore.session.Session()
        return sign(region, assumed_role_credentials(session, region, role_arn, session_name))
    return sign(region, resolve_credentials(profile=profile))


def oauth_callback(settings: KafkaSettings) -> OAuthCallback:
    """The confluent-kafka `oauth_cb` for these settings (called by librdkafka on each refresh).

    An assumed role is kept across refreshes (botocore renews it), other credentials are
    resolved again each time.
    """
    if not settings.iam_region:
        raise ValueError("security=iam needs iam_region")
    region = settings.iam_region
    role: list[Credentials] = []
    lock = threading.Lock()

    def _refresh(_oauthbearer_config: str | None) -> tuple[str, float]:
        with lock:  # one refresh at a time: freezing keys and reading their expiry is two steps
            if not settings.iam_role_arn:
                return sign(region, resolve_credentials(profile=settings.iam_profile))
            if not role:
                role.append(
                    assumed_role_credentials(
                        botocore.session.Session(),
                        region,
                        settings.iam_role_arn,
                        settings.iam_session_name,
                    )
                )
            return sign(region, role[0])

    return _refresh
