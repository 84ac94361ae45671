"""How clients find the brokers: `kafka:GetBootstrapBrokers`, called once at deploy time.

CloudFormation exposes no bootstrap-broker attribute on MSK clusters, so a CDK
AwsCustomResource asks the MSK API after the cluster exists and hands the string (for the
services' auth mode) to the task definitions and to a stack output.

The lookup's IAM policy names the cluster by an ARN *pattern* built from the cluster's name,
not by the cluster's ARN: so the policy is created at the start of the deploy, in parallel
with the 20-40 minute cluster, and IAM has long propagated when the lookup runs. A policy
on the real ARN is created just before the lookup and can lose the race with AccessDenied
(aws-cdk #37085, #23340), rolling back the whole stack.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from adstream.infra.checks import acknowledge, acknowledge_wildcard_resource
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
    """`brokers[auth]`: the comma-separated `host:port` list per auth mode, at deploy time."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_arn: str,
        cluster_name: str,
        auths: tuple[ClientAuth, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        any_cluster_named = Fn.sub(
            "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:"
            f"cluster/{cluster_name}/*"
        )
        fields = [BROKER_STRING_FIELD[auth] for auth in auths]
        call = cr.AwsSdkCall(
            service="Kafka",
            action="getBootstrapBrokers",
            parameters={"ClusterArn": cluster_arn},
            physical_resource_id=cr.PhysicalResourceId.of(cluster_arn),
            output_paths=fields,
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
                        actions=["kafka:GetBootstrapBrokers"], resources=[any_cluster_named]
                    )
                ]
            ),
        )
        self.brokers = {
            auth: lookup.get_response_field(BROKER_STRING_FIELD[auth]) for auth in auths
        }
        acknowledge_wildcard_resource(
            self,
            any_cluster_named,
            "read-only GetBootstrapBrokers on clusters of this one name: the pattern leaves "
            "only the UUID open so that the policy does not wait for the cluster (IAM race)",
        )
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
