"""Typed deployment profiles (`infra/profiles/<name>.yaml`), validated before any synthesis.

A profile is the only input of the CDK app. Impossible combinations fail here with a message
that names the setting, instead of surfacing as a failed CloudFormation deployment an hour in.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[3]
"""The source checkout: profiles, deploy/kafka*.yaml and image build contexts live here."""
PROFILE_DIR = PROJECT_ROOT / "infra" / "profiles"
"""Where named profiles live in a source checkout (`infra/profiles/<name>.yaml`)."""

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,63}$")


class ProfileError(ValueError):
    """A profile cannot be loaded; the message names the offending setting(s)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


class Egress(StrEnum):
    """How private subnets reach AWS APIs: a NAT gateway per AZ, or interface endpoints only."""

    NAT = "nat"
    VPC_ENDPOINTS = "vpc-endpoints"


class ClusterKind(StrEnum):
    PROVISIONED = "provisioned"
    SERVERLESS = "serverless"


class ClientBroker(StrEnum):
    """MSK's in-transit setting between clients and brokers (CloudFormation values)."""

    TLS = "TLS"
    TLS_PLAINTEXT = "TLS_PLAINTEXT"
    PLAINTEXT = "PLAINTEXT"


class ClientAuth(StrEnum):
    """How the Fargate services authenticate to the cluster."""

    IAM = "iam"
    SCRAM = "scram"
    PLAINTEXT = "plaintext"


class NetworkProfile(_Model):
    cidr: str = "10.40.0.0/16"
    egress: Egress = Egress.NAT
    flow_log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365] = 30


class AuthProfile(_Model):
    """Client authentication modes enabled on the cluster."""

    iam: bool = True
    scram: bool = False
    mtls: bool = False
    private_ca_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]+$",
        description="existing ACM Private CA for client certificates; created when unset",
    )
    scram_users: tuple[str, ...] = Field(
        default=("adstream-api", "adstream-aggregator"),
        description="SCRAM users (AmazonMSK_ secrets); the names deploy/kafka.yaml grants",
    )


class ClusterProfile(_Model):
    kind: ClusterKind = ClusterKind.PROVISIONED
    name: Annotated[str, Field(pattern=_NAME.pattern)]
    kafka_version: str = "3.8.x"
    broker_count: int = Field(default=3, ge=1, le=30)
    instance_type: str = Field(default="kafka.m7g.large", pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")
    ebs_volume_gb: int = Field(default=100, ge=1, le=16384)
    ebs_max_volume_gb: int = Field(default=1000, ge=1, le=16384)
    storage_target_utilization: int = Field(
        default=60, ge=10, le=80, description="percent; MSK accepts 10-80"
    )
    enhanced_monitoring: Literal["DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER"] = "PER_BROKER"
    client_broker: ClientBroker = ClientBroker.TLS
    broker_log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365] = 30
    auth: AuthProfile = AuthProfile()


class TopicProfile(_Model):
    name: str = "ad-events"
    consumer_group: str = "adstream-aggregator"
    retention_hours: int = Field(default=168, ge=1, le=87600)


class ServiceProfile(_Model):
    cpu: Literal[256, 512, 1024, 2048, 4096] = 256
    memory_mib: int = Field(default=512, ge=512, le=30720)
    desired_count: int = Field(default=1, ge=0, le=50)
    command: tuple[str, ...] = Field(
        description="arguments of the `adstream` command in the image, e.g. [serve]"
    )


class ImageSource(StrEnum):
    ASSET = "asset"
    ECR = "ecr"


_TAG_OR_DIGEST = r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"


class ImageProfile(_Model):
    """The services' image. Every build must reach a new task definition, or ECS keeps
    running the old image: `asset` tags by content hash, `ecr` needs an immutable tag."""

    source: ImageSource = Field(
        default=ImageSource.ASSET,
        description="asset: `cdk deploy` builds `file` in `context` and pushes it to the CDK "
        "assets repository under its content hash; ecr: an existing repository and tag",
    )
    context: str = Field(
        default="build/image",
        description="asset: the prepared build context, relative to the project root",
    )
    file: str = Field(default="Containerfile", description="asset: relative to `context`")
    repository: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    tag: str | None = Field(
        default=None,
        pattern=_TAG_OR_DIGEST,
        description="ecr: an immutable tag (e.g. the git commit) or a sha256: digest",
    )

    def problems(self) -> list[str]:
        out = []
        if self.source is ImageSource.ECR:
            if not (self.repository and self.tag):
                out.append("clients.image: source ecr needs repository and tag")
            if self.tag == "latest":
                out.append(
                    "clients.image.tag: latest never rolls out (the task definition does not "
                    "change when the tag moves); use an immutable tag or a sha256: digest"
                )
        elif self.repository or self.tag:
            out.append("clients.image: repository/tag are for source ecr, not asset")
        return out


class DatabaseKind(StrEnum):
    """The count database the stack creates (or none: `clients.database_secret_arn`)."""

    NONE = "none"
    RDS = "rds"
    AURORA_SERVERLESS = "aurora-serverless"


class DatabaseProfile(_Model):
    """PostgreSQL for the aggregator's counts and the API's stats routes."""

    kind: DatabaseKind = Field(
        default=DatabaseKind.NONE,
        description="rds: one RDS for PostgreSQL instance (Multi-AZ optional); "
        "aurora-serverless: Aurora PostgreSQL Serverless v2, billed per ACU-hour",
    )
    instance_type: str = Field(
        default="t4g.micro",
        pattern=r"^[a-z0-9]+\.[a-z0-9]+$",
        description="rds: the instance class without the db. prefix",
    )
    multi_az: bool = Field(
        default=False, description="rds: a standby in a second AZ; aurora: a second instance"
    )
    allocated_storage_gb: int = Field(default=20, ge=20, le=65536)
    max_allocated_storage_gb: int = Field(
        default=100, ge=20, le=65536, description="rds: storage autoscaling limit"
    )
    min_capacity_acu: float = Field(default=0.5, ge=0.5, le=256)
    max_capacity_acu: float = Field(default=4, ge=1, le=256)
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    deletion_protection: bool = False
    rotation_days: int = Field(
        default=30, ge=1, le=365, description="Secrets Manager rotates the password this often"
    )

    @property
    def created(self) -> bool:
        return self.kind is not DatabaseKind.NONE


class ApiScalingProfile(_Model):
    """Target tracking on the API service: ALB requests per task and CPU, within bounds."""

    min_count: int = Field(default=1, ge=1, le=50)
    max_count: int = Field(default=4, ge=1, le=50)
    requests_per_target: int = Field(
        default=1000, ge=1, description="ALB requests per task per minute to aim for"
    )
    cpu_percent: int = Field(default=60, ge=10, le=90)


class SharedLimitsProfile(_Model):
    """The API's rate limits and signed-URL nonces in an ElastiCache Serverless (Valkey)
    cache shared by every API task (`adstream.infra.limits_cache`)."""

    enabled: bool = Field(
        default=True,
        description="false: no cache; each task keeps its own limits (a key's effective "
        "budget is its burst times the task count) and refuses replays it saw itself",
    )
    max_data_gb: int = Field(
        default=1,
        ge=1,
        le=5000,
        description="ceiling on stored data (buckets, nonces until their URL expires): "
        "bounds the bill; beyond it writes fail and the API answers 503",
    )
    max_ecpu_per_second: int | None = Field(
        default=None,
        ge=1000,
        le=15_000_000,
        description="ceiling on ElastiCache Processing Units per second (about one per "
        "signed URL, one per bucket lease); unset: the service's own limit",
    )


class ClientsProfile(_Model):
    image: ImageProfile = ImageProfile()
    auth: ClientAuth = ClientAuth.IAM
    api_port: int = Field(default=8000, ge=1024, le=65535)
    api_health_path: str = Field(
        default="/readyz",
        description="load balancer health check (ready: the producer reaches the topic); the "
        "container check is /healthz (liveness)",
    )
    api_allowed_cidrs: tuple[str, ...] = Field(
        default=(), description="who may reach the internal load balancer; default: the VPC"
    )
    certificate_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
        description="ACM certificate: the load balancer listens on HTTPS 443 (else HTTP 80)",
    )
    database_secret_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$",
        description="existing secret whose value is the count database URL (postgresql://); "
        "instead of a database the stack creates (database.kind)",
    )
    require_replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="the services refuse topics with fewer replicas; default: 3 on a "
        "provisioned cluster, unchecked on MSK Serverless (fixed at 3 by AWS)",
    )
    require_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="the services refuse topics with a lower min.insync.replicas; default: 2 "
        "on a provisioned cluster, unchecked on MSK Serverless (fixed at 2 by AWS)",
    )
    api_scaling: ApiScalingProfile = ApiScalingProfile()
    api_limits: SharedLimitsProfile = SharedLimitsProfile()
    api: ServiceProfile = ServiceProfile(command=("serve",))
    aggregator: ServiceProfile = ServiceProfile(command=("aggregate",))


class KafkaApplyProfile(_Model):
    """`adstream kafka apply` of deploy/kafka.yaml as a one-shot task during the deploy."""

    enabled: bool = True
    env: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9-]+$",
        description="overlay deploy/kafka.<env>.yaml merged over deploy/kafka.yaml",
    )
    cpu: Literal[256, 512, 1024] = 256
    memory_mib: int = Field(default=512, ge=512, le=8192)


class AlarmsProfile(_Model):
    disk_used_percent: float = Field(default=85, gt=0, lt=100)
    cpu_percent: float = Field(default=60, gt=0, lt=100)
    email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="subscriber of the alarm topic; without one, synth warns that alarms "
        "reach nobody until someone subscribes to the AlarmTopicArn output",
    )


class SchemaFormat(StrEnum):
    """What the services write (`ADSTREAM_SCHEMA_FORMAT`)."""

    JSON = "json"
    AVRO = "avro"
    JSONSCHEMA = "jsonschema"


class SchemaProfile(_Model):
    """The wire format; avro creates a Glue Schema Registry with AdEvent's schema."""

    format: SchemaFormat = Field(
        default=SchemaFormat.JSON,
        description="json: plain JSON, no registry (nothing created); avro: AdEvent's Avro "
        "schema in a Glue registry the stack creates (the image needs the glue extra)",
    )
    registry: Literal["glue"] = Field(
        default="glue", description="AWS Glue Schema Registry (the only one on AWS)"
    )
    registry_name: str = Field(default="adstream", pattern=r"^[a-zA-Z0-9-_$#.]{1,255}$")

    @property
    def created(self) -> bool:
        return self.format is not SchemaFormat.JSON


class WarehouseProfile(_Model):
    """Raw events into Apache Iceberg on S3 + Glue through an MSK Connect connector."""

    enabled: bool = False
    plugin_zip: str | None = Field(
        default=None,
        description="the custom plugin ZIP `adstream connect plugin-zip` writes (relative to "
        "the checkout or absolute); `cdk deploy` uploads it as an asset",
    )
    commit_interval_ms: int = Field(
        default=300_000, ge=10_000, le=3_600_000, description="Iceberg commit interval"
    )


class PixelMode(StrEnum):
    """The public entry for browsers (`/pixel.gif`, the signed single-event routes)."""

    NONE = "none"
    CLOUDFRONT = "cloudfront"
    PUBLIC_ALB = "public-alb"


_DOMAIN = r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_ACM_ARN = r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]+$"


class PublicPixelsProfile(_Model):
    """The public path for pixels behind AWS WAF; the ingest ALB itself stays internal."""

    mode: PixelMode = Field(
        default=PixelMode.NONE,
        description="none: nothing public; cloudfront: a distribution with a VPC origin to the "
        "internal load balancer, WAF in us-east-1 (a small second stack); public-alb: a "
        "second, internet-facing load balancer in the public subnets with a regional WAF",
    )
    rate_limit_per_5min: int = Field(
        default=2000,
        ge=10,
        le=2_000_000_000,
        description="AWS WAF rate-based rule: requests per client IP per 5 minutes, then 403",
    )
    domain_names: tuple[Annotated[str, Field(pattern=_DOMAIN)], ...] = Field(
        default=(), description="cloudfront: alternate names (CNAMEs); needs certificate_arn"
    )
    certificate_arn: str | None = Field(
        default=None,
        pattern=_ACM_ARN,
        description="cloudfront: an ACM certificate in us-east-1 for domain_names; "
        "public-alb: one in the profile's region (HTTPS 443, else HTTP 80)",
    )
    origin_domain_name: str | None = Field(
        default=None,
        pattern=_DOMAIN,
        description="cloudfront with clients.certificate_arn: the name the internal load "
        "balancer's certificate covers; CloudFront sends it as SNI and checks the certificate",
    )

    def problems(self, profile: Profile) -> list[str]:
        """What the profile's other settings make impossible for this mode."""
        out: list[str] = []
        where = "public_pixels"
        if self.mode is PixelMode.NONE:
            for name in ("domain_names", "certificate_arn", "origin_domain_name"):
                if getattr(self, name):
                    out.append(f"{where}.{name}: set, but {where}.mode is none")
            return out
        cert_region = _arn_region(self.certificate_arn)
        if self.mode is PixelMode.CLOUDFRONT:
            if cert_region not in (None, "us-east-1"):
                out.append(
                    f"{where}.certificate_arn: CloudFront takes ACM certificates from "
                    f"us-east-1 only, not {cert_region}"
                )
            if bool(self.domain_names) != bool(self.certificate_arn):
                out.append(f"{where}.domain_names: and certificate_arn go together")
            internal_https = profile.clients.certificate_arn is not None
            if internal_https and not self.origin_domain_name:
                out.append(
                    f"{where}.origin_domain_name: required: the internal load balancer "
                    "listens on HTTPS (clients.certificate_arn), and CloudFront checks its "
                    "certificate against this name"
                )
            if self.origin_domain_name and not internal_https:
                out.append(
                    f"{where}.origin_domain_name: set, but the internal load balancer "
                    "listens on HTTP (no clients.certificate_arn)"
                )
            return out
        if cert_region not in (None, profile.region):
            out.append(
                f"{where}.certificate_arn: a load balancer takes certificates from its own "
                f"region ({profile.region}), not {cert_region}"
            )
        for name in ("domain_names", "origin_domain_name"):
            if getattr(self, name):
                out.append(f"{where}.{name}: for mode cloudfront only")
        if profile.network.egress is not Egress.NAT:
            out.append(
                f"{where}.mode: public-alb needs public subnets, which only "
                "network.egress nat creates (or use mode cloudfront: no public subnet)"
            )
        if profile.environment is Environment.PROD and not self.certificate_arn:
            out.append(
                f"{where}.certificate_arn: prod profiles refuse a public load balancer on "
                "plain HTTP"
            )
        return out


def _arn_region(arn: str | None) -> str | None:
    return arn.split(":")[3] if arn else None


class Profile(_Model):
    """One deployment: where, how big, and which security modes."""

    name: Annotated[str, Field(pattern=_NAME.pattern)]
    environment: Environment
    region: Annotated[str, Field(pattern=_REGION.pattern)]
    account: Annotated[str | None, Field(pattern=r"^\d{12}$")] = None
    az_count: Literal[2, 3] = Field(
        description="AZs the VPC and brokers span, the region's first ones (Fn::GetAZs)"
    )
    network: NetworkProfile = NetworkProfile()
    cluster: ClusterProfile
    topic: TopicProfile = TopicProfile()
    clients: ClientsProfile = ClientsProfile()
    kafka_apply: KafkaApplyProfile = KafkaApplyProfile()
    alarms: AlarmsProfile = AlarmsProfile()
    database: DatabaseProfile = DatabaseProfile()
    schema_: SchemaProfile = Field(default=SchemaProfile(), alias="schema")
    warehouse: WarehouseProfile = WarehouseProfile()
    public_pixels: PublicPixelsProfile = PublicPixelsProfile()

    @property
    def stack_name(self) -> str:
        return f"adstream-{self.name}"

    @property
    def plaintext(self) -> bool:
        """Whether brokers listen on the unauthenticated plaintext port 9092."""
        return self.cluster.client_broker is not ClientBroker.TLS

    @property
    def serverless(self) -> bool:
        return self.cluster.kind is ClusterKind.SERVERLESS

    @property
    def has_database(self) -> bool:
        """The services get a count database: one the stack creates, or an existing one."""
        return self.database.created or self.clients.database_secret_arn is not None

    def topic_requirements(self) -> tuple[int | None, int | None]:
        """(replication factor, min.insync.replicas) the services demand of their topics.

        A provisioned cluster's defaults are the broker configuration's (3 and 2). MSK
        Serverless fixes both itself (3 and 2) and no client can lower them, so by default
        the services only check that their topics exist there."""
        c = self.clients
        if self.serverless:
            return c.require_replication_factor, c.require_min_insync_replicas
        return c.require_replication_factor or 3, c.require_min_insync_replicas or 2

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = [
            *self._cluster_problems(),
            *self._auth_problems(),
            *self._acl_problems(),
            *self.clients.image.problems(),
            *self._database_problems(),
            *self._scaling_problems(),
            *self._schema_problems(),
            *self._warehouse_problems(),
            *self.public_pixels.problems(self),
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _cluster_problems(self) -> list[str]:
        c, out = self.cluster, list[str]()
        if self.serverless:
            return out
        if c.broker_count % self.az_count:
            out.append(
                f"cluster.broker_count: {c.broker_count} is not a multiple of "
                f"az_count ({self.az_count})"
            )
        if c.broker_count < 3:
            out.append(
                f"cluster.broker_count: {c.broker_count} is too few for "
                "default.replication.factor=3 (need at least 3)"
            )
        if c.ebs_max_volume_gb < c.ebs_volume_gb:
            out.append(
                f"cluster.ebs_max_volume_gb: {c.ebs_max_volume_gb} is below "
                f"cluster.ebs_volume_gb ({c.ebs_volume_gb})"
            )
        return out

    def _auth_problems(self) -> list[str]:
        c, a, out = self.cluster, self.cluster.auth, list[str]()
        if self.serverless:
            for mode in ("scram", "mtls"):
                if getattr(a, mode):
                    out.append(f"cluster.auth.{mode}: MSK Serverless supports IAM auth only")
            if not a.iam:
                out.append("cluster.auth.iam: MSK Serverless requires IAM auth")
            if self.plaintext:
                out.append("cluster.client_broker: MSK Serverless is TLS only")
        if self.plaintext and self.environment is Environment.PROD:
            out.append(
                f"cluster.client_broker: {c.client_broker.value} enables plaintext, "
                "which prod profiles refuse (use TLS)"
            )
        if c.client_broker is ClientBroker.PLAINTEXT:
            for mode in ("scram", "iam", "mtls"):
                if getattr(a, mode):
                    out.append(
                        f"cluster.auth.{mode}: requires TLS in transit, "
                        "but cluster.client_broker is PLAINTEXT"
                    )
        if not (a.iam or a.scram or a.mtls or self.plaintext):
            out.append("cluster.auth: enable at least one of iam, scram, mtls")
        if a.private_ca_arn and not a.mtls:
            out.append("cluster.auth.private_ca_arn: set, but cluster.auth.mtls is false")
        wanted = self.clients.auth
        enabled = {
            ClientAuth.IAM: a.iam,
            ClientAuth.SCRAM: a.scram,
            ClientAuth.PLAINTEXT: self.plaintext,
        }
        if not enabled[wanted]:
            out.append(f"clients.auth: {wanted.value} is not enabled on the cluster")
        return out

    def _acl_problems(self) -> list[str]:
        """SCRAM and mTLS principals are refused without ACLs (allow.everyone.if.no.acl.found
        is false), and on MSK only an IAM principal can create the first ACLs."""
        a, out = self.cluster.auth, list[str]()
        if self.kafka_apply.enabled:
            if not a.iam:
                out.append(
                    "kafka_apply.enabled: the deploy-time apply connects as an IAM principal "
                    "(MSK has no super.users; only IAM can create the first ACLs), but "
                    "cluster.auth.iam is false"
                )
            return out
        for mode in ("scram", "mtls"):
            if getattr(a, mode):
                out.append(
                    f"cluster.auth.{mode}: with allow.everyone.if.no.acl.found=false every "
                    f"{mode} request is refused until ACLs exist, and kafka_apply.enabled is "
                    "false: enable the deploy-time apply of deploy/kafka.yaml"
                )
        return out

    def _database_problems(self) -> list[str]:
        d, c, out = self.database, self.clients, list[str]()
        if c.aggregator.desired_count and not self.has_database:
            out.append(
                "clients.aggregator.desired_count: a deployed aggregator needs a count "
                "database: set database.kind (rds or aurora-serverless) or "
                "clients.database_secret_arn (a PostgreSQL URL); without one it would count "
                "into SQLite on the task's ephemeral disk (or set desired_count: 0)"
            )
        if d.created and c.database_secret_arn:
            out.append(
                f"clients.database_secret_arn: set, but database.kind is {d.kind.value}: "
                "choose the database the stack creates or an existing one, not both"
            )
        if d.created and self.environment is Environment.PROD:
            if not d.deletion_protection:
                out.append("database.deletion_protection: prod profiles require it")
            if d.backup_retention_days < 7:
                out.append("database.backup_retention_days: prod profiles keep at least 7")
            if not d.multi_az:
                out.append("database.multi_az: prod profiles require a second AZ")
        if d.max_allocated_storage_gb < d.allocated_storage_gb:
            out.append("database.max_allocated_storage_gb: below allocated_storage_gb")
        if d.max_capacity_acu < d.min_capacity_acu:
            out.append("database.max_capacity_acu: below min_capacity_acu")
        return out

    def _scaling_problems(self) -> list[str]:
        s, desired = self.clients.api_scaling, self.clients.api.desired_count
        if s.max_count < s.min_count:
            return ["clients.api_scaling.max_count: below min_count"]
        if not s.min_count <= desired <= s.max_count:
            return [
                f"clients.api.desired_count: {desired} is outside api_scaling's "
                f"{s.min_count}..{s.max_count}"
            ]
        return []

    def _schema_problems(self) -> list[str]:
        if self.schema_.format is SchemaFormat.JSONSCHEMA:
            return [
                "schema.format: jsonschema is not provisioned by the stack (its Glue schema "
                "is AdEvent's Avro definition); use avro, or json for no registry"
            ]
        return []

    def _warehouse_problems(self) -> list[str]:
        w, out = self.warehouse, list[str]()
        if not w.enabled:
            return out
        if not self.cluster.auth.iam:
            out.append(
                "warehouse.enabled: MSK Connect authenticates to the cluster with IAM only, "
                "but cluster.auth.iam is false"
            )
        if not self.kafka_apply.enabled:
            out.append(
                "warehouse.enabled: the connector's topics (ad-events, "
                "adstream-iceberg-control) come from the deploy-time apply of "
                "deploy/kafka.yaml, but kafka_apply.enabled is false"
            )
        if self.topic.name != "ad-events":
            out.append(
                f"warehouse.enabled: the connector reads ad-events, not topic.name "
                f"{self.topic.name!r}"
            )
        if self.schema_.created:
            out.append(
                f"warehouse.enabled: the connector reads schemaless JSON values (Kafka's "
                f"JsonConverter), but schema.format is {self.schema_.format.value}: its "
                "Glue-framed records would all fail conversion (and errors.tolerance=all "
                "skips them); use schema.format json with the warehouse"
            )
        if not w.plugin_zip:
            out.append(
                "warehouse.plugin_zip: required when the warehouse is enabled; build it with "
                "`adstream connect plugin-zip` and give its path"
            )
        return out

    def plugin_zip_path(self) -> Path | None:
        """The warehouse plugin ZIP, relative paths taken from the checkout."""
        if not (self.warehouse.enabled and self.warehouse.plugin_zip):
            return None
        return PROJECT_ROOT / self.warehouse.plugin_zip


def resolve_profile_path(name_or_path: str) -> Path:
    """A profile name (`dev` → `infra/profiles/dev.yaml`) or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.parent != Path():
        return candidate
    return PROFILE_DIR / f"{name_or_path}.yaml"


def _format(error: ValidationError, source: str) -> str:
    lines = [f"invalid profile {source}:"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        for line in message.splitlines():
            lines.append(f"  - {where}: {line}" if where else f"  - {line}")
    return "\n".join(lines)


def parse_profile(data: object, source: str = "<profile>") -> Profile:
    """Validate already-parsed YAML; raises ProfileError naming each bad setting."""
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_format(exc, source)) from None


def load_profile(name_or_path: str) -> Profile:
    """Load and validate a profile by name or path; raises ProfileError."""
    path = resolve_profile_path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise ProfileError(f"profile {name_or_path!r}: no file {path} (known profiles: {known})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {path}: not valid YAML: {exc}") from None
    return parse_profile(data, str(path))
