"""SASL/SCRAM users: one Secrets Manager secret per user, associated with the cluster.

MSK only accepts secrets whose name starts with `AmazonMSK_` and that are encrypted with a
customer-managed KMS key (the AWS-managed Secrets Manager key cannot be shared with MSK).
"""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_msk as msk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.profiles import Profile

SECRET_PREFIX = "AmazonMSK_"  # noqa: S105  (a name prefix MSK requires, not a password)


def secret_name(profile: Profile, user: str) -> str:
    return f"{SECRET_PREFIX}{profile.cluster.name}_{user}"


class ScramUsers(Construct):
    """SCRAM credentials for the profile's users; `secrets[user]` for client services."""

    def __init__(
        self, scope: Construct, construct_id: str, *, profile: Profile, cluster_arn: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "SecretsKey",
            description=f"SCRAM secrets of MSK {profile.cluster.name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.secrets: dict[str, secretsmanager.Secret] = {}
        for user in profile.cluster.auth.scram_users:
            secret = secretsmanager.Secret(
                self,
                f"User-{user}",
                secret_name=secret_name(profile, user),
                description=f"SCRAM credentials of Kafka user {user}",
                encryption_key=self.key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"username": user}),
                    generate_string_key="password",
                    exclude_punctuation=True,
                    password_length=32,
                ),
            )
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "AWS ships no rotation function for MSK SCRAM secrets; operators rotate by "
                "writing a new secret value (README: Deploying to AWS).",
            )
            self.secrets[user] = secret
        self.association = msk.CfnBatchScramSecret(
            self,
            "Association",
            cluster_arn=cluster_arn,
            secret_arn_list=[secret.secret_arn for secret in self.secrets.values()],
        )
