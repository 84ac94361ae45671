"""How clients find the brokers: `kafka:GetBootstrapBrokers`, called once at deploy time.

CloudFormation exposes no bootstrap-broker attribute on MSK clusters, so a CDK
AwsCustomResource asks the MSK API after the cluster exists and hands the string (for the
services' auth mode) to the task definitions and to a stack output.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.profiles import ClientAuth

BROKER_STRING_FIELD = {
    ClientAuth.IAM: "BootstrapBrokerStringSaslIam",
    ClientAuth.SCRAM: "BootstrapBrokerStringSaslScram",
    ClientAuth.PLAINTEXT: "BootstrapBrokerString",
}
"""GetBootstrapBrokers response field per client auth mode."""

_SINGLETON_ID = "AWS679f53fac002430cb0da5b7982bd2287"
"""Construct id of the Lambda that CDK shares between all AwsCustomResources of a stack."""


class BootstrapBrokers(Construct):
    """`brokers`: the comma-separated `host:port` list for `auth`, resolved at deploy time."""

    def __init__(
        self, scope: Construct, construct_id: str, *, cluster_arn: str, auth: ClientAuth
    ) -> None:
        super().__init__(scope, construct_id)
        field = BROKER_STRING_FIELD[auth]
        call = cr.AwsSdkCall(
            service="Kafka",
            action="getBootstrapBrokers",
            parameters={"ClusterArn": cluster_arn},
            physical_resource_id=cr.PhysicalResourceId.of(cluster_arn),
            output_paths=[field],
        )
        lookup = cr.AwsCustomResource(
            self,
            "Lookup",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["kafka:GetBootstrapBrokers"], resources=[cluster_arn]
                    )
                ]
            ),
        )
        self.brokers = lookup.get_response_field(field)
        self._acknowledge_provider(Stack.of(self))

    @staticmethod
    def _acknowledge_provider(stack: Stack) -> None:
        provider = stack.node.try_find_child(_SINGLETON_ID)
        if provider is None:
            return
        acknowledge(
            provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's AwsCustomResource provider only needs to write its own logs; the managed "
            "basic-execution policy grants exactly that",
        )
        function = provider.node.default_child
        if isinstance(function, CfnResource):
            # CDK adds DependsOn on the role although `Role: Fn::GetAtt` already orders them;
            # cfn-lint flags that (W3005).
            function.add_deletion_override("DependsOn")
