"""Deploy-time ordering: what CloudFormation creates before what (issue 18, deploy blockers)."""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synth, SynthCache

pytestmark = pytest.mark.infra

ALL = ("dev", "prod", "serverless", "variant")
CLUSTER_TYPES = ("AWS::MSK::Cluster", "AWS::MSK::ServerlessCluster")


def _cluster_id(s: Synth) -> str:
    (logical,) = [k for t in CLUSTER_TYPES for k in s.resources(t)]
    return logical


@pytest.mark.parametrize("name", ALL)
def test_bootstrap_lookup_policy_exists_before_the_cluster_does(
    synth: SynthCache, name: str
) -> None:
    """The lookup runs the moment the cluster is created; its IAM policy must not wait for
    the cluster (ARN pattern from the name), so IAM has propagated by then (aws-cdk #37085)."""
    s = synth(name)
    cluster = _cluster_id(s)
    (lookup,) = s.resources("Custom::AWS")
    (policy,) = [
        k
        for k in s.resources("AWS::IAM::Policy")
        if k.startswith("BootstrapLookupCustomResourcePolicy")
    ]
    assert policy in s.dependencies(lookup)
    assert cluster in s.dependencies(lookup)
    assert cluster not in s.dependencies(policy)
    (statement,) = s.template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "kafka:GetBootstrapBrokers"
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:cluster/"
        f"{s.profile.cluster.name}/*"
    }
