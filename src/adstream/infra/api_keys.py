"""The ingest API's key secrets: the pepper its key hashes are keyed with, and the key
document (`adstream keys create` output) the API task reads at start.

The pepper is generated once and kept when the stack is deleted: every key's stored hash
depends on it, so losing it revokes every caller. The key document starts empty (every
request gets 401 until an operator writes keys into it with `aws secretsmanager
put-secret-value`, README "Callers, keys and signed URLs"); it holds hashes only, never
a usable key.
"""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adstream.infra.checks import acknowledge

PEPPER_LENGTH = 48
EMPTY_KEY_DOCUMENT = json.dumps({"keys": []})


class ApiKeySecrets(Construct):
    """Two Secrets Manager secrets, encrypted with their own customer-managed key."""

    def __init__(self, scope: Construct, construct_id: str, *, stack_name: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"ingest API key secrets of {stack_name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.pepper = secretsmanager.Secret(
            self,
            "Pepper",
            description="ingest API: the pepper of the API key hashes (ADSTREAM_API_PEPPER)",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=PEPPER_LENGTH
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.keys = secretsmanager.Secret(
            self,
            "Keys",
            description="ingest API: callers' key hashes and scopes (ADSTREAM_API_KEYS_JSON)",
            encryption_key=self.key,
            secret_string_value=SecretValue.unsafe_plain_text(EMPTY_KEY_DOCUMENT),
        )
        acknowledge(
            self.pepper,
            "AwsSolutions-SMG4",
            "a new pepper revokes every key at once; keys rotate instead (two valid keys per "
            "caller, `adstream keys create` then `revoke`)",
        )
        acknowledge(
            self.keys,
            "AwsSolutions-SMG4",
            "the document holds key hashes written by operators; a key is rotated by adding "
            "its successor and revoking it, not by regenerating the secret",
        )

    def task_secrets(self) -> dict[str, ecs.Secret]:
        """The API task's environment secrets, as `ApiSettings` reads them."""
        return {
            "ADSTREAM_API_PEPPER": ecs.Secret.from_secrets_manager(self.pepper),
            "ADSTREAM_API_KEYS_JSON": ecs.Secret.from_secrets_manager(self.keys),
        }
