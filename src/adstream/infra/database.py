"""The count database: PostgreSQL for the aggregator (writes) and the API's stats routes (reads).

RDS for PostgreSQL (one instance, Multi-AZ optional) or Aurora PostgreSQL Serverless v2, per
profile. Private subnets only; its security group admits 5432 from the client group and
from the password rotation function's own group, nothing else. Storage is encrypted with a
customer-managed key; the master credentials are a Secrets Manager secret (rotated by the
single-user rotation function), handed to the tasks as ECS secrets.

The tasks get the secret's JSON fields as libpq's own variables (``PGHOST``, ``PGUSER``,
``PGPASSWORD``, ``PGDATABASE``; ``PGPORT`` is the endpoint's port, a plain setting rather
than the secret's numeric field) and ``PGSSLMODE=verify-full``; their database
URL is the bare ``postgresql://``, which libpq completes from them (the image sets
``PGSSLROOTCERT`` to the RDS CA bundle). So no password is ever part of a URL, and no code
has to assemble one. A task reads the secret when it starts: a rotation does not end open
sessions, and a task whose connection breaks exits and is replaced with the new password.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.profiles import DatabaseKind, Profile

POSTGRES_PORT = 5432
DATABASE_NAME = "adstream"
MASTER_USER = "adstream"
LIBPQ_URL = "postgresql://"
"""The services' database URL: libpq takes every parameter from the PG* variables."""
LIBPQ_SECRET_FIELDS = {
    "PGHOST": "host",
    "PGUSER": "username",
    "PGPASSWORD": "password",
    "PGDATABASE": "dbname",
}
"""libpq variable → field of the RDS-managed secret's JSON."""
LIBPQ_ENVIRONMENT = {"PGSSLMODE": "verify-full"}
"""TLS with the server's certificate and host name verified (CA bundle: PGSSLROOTCERT)."""
RDS_POSTGRES = rds.PostgresEngineVersion.VER_17_5
AURORA_POSTGRES = rds.AuroraPostgresEngineVersion.VER_17_5


@dataclass(frozen=True)
class DatabaseConnection:
    """What a task needs to reach the database the stack created."""

    secret: secretsmanager.ISecret
    port: str

    def environment(self) -> dict[str, str]:
        """Plain settings: TLS verified against the image's RDS CA bundle, the port."""
        return {**LIBPQ_ENVIRONMENT, "PGPORT": self.port}

    def secrets(self) -> dict[str, ecs.Secret]:
        """The ECS secrets that give a task the credentials and the host."""
        return {
            env: ecs.Secret.from_secrets_manager(self.secret, field)
            for env, field in LIBPQ_SECRET_FIELDS.items()
        }


class CountDatabase(Construct):
    """The database, its security group, key, secret and rotation; `secret` for the tasks."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        client_sg: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        spec = profile.database
        self.key = kms.Key(
            self,
            "Key",
            description=f"storage of the {profile.stack_name} count database",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "Sg",
            vpc=vpc,
            description="count database: PostgreSQL from the clients and the rotation only",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(
            client_sg, ec2.Port.tcp(POSTGRES_PORT), "PostgreSQL from the Kafka clients"
        )
        rotation_sg = ec2.SecurityGroup(
            self,
            "RotationSg",
            vpc=vpc,
            description="password rotation function of the count database",
            allow_all_outbound=True,  # Secrets Manager's API (443) and the database (5432)
        )
        credentials = rds.Credentials.from_generated_secret(MASTER_USER)
        removal = RemovalPolicy.SNAPSHOT
        common = {
            "vpc": vpc,
            "vpc_subnets": subnets,
            "security_groups": [self.security_group],
            "credentials": credentials,
            "storage_encrypted": True,
            "storage_encryption_key": self.key,
            "deletion_protection": spec.deletion_protection,
            "removal_policy": removal,
            "cloudwatch_logs_exports": ["postgresql"],
        }
        database: rds.DatabaseInstance | rds.DatabaseCluster
        if spec.kind is DatabaseKind.AURORA_SERVERLESS:
            engine = rds.DatabaseClusterEngine.aurora_postgres(version=AURORA_POSTGRES)
            readers = (
                [rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)]
                if spec.multi_az
                else []
            )
            database = rds.DatabaseCluster(
                self,
                "Cluster",
                engine=engine,
                writer=rds.ClusterInstance.serverless_v2("Writer"),
                readers=readers,
                serverless_v2_min_capacity=spec.min_capacity_acu,
                serverless_v2_max_capacity=spec.max_capacity_acu,
                default_database_name=DATABASE_NAME,
                parameter_group=self._force_ssl(engine),
                backup=rds.BackupProps(retention=Duration.days(spec.backup_retention_days)),
                **common,  # type: ignore[arg-type]
            )
            self.endpoint = database.cluster_endpoint
        else:
            engine_i = rds.DatabaseInstanceEngine.postgres(version=RDS_POSTGRES)
            database = rds.DatabaseInstance(
                self,
                "Instance",
                engine=engine_i,
                instance_type=ec2.InstanceType(spec.instance_type),
                multi_az=spec.multi_az,
                allocated_storage=spec.allocated_storage_gb,
                max_allocated_storage=spec.max_allocated_storage_gb,
                storage_type=rds.StorageType.GP3,
                database_name=DATABASE_NAME,
                parameter_group=self._force_ssl(engine_i),
                backup_retention=Duration.days(spec.backup_retention_days),
                publicly_accessible=False,
                auto_minor_version_upgrade=True,
                **common,  # type: ignore[arg-type]
            )
            self.endpoint = database.instance_endpoint
        self.database = database
        assert database.secret is not None, "generated credentials make a secret"
        self.secret: secretsmanager.ISecret = database.secret
        generated = database.node.try_find_child("Secret")
        if isinstance(generated, secretsmanager.Secret):
            # Kept with the final snapshot: its password is the one a restore comes up with.
            generated.apply_removal_policy(RemovalPolicy.RETAIN)
        self.connection = DatabaseConnection(self.secret, Token.as_string(self.endpoint.port))
        # Also admits the rotation group on the database's port (a rule of our own besides
        # would be a duplicate, which EC2 refuses at deploy time).
        self.rotation = database.add_rotation_single_user(
            automatically_after=Duration.days(spec.rotation_days),
            vpc_subnets=subnets,
            security_group=rotation_sg,
        )
        self._acknowledge(database, profile)

    def _force_ssl(self, engine: rds.IEngine) -> rds.ParameterGroup:
        """The server refuses unencrypted connections (the tasks use verify-full anyway)."""
        return rds.ParameterGroup(
            self, "Parameters", engine=engine, parameters={"rds.force_ssl": "1"}
        )

    def _acknowledge(self, database: Construct, profile: Profile) -> None:
        spec = profile.database
        acknowledge(
            database,
            "AwsSolutions-RDS11",
            "the default port 5432 is reachable only from the client and rotation security "
            "groups; a different port would hide nothing from them",
        )
        acknowledge(
            database,
            "AwsSolutions-RDS6",
            "the services authenticate with the rotated password of the Secrets Manager "
            "secret; IAM database tokens expire every 15 minutes, which the services' one "
            "long-lived connection does not handle",
        )
        if not spec.multi_az:
            acknowledge(
                database,
                "AwsSolutions-RDS3",
                f"{profile.name} is a {profile.environment.value} profile with a single-AZ "
                "database to halve its cost; prod profiles require multi_az",
            )
        if not spec.deletion_protection:
            acknowledge(
                database,
                "AwsSolutions-RDS10",
                f"{profile.name} is a {profile.environment.value} profile; prod profiles "
                "require deletion protection",
            )
