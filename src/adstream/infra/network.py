"""Step 1 of the seed: the VPC. Brokers and clients live in private subnets only.

Egress is either one NAT gateway per AZ (prod: services can reach anything they need) or
interface endpoints without any internet path (dev: cheaper than NATs, nothing leaves the VPC).
Flow logs go to CloudWatch so rejected connections to the brokers can be investigated.
The VPC's default security group loses its allow-all rules (CDK's custom resource), so
anything launched without a group of ours reaches nothing.
"""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from adstream.infra.profiles import Egress, Profile
from adstream.infra.retention import retention_days

_RESTRICT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
"""Construct id of CDK's singleton provider that empties the default security group."""

_INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}
"""What Fargate tasks need without NAT: image pulls, logs, SCRAM secrets, their keys, STS."""


class Network(Construct):
    """VPC over the profile's AZs with private subnets and flow logs."""

    def __init__(self, scope: Construct, construct_id: str, *, profile: Profile) -> None:
        super().__init__(scope, construct_id)
        nat = profile.network.egress is Egress.NAT
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if nat else ec2.SubnetType.PRIVATE_ISOLATED
        )
        subnets = [ec2.SubnetConfiguration(name="private", subnet_type=private_type, cidr_mask=20)]
        if nat:
            subnets.insert(
                0,
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(profile.network.cidr),
            max_azs=profile.az_count,
            nat_gateways=profile.az_count if nat else 0,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        self._drop_redundant_provider_dependency()
        self.private_subnets = ec2.SubnetSelection(subnet_type=private_type)
        self._flow_logs(profile)
        if not nat:
            self._endpoints(profile)

    def _drop_redundant_provider_dependency(self) -> None:
        """CDK's default-SG handler has DependsOn its role although `Role: Fn::GetAtt` already
        orders them; cfn-lint flags that (W3005)."""
        provider = Stack.of(self).node.try_find_child(_RESTRICT_SG_PROVIDER)
        handler = provider.node.try_find_child("Handler") if provider else None
        if isinstance(handler, CfnResource):
            handler.add_deletion_override("DependsOn")

    def _flow_logs(self, profile: Profile) -> None:
        group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention_days(profile.network.flow_log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    def _endpoints(self, profile: Profile) -> None:
        """S3 gateway plus interface endpoints, reachable on 443 from inside the VPC only."""
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        group = ec2.SecurityGroup(
            self,
            "EndpointsSg",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from inside the VPC",
            allow_all_outbound=False,
        )
        # The profile's literal CIDR, not the VPC's CidrBlock attribute: same value, but
        # checkable at synth time (cdk-nag cannot evaluate the attribute).
        group.add_ingress_rule(
            ec2.Peer.ipv4(profile.network.cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        endpoints = dict(_INTERFACE_ENDPOINTS)
        if profile.schema_.created or profile.warehouse.enabled:
            # The schema registry's and the Iceberg catalog's API.
            endpoints["Glue"] = ec2.InterfaceVpcEndpointAwsService.GLUE
        for name, service in endpoints.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.private_subnets,
                private_dns_enabled=True,
                security_groups=[group],
                open=False,
            )
