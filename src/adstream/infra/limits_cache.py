"""The ingest API's shared rate limits and URL nonces: an ElastiCache Serverless cache.

The API tasks share no disk, so without it each task would keep its own token buckets (a
key's budget times the task count) and see only its own nonces. With it, every task takes
from one bucket per key and refuses a replay another task saw (`adstream.ingest.
limits_redis`; README "Callers, keys and signed URLs").

- **Valkey**, serverless: no nodes to size, Multi-AZ by itself, billed per GB-hour
  stored (at least 100 MB) and per ElastiCache Processing Unit (about one per signed URL,
  one per 50-token bucket lease of a worker).
- **Network**: the private subnets; its security group admits 6379 from the API tasks'
  own group only (not the aggregator's, which shares the Kafka client group).
- **Encryption**: in transit always (serverless caches accept TLS only; the tasks connect
  with ``rediss://``, the certificate verified); at rest with a customer-managed key.
- **Authentication**: a cache user whose password is a generated Secrets Manager secret,
  handed to the API task as ECS secrets; its access string allows only the commands the
  store runs on its own keys (`ACCESS_STRING`, the same as `adstream.ingest.limits_redis`'s,
  which the local tests give redis-server's user; a test keeps the two equal).
  Serverless caches always authenticate: the default user is not in the group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Fn, RemovalPolicy, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.profiles import Profile

CACHE_PORT = 6379
ENGINE = "valkey"
ENGINE_MAJOR_VERSION = "8"
CACHE_USER = "adstream-api"
ACCESS_STRING = (
    "on ~adstream:* -@all +evalsha +eval +script|load +hmget +hset +pexpire +set +del"
    " +ping +cluster|slots +command"
)
"""What the API's store may run, on its own keys only (infra imports nothing of adstream)."""


@dataclass(frozen=True)
class LimitsConnection:
    """What the API task needs to use the cache."""

    url: str
    secret: secretsmanager.ISecret
    security_group: ec2.ISecurityGroup

    def environment(self) -> dict[str, str]:
        """The URL (TLS), and cluster mode: serverless caches are clusters."""
        return {"ADSTREAM_API_LIMITS_URL": self.url, "ADSTREAM_API_LIMITS_CLUSTER": "true"}

    def secrets(self) -> dict[str, ecs.Secret]:
        return {
            "ADSTREAM_API_LIMITS_USERNAME": ecs.Secret.from_secrets_manager(
                self.secret, "username"
            ),
            "ADSTREAM_API_LIMITS_PASSWORD": ecs.Secret.from_secrets_manager(
                self.secret, "password"
            ),
        }


class LimitsCache(Construct):
    """The cache, its key, security groups, user and secret; `connection` for the API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(scope, construct_id)
        spec = profile.clients.api_limits
        name = f"{profile.stack_name}-limits".lower()[:40]
        self.key = kms.Key(
            self,
            "Key",
            description=f"the API's rate-limit cache of {profile.stack_name} and its user secret",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,  # the cache holds nothing worth keeping
        )
        self.api_tasks = ec2.SecurityGroup(
            self,
            "ApiTasks",
            vpc=vpc,
            description="ingest API tasks: the only group the rate-limit cache admits",
            allow_all_outbound=True,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "Sg",
            vpc=vpc,
            description="rate-limit cache: Valkey (TLS) from the API tasks only",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(
            self.api_tasks, ec2.Port.tcp(CACHE_PORT), "Valkey (TLS) from the ingest API tasks"
        )
        self.secret = secretsmanager.Secret(
            self,
            "User",
            description=f"ingest API: its rate-limit cache user {CACHE_USER} "
            "(ADSTREAM_API_LIMITS_USERNAME/PASSWORD)",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": CACHE_USER}),
                generate_string_key="password",
                exclude_punctuation=True,  # ElastiCache passwords: printable, no @ " /
                password_length=40,
            ),
        )
        user = elasticache.CfnUser(
            self,
            "CacheUser",
            engine=ENGINE,
            user_id=f"{name}-api"[:40],
            user_name=CACHE_USER,
            access_string=ACCESS_STRING,
            authentication_mode={
                "Type": "password",
                "Passwords": [self.secret.secret_value_from_json("password").unsafe_unwrap()],
            },
        )
        group = elasticache.CfnUserGroup(
            self, "Users", engine=ENGINE, user_group_id=name, user_ids=[user.ref]
        )
        limits = elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
            data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                unit="GB", maximum=spec.max_data_gb
            ),
            ecpu_per_second=(
                elasticache.CfnServerlessCache.ECPUPerSecondProperty(
                    maximum=spec.max_ecpu_per_second
                )
                if spec.max_ecpu_per_second
                else None
            ),
        )
        self.cache = elasticache.CfnServerlessCache(
            self,
            "Cache",
            engine=ENGINE,
            major_engine_version=ENGINE_MAJOR_VERSION,
            serverless_cache_name=name,
            description=f"ingest API rate limits and URL nonces of {profile.stack_name}",
            kms_key_id=self.key.key_arn,
            security_group_ids=[self.security_group.security_group_id],
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
            user_group_id=group.ref,
            cache_usage_limits=limits,
        )
        url = Fn.join(
            "",
            [
                "rediss://",
                self.cache.attr_endpoint_address,
                ":",
                Token.as_string(self.cache.attr_endpoint_port),
            ],
        )
        self.connection = LimitsConnection(url, self.secret, self.api_tasks)
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "the cache user's password is set from this secret at deploy time; a rotation "
            "would have to update the ElastiCache user as well (a stack update does)",
        )
