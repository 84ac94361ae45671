"""The S3 bucket a load balancer or distribution writes its access logs to.

One definition for every entry point (the internal load balancer, the public pixel
entries), so they keep the same encryption, TLS-only access, versioning, retention and
cdk-nag reasoning.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from adstream.infra.checks import acknowledge


def access_log_bucket(scope: Construct, *, receives: str, acl: bool = False) -> s3.Bucket:
    """A private bucket `AccessLogs` in `scope`, kept 90 days, for `receives` (named in the
    cdk-nag acknowledgement). CloudFront's standard logs are written with an ACL, so `acl`
    keeps ACLs usable for the bucket owner (public access stays blocked)."""
    bucket = s3.Bucket(
        scope,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED if acl else None,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
    )
    acknowledge(
        bucket,
        "AwsSolutions-S1",
        f"this bucket receives {receives}; logging access to the log bucket itself would "
        "need yet another bucket",
    )
    return bucket
