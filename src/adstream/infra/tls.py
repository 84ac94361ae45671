"""Step 5 of the seed: TLS. Brokers present public ACM certificates, so clients need no
truststore; a private CA exists only to sign *client* certificates for mutual TLS.

The stack either uses the profile's existing ACM Private CA or creates and activates a root CA
(self-signed, 10 years). Creating one is slow to delete (7-30 day restore window) and costs
money every month, hence the profile switch.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnResource
from aws_cdk import aws_acmpca as acmpca
from constructs import Construct

from adstream.infra.profiles import Profile

_ALGORITHM = "SHA256WITHRSA"


class ClientCertificateAuthority(Construct):
    """The ACM Private CA whose signed client certificates the brokers accept."""

    arn: str
    ready: CfnResource | None
    """The activation the cluster must wait for; None when the CA already exists."""

    def __init__(self, scope: Construct, construct_id: str, *, profile: Profile) -> None:
        super().__init__(scope, construct_id)
        existing = profile.cluster.auth.private_ca_arn
        if existing:
            self.arn, self.ready = existing, None
            return
        ca = acmpca.CfnCertificateAuthority(
            self,
            "RootCa",
            type="ROOT",
            key_algorithm="RSA_2048",
            signing_algorithm=_ALGORITHM,
            subject=acmpca.CfnCertificateAuthority.SubjectProperty(
                common_name=f"{profile.cluster.name} Kafka client CA",
                organization="adstream",
            ),
        )
        certificate = acmpca.CfnCertificate(
            self,
            "RootCertificate",
            certificate_authority_arn=ca.attr_arn,
            certificate_signing_request=ca.attr_certificate_signing_request,
            signing_algorithm=_ALGORITHM,
            template_arn=f"arn:{Aws.PARTITION}:acm-pca:::template/RootCACertificate/V1",
            validity=acmpca.CfnCertificate.ValidityProperty(type="YEARS", value=10),
        )
        activation = acmpca.CfnCertificateAuthorityActivation(
            self,
            "Activation",
            certificate_authority_arn=ca.attr_arn,
            certificate=certificate.attr_certificate,
            status="ACTIVE",
        )
        self.arn, self.ready = ca.attr_arn, activation
