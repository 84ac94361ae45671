"""Step 6 of the seed: the Kafka clients, as ECS Fargate services in the private subnets.

The ingest API (producer) sits behind an *internal* Application Load Balancer; the aggregator
(consumer) has no inbound traffic. Both run in the client security group, the only one the
brokers admit, with the IAM task roles from `iam.py`. Kafka settings arrive as environment
variables named as `adstream.kafka` reads them (`ADSTREAM_KAFKA_*`); SCRAM credentials and
the count database's URL arrive as ECS secrets from Secrets Manager, never as plain
environment.

The image is built from the profile's context by `cdk deploy` (an asset tagged by its content
hash) or taken from ECR at an immutable tag or digest: either way a new build is a new task
definition, so it rolls out. The load balancer listens on HTTPS with the profile's ACM
certificate (plain HTTP only without one), answers `/metrics` itself with 404, and the
tasks' API port admits the monitoring security group, so Prometheus scrapes each task
directly and the metrics never pass the load balancer.
"""

from __future__ import annotations

import re

from aws_cdk import CfnElement, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adstream.infra.api_keys import ApiKeySecrets
from adstream.infra.checks import acknowledge
from adstream.infra.database import LIBPQ_URL, DatabaseConnection
from adstream.infra.limits_cache import LimitsConnection
from adstream.infra.log_bucket import access_log_bucket
from adstream.infra.profiles import (
    PROJECT_ROOT,
    ClientAuth,
    ImageProfile,
    ImageSource,
    Profile,
    ProfileError,
    ServiceProfile,
)

HTTP_PORT = 80
HTTPS_PORT = 443
ENTRY_POINT = ("adstream",)
"""The image's command; profiles give its arguments (`serve`, `aggregate`, `kafka apply`)."""
METRICS_PATHS = ("/metrics", "/metrics/*")
"""Answered by the load balancer with 404: Prometheus scrapes the tasks from its own group."""
DATABASE_ENV = {"api": "ADSTREAM_API_DB_URL", "aggregator": "ADSTREAM_AGGREGATE_DB"}
"""Where `adstream serve` and `adstream aggregate` read the count database's URL."""
API_USER, AGGREGATOR_USER = "adstream-api", "adstream-aggregator"
"""The services' Kafka principals (SCRAM user names), as deploy/kafka.yaml grants them."""
HEALTH_CHECK_START = Duration.seconds(60)
"""Grace for the container check: the producer's first metadata round trip (TLS, IAM)."""


LIVENESS_PATH = "/healthz"
"""The container check: 503 only when the worker's producer failed fatally, so ECS replaces
the task. Not /readyz, which the load balancer checks: during a Kafka outage every task is
unready, and replacing them all would not bring Kafka back."""


def health_check_command(port: int, path: str) -> list[str]:
    """The container's own probe: the image has Python but no curl."""
    script = (
        "import sys,urllib.request;"
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}{path}',"
        "timeout=4).status==200 else 1)"
    )
    return ["CMD", "python", "-c", script]


def deployment_environment(profile: Profile) -> dict[str, str]:
    """`adstream.deployment`'s settings: deployed, and what the topics must promise."""
    env = {"ADSTREAM_DEPLOYED": "true"}
    replication, min_insync = profile.topic_requirements()
    if replication is not None:
        env["ADSTREAM_REQUIRE_REPLICATION_FACTOR"] = str(replication)
    if min_insync is not None:
        env["ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS"] = str(min_insync)
    return env


class ImageContextError(ProfileError):
    """The profile's image build context or file is missing."""


def container_image(image: ImageProfile, scope: Construct) -> ecs.ContainerImage:
    """The task image: a content-hashed asset, or ECR at an immutable tag or digest."""
    if image.source is ImageSource.ECR:
        assert image.repository, "profile validation requires it"
        assert image.tag, "profile validation requires it"
        repository = ecr.Repository.from_repository_name(scope, "Repository", image.repository)
        return ecs.ContainerImage.from_ecr_repository(repository, image.tag)
    context = PROJECT_ROOT / image.context
    if not (context / image.file).is_file():
        raise ImageContextError(
            f"clients.image: no {image.file} in the build context {context}; prepare it "
            "(`make image-context` writes build/image) or use source ecr with an immutable tag"
        )
    return ecs.ContainerImage.from_asset(str(context), file=image.file)


EXTRAS_ARG = re.compile(r"^ARG ADSTREAM_IMAGE_EXTRAS=(\S*)\s*$", re.MULTILINE)
"""The Containerfile's extras ARG, whose default build-image.sh --context-only sets."""


def image_extras(profile: Profile) -> set[str]:
    """The package extras the services need in their image (glue for the Glue registry)."""
    return {"glue"} if profile.schema_.created else set()


def check_image_extras(profile: Profile) -> None:
    """A prepared build context must install the extras the profile needs: without the glue
    extra every task would stop at start (`ADSTREAM_SCHEMA_REGISTRY=glue needs the glue
    extra`). An ECR image cannot be inspected at synth time; it is the deployer's to build."""
    image, needed = profile.clients.image, image_extras(profile)
    if image.source is not ImageSource.ASSET or not needed:
        return
    containerfile = PROJECT_ROOT / image.context / image.file
    if not containerfile.is_file():
        return  # container_image() names the missing context
    found = EXTRAS_ARG.search(containerfile.read_text(encoding="utf-8"))
    built = set(found.group(1).split(",")) - {""} if found else set()
    missing = sorted(needed - built)
    if missing:
        joined = ",".join(sorted(needed | built))
        raise ImageContextError(
            f"schema.format: {profile.schema_.format.value} needs the image extra(s) "
            f"{missing}, but the build context {containerfile.parent} was prepared without "
            f"them; rebuild it with `ADSTREAM_IMAGE_EXTRAS={joined} make image-context`"
        )


def kafka_environment(
    profile: Profile, brokers: str, client_id: str, auth: ClientAuth | None = None
) -> dict[str, str]:
    """Connection settings (non-secret only); `auth` defaults to the services' mode."""
    auth = auth or profile.clients.auth
    env = {
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS": brokers,
        "ADSTREAM_KAFKA_SECURITY": auth.value,
        "ADSTREAM_KAFKA_CLIENT_ID": client_id,
    }
    if auth is ClientAuth.IAM:
        env["ADSTREAM_KAFKA_IAM_REGION"] = profile.region
    return env


class ClientServices(Construct):
    """ECS cluster, the two Fargate services and the internal load balancer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        client_sg: ec2.ISecurityGroup,
        monitoring_sg: ec2.ISecurityGroup,
        producer_role: iam.IRole,
        aggregator_role: iam.IRole,
        brokers: str,
        scram_secrets: dict[str, secretsmanager.Secret],
        database: DatabaseConnection | None = None,
        limits: LimitsConnection | None = None,
        extra_environment: dict[str, str] | None = None,
    ) -> None:
        """`database`: the database the stack created (else the profile's existing one);
        `limits`: the API's shared rate-limit cache (else each task limits on its own);
        `extra_environment`: for both services (e.g. the schema registry's settings)."""
        super().__init__(scope, construct_id)
        self._profile, self._scram, self._created_database = profile, scram_secrets, database
        self._limits = limits
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        check_image_extras(profile)
        self.image = container_image(profile.clients.image, self)
        self._vpc, self._subnets, self._sg = vpc, subnets, client_sg
        self._database_url = (
            secretsmanager.Secret.from_secret_complete_arn(
                self, "Database", profile.clients.database_secret_arn
            )
            if profile.clients.database_secret_arn
            else None
        )

        # Names as `adstream serve` and `adstream aggregate` read them.
        api_env = kafka_environment(profile, brokers, "adstream-ingest") | {
            **deployment_environment(profile),
            "ADSTREAM_API_TOPIC": profile.topic.name,
            "ADSTREAM_API_HOST": "0.0.0.0",  # noqa: S104 - inside the task, behind the ALB
            "ADSTREAM_API_PORT": str(profile.clients.api_port),
            # API keys required (README "Callers, keys and signed URLs"); the pepper and the
            # key document come from `self.api_keys` as task secrets.
            "ADSTREAM_API_AUTH": "keys",
            # Rate limits and nonces shared by all API tasks (limits_cache.py).
            **(limits.environment() if limits else {}),
            **(extra_environment or {}),
        }
        self.api_keys = ApiKeySecrets(self, "ApiKeys", stack_name=profile.cluster.name)
        self.api = self._service("Api", profile.clients.api, producer_role, api_env, API_USER)
        agg_env = kafka_environment(profile, brokers, "adstream-aggregator") | {
            **deployment_environment(profile),
            "ADSTREAM_AGGREGATE_TOPIC": profile.topic.name,
            "ADSTREAM_AGGREGATE_GROUP": profile.topic.consumer_group,
            **(extra_environment or {}),
        }
        self.aggregator = self._service(
            "Aggregator", profile.clients.aggregator, aggregator_role, agg_env, AGGREGATOR_USER
        )
        self.load_balancer = self._load_balancer()
        self._scale_api()
        client_sg.add_ingress_rule(
            monitoring_sg,
            ec2.Port.tcp(profile.clients.api_port),
            "Prometheus scrapes the API tasks' /metrics (never through the load balancer)",
        )

    def _service(
        self,
        name: str,
        spec: ServiceProfile,
        role: iam.IRole,
        environment: dict[str, str],
        scram_user: str,
    ) -> ecs.FargateService:
        task = ecs.FargateTaskDefinition(
            self, f"{name}Task", cpu=spec.cpu, memory_limit_mib=spec.memory_mib, task_role=role
        )
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        is_api = name == "Api"
        clients = self._profile.clients
        task.add_container(
            name.lower(),
            image=self.image,
            entry_point=list(ENTRY_POINT),
            command=list(spec.command),
            environment=environment | self._database_environment(name.lower()),
            secrets=self._scram_secrets(scram_user)
            | self._database_secret(name.lower())
            | (self.api_keys.task_secrets() if is_api else {})
            | (self._limits.secrets() if is_api and self._limits else {}),
            health_check=(
                ecs.HealthCheck(
                    command=health_check_command(clients.api_port, LIVENESS_PATH),
                    interval=Duration.seconds(15),
                    timeout=Duration.seconds(5),
                    retries=3,
                    start_period=HEALTH_CHECK_START,
                )
                if is_api
                else None
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name.lower(), log_group=log_group),
            port_mappings=(
                [ecs.PortMapping(container_port=self._profile.clients.api_port)] if is_api else []
            ),
        )
        acknowledge(
            task,
            "AwsSolutions-ECS2",
            "only non-secret Kafka connection settings are environment variables; SCRAM "
            "credentials are injected from Secrets Manager",
        )
        acknowledge(
            task,
            "AwsSolutions-IAM5[Resource::*]",
            "the execution role's ecr:GetAuthorizationToken cannot be scoped to a resource",
        )
        return ecs.FargateService(
            self,
            name,
            cluster=self.cluster,
            task_definition=task,
            desired_count=spec.desired_count,
            security_groups=[self._sg]
            + ([self._limits.security_group] if is_api and self._limits else []),
            vpc_subnets=self._subnets,
            assign_public_ip=False,
            min_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )

    def _database_environment(self, service: str) -> dict[str, str]:
        """The created database: a bare URL that libpq completes from the PG* secrets."""
        if self._created_database is None:
            return {}
        return {DATABASE_ENV[service]: LIBPQ_URL, **self._created_database.environment()}

    def _database_secret(self, service: str) -> dict[str, ecs.Secret]:
        if self._created_database is not None:
            return self._created_database.secrets()
        if self._database_url is None:
            return {}
        return {DATABASE_ENV[service]: ecs.Secret.from_secrets_manager(self._database_url)}

    def _scale_api(self) -> None:
        """Between the profile's bounds, on ALB requests per task and on CPU."""
        scaling = self._profile.clients.api_scaling
        target = self.api.auto_scale_task_count(
            min_capacity=scaling.min_count, max_capacity=scaling.max_count
        )
        target.scale_on_request_count(
            "Requests",
            requests_per_target=scaling.requests_per_target,
            target_group=self._target_group,
        )
        target.scale_on_cpu_utilization("Cpu", target_utilization_percent=scaling.cpu_percent)

    def _scram_secrets(self, user: str) -> dict[str, ecs.Secret]:
        if self._profile.clients.auth is not ClientAuth.SCRAM:
            return {}
        secret = self._scram[user]
        return {
            "ADSTREAM_KAFKA_SCRAM_USERNAME": ecs.Secret.from_secrets_manager(secret, "username"),
            "ADSTREAM_KAFKA_SCRAM_PASSWORD": ecs.Secret.from_secrets_manager(secret, "password"),
        }

    def _load_balancer(self) -> elbv2.ApplicationLoadBalancer:
        clients = self._profile.clients
        lb_sg = ec2.SecurityGroup(
            self,
            "LoadBalancerSg",
            vpc=self._vpc,
            description="internal load balancer of the ingest API",
            allow_all_outbound=False,
        )
        https = clients.certificate_arn is not None
        self.scheme = "https" if https else "http"
        port = HTTPS_PORT if https else HTTP_PORT
        for cidr in clients.api_allowed_cidrs or (self._profile.network.cidr,):
            lb_sg.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), "ingest API")
        lb = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self._vpc,
            internet_facing=False,
            vpc_subnets=self._subnets,
            security_group=lb_sg,
            drop_invalid_header_fields=True,
        )
        lb.log_access_logs(
            access_log_bucket(self, receives="the load balancer's access logs"),
            prefix="ingest-alb",
        )
        if clients.certificate_arn is not None:
            listener = lb.add_listener(
                "Https",
                port=HTTPS_PORT,
                open=False,
                certificates=[elbv2.ListenerCertificate.from_arn(clients.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            )
        else:
            listener = lb.add_listener("Http", port=HTTP_PORT, open=False)
        listener.add_action(
            "NoMetrics",
            priority=1,
            conditions=[elbv2.ListenerCondition.path_patterns(list(METRICS_PATHS))],
            action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="not found"
            ),
        )
        target_group = listener.add_targets(
            "Api",
            port=clients.api_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.api],
            health_check=elbv2.HealthCheck(
                path=clients.api_health_path, interval=Duration.seconds(15)
            ),
            deregistration_delay=Duration.seconds(30),
        )
        self._target_group = target_group
        self._depend_without_target_group(listener, target_group)
        return lb

    def _depend_without_target_group(
        self, listener: elbv2.ApplicationListener, target_group: elbv2.ApplicationTargetGroup
    ) -> None:
        """Keep the API service's DependsOn (listener, task role and policy) minus the target
        group, which its `TargetGroupArn: Ref` already orders; cfn-lint flags it (W3005)."""
        role = self.api.task_definition.task_role
        keep = [listener.node.default_child, role.node.default_child]
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            keep.insert(1, policy.node.default_child)
        assert target_group.node.default_child is not None
        self._api_depends = [item for item in keep if isinstance(item, CfnElement)]
        self._override_api_depends()

    def _override_api_depends(self) -> None:
        service = self.api.node.default_child
        assert isinstance(service, CfnResource)
        stack = Stack.of(self)
        service.add_override("DependsOn", [stack.get_logical_id(e) for e in self._api_depends])

    def start_after(self, resource: CfnElement) -> None:
        """Neither service starts before `resource` exists (e.g. the deploy-time apply)."""
        self.aggregator.node.add_dependency(resource)
        self._api_depends.append(resource)
        self._override_api_depends()
