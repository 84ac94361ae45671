"""MSK IAM authentication: SASL/OAUTHBEARER tokens from AWS's signer library.

The token is a base64url SigV4-presigned `kafka-cluster:Connect` URL. The signer returns the
expiry in *milliseconds* since the epoch while confluent-kafka's `oauth_cb` must return
*seconds*; getting that wrong makes librdkafka think the token lives for ~50,000 years and
the connection fails on the first refresh.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

from adstream.kafka.settings import KafkaSettings

OAuthCallback = Callable[[str | None], tuple[str, float]]


def generate_token(
    region: str,
    *,
    profile: str | None = None,
    role_arn: str | None = None,
    session_name: str = "adstream",
) -> tuple[str, float]:
    """Return `(token, expiry)` with expiry in seconds since the epoch.

    Credentials: an assumed role if `role_arn`, a named profile if `profile`, else the default
    AWS chain (env vars, shared files, instance/task role).
    """
    if role_arn:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_role_arn(
            region, role_arn, session_name
        )
    elif profile:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_profile(region, profile)
    else:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return str(token), int(expiry_ms) / 1000.0


def oauth_callback(settings: KafkaSettings) -> OAuthCallback:
    """The confluent-kafka `oauth_cb` for these settings (called by librdkafka on each refresh)."""
    if not settings.iam_region:
        raise ValueError("security=iam needs iam_region")
    region = settings.iam_region

    def _refresh(_oauthbearer_config: str | None) -> tuple[str, float]:
        return generate_token(
            region,
            profile=settings.iam_profile,
            role_arn=settings.iam_role_arn,
            session_name=settings.iam_session_name,
        )

    return _refresh
