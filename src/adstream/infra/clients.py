"""Step 6 of the seed: the Kafka clients, as ECS Fargate services in the private subnets.

The ingest API (producer) sits behind an *internal* Application Load Balancer; the aggregator
(consumer) has no inbound traffic. Both run in the client security group, the only one the
brokers admit, with the IAM task roles from `iam.py`. Kafka settings arrive as environment
variables named as `adstream.kafka` reads them (`ADSTREAM_KAFKA_*`); SCRAM credentials
arrive as ECS secrets from Secrets Manager, never as plain environment.
"""

from __future__ import annotations

from aws_cdk import CfnElement, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.profiles import ClientAuth, Profile, ServiceProfile

LISTENER_PORT = 80


def kafka_environment(profile: Profile, brokers: str, client_id: str) -> dict[str, str]:
    """Connection settings shared by both services (non-secret only)."""
    env = {
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS": brokers,
        "ADSTREAM_KAFKA_SECURITY": profile.clients.auth.value,
        "ADSTREAM_KAFKA_CLIENT_ID": client_id,
    }
    if profile.clients.auth is ClientAuth.IAM:
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
        producer_role: iam.IRole,
        aggregator_role: iam.IRole,
        brokers: str,
        scram_secrets: dict[str, secretsmanager.Secret],
    ) -> None:
        super().__init__(scope, construct_id)
        self._profile, self._scram = profile, scram_secrets
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        repository = ecr.Repository.from_repository_name(
            self, "Repository", profile.clients.image_repository
        )
        self._image = ecs.ContainerImage.from_ecr_repository(repository, profile.clients.image_tag)
        self._vpc, self._subnets, self._sg = vpc, subnets, client_sg

        # Names as `adstream serve` and `adstream aggregate` read them.
        api_env = kafka_environment(profile, brokers, "adstream-ingest") | {
            "ADSTREAM_API_TOPIC": profile.topic.name,
            "ADSTREAM_API_HOST": "0.0.0.0",  # noqa: S104 - inside the task, behind the ALB
            "ADSTREAM_API_PORT": str(profile.clients.api_port),
            # API keys required (README "Callers, keys and signed URLs"): the task also needs
            # the ECS secrets ADSTREAM_API_PEPPER and ADSTREAM_API_KEYS_JSON, not wired yet.
            "ADSTREAM_API_AUTH": "keys",
        }
        self.api = self._service("Api", profile.clients.api, producer_role, api_env, "ingest")
        agg_env = kafka_environment(profile, brokers, "adstream-aggregator") | {
            "ADSTREAM_AGGREGATE_TOPIC": profile.topic.name,
            "ADSTREAM_AGGREGATE_GROUP": profile.topic.consumer_group,
        }
        self.aggregator = self._service(
            "Aggregator", profile.clients.aggregator, aggregator_role, agg_env, "aggregator"
        )
        self.load_balancer = self._load_balancer()

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
        task.add_container(
            name.lower(),
            image=self._image,
            command=list(spec.command),
            environment=environment,
            secrets=self._scram_secrets(scram_user),
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
            security_groups=[self._sg],
            vpc_subnets=self._subnets,
            assign_public_ip=False,
            min_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )

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
        for cidr in clients.api_allowed_cidrs or (self._profile.network.cidr,):
            lb_sg.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(LISTENER_PORT), "ingest API")
        lb = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self._vpc,
            internet_facing=False,
            vpc_subnets=self._subnets,
            security_group=lb_sg,
            drop_invalid_header_fields=True,
        )
        lb.log_access_logs(self._access_log_bucket(), prefix="ingest-alb")
        listener = lb.add_listener("Http", port=LISTENER_PORT, open=False)
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
        self._depend_without_target_group(listener, target_group)
        return lb

    def _depend_without_target_group(
        self, listener: elbv2.ApplicationListener, target_group: elbv2.ApplicationTargetGroup
    ) -> None:
        """Keep the API service's DependsOn (listener, task role and policy) minus the target
        group, which its `TargetGroupArn: Ref` already orders; cfn-lint flags it (W3005)."""
        service = self.api.node.default_child
        role = self.api.task_definition.task_role
        keep = [listener.node.default_child, role.node.default_child]
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            keep.insert(1, policy.node.default_child)
        assert isinstance(service, CfnResource)
        assert target_group.node.default_child is not None
        stack = Stack.of(self)
        service.add_override(
            "DependsOn",
            [stack.get_logical_id(item) for item in keep if isinstance(item, CfnElement)],
        )

    def _access_log_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "this bucket receives the load balancer's access logs; logging access to the log "
            "bucket itself would need yet another bucket",
        )
        return bucket
