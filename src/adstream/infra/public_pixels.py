"""The public path for pixels (`public_pixels` in the profile; off by default).

The ingest load balancer stays internal: server-to-server batches with API keys never leave
the VPC. Browsers load `/pixel.gif` and the signed single-event routes from ad markup, so
those, and only those, get a public entry with AWS WAF in front:

- `cloudfront`: a distribution whose VPC origin reaches the *internal* load balancer over
  AWS's network (nothing in the VPC becomes public). Its WebACL must live in us-east-1, so
  it sits in a small second stack there (`<stack>-edge`) that publishes the WebACL's ARN
  as an SSM parameter; the main stack reads it once the edge stack is deployed (CDK's
  `crossRegionReferences` would add a Lambda pair of its own for the same). In us-east-1
  itself the WebACL stays in the main stack.
- `public-alb`: a second, internet-facing load balancer in the public subnets with a
  regional WebACL; its listener forwards the same routes and answers everything else 404.

Either way each forwarded route passes its query string (the signature is in it) and
nothing is cached; the WAF counts requests per client IP (a rate-based rule) and runs AWS's
managed rule groups. The signature, checked by the API, decides what counts; the Kafka
side (broker security group) is untouched.
"""

from __future__ import annotations

from aws_cdk import CfnElement, Duration, Environment, Stack, Stage
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk import custom_resources as cr
from constructs import Construct

from adstream.infra.checks import acknowledge
from adstream.infra.log_bucket import access_log_bucket
from adstream.infra.profiles import Egress, PixelMode, Profile

PIXEL_PATHS = ("/pixel.gif",)
"""GET: the tracking pixel (an impression)."""
SIGNED_EVENT_PATHS = ("/ads/*/impression", "/ads/*/click")
"""POST: the single-event routes, which accept a signed URL (`adstream sign --route`)."""
SIGNED_QUERY = ("adId", "kid", "exp", "nonce", "sig")
"""The query parameters of a signed URL (`ingest/signing.py`: adId plus PARAMS); infra does
not import the application, a test keeps the two in step."""
EDGE_REGION = "us-east-1"
"""Where CloudFront takes its WebACLs (and viewer certificates) from."""
VPC_ORIGIN_SG = "CloudFront-VPCOrigins-Service-SG"
"""The group CloudFront gives its VPC-origin network interfaces, in the origin's VPC."""
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
"""AWS managed rule groups evaluated after the rate rule (free groups; each is billed as one
rule of the WebACL)."""
DENY_ALL_FUNCTION = (
    "function handler(event) {\n  return {statusCode: 404, statusDescription: 'Not Found'};\n}\n"
)
"""The default behaviour's viewer-request function: no other path reaches the origin."""
SIGNATURE_PARAM = "sig"
"""Required on every forwarded request. With any signed-URL parameter present the API
authenticates by the signature alone (`Gate.single`), so an API key is never accepted
through the public path, and an unsigned request is refused before it reaches the VPC."""
SIGNED_ONLY_FUNCTION = (
    "function handler(event) {\n"
    f"  if (!event.request.querystring.{SIGNATURE_PARAM}) {{\n"
    "    return {statusCode: 401, statusDescription: 'Unauthorized'};\n"
    "  }\n"
    "  return event.request;\n"
    "}\n"
)
"""The forwarded behaviours' viewer-request function."""


def needs_edge_stack(profile: Profile) -> bool:
    """A CloudFront WebACL outside us-east-1 needs a stack there."""
    return profile.public_pixels.mode is PixelMode.CLOUDFRONT and profile.region != EDGE_REGION


def rate_limited_web_acl(
    scope: Construct, construct_id: str, *, waf_scope: str, rate_limit: int, name: str
) -> wafv2.CfnWebACL:
    """Allow by default; block an IP over `rate_limit` requests per 5 minutes; AWS's
    managed groups (common exploits, known bad inputs, IP reputation) block the rest."""

    def visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
        )

    rules = [
        wafv2.CfnWebACL.RuleProperty(
            name="RatePerIp",
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    aggregate_key_type="IP", limit=rate_limit, evaluation_window_sec=300
                )
            ),
            visibility_config=visibility(f"{name}-rate-per-ip"),
        )
    ]
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=visibility(f"{name}-{group}"),
            )
        )
    return wafv2.CfnWebACL(
        scope,
        construct_id,
        name=name,
        scope=waf_scope,
        description="adstream public pixels: rate per client IP, AWS managed rule groups",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=visibility(name),
        rules=rules,
    )


def web_acl_parameter(profile: Profile) -> str:
    """The SSM parameter (in us-east-1) holding the CloudFront WebACL's ARN."""
    return f"/adstream/{profile.stack_name}/pixels-web-acl-arn"


class PixelEdgeStack(Stack):
    """The CloudFront WebACL, in us-east-1 as CloudFront requires, and its ARN in SSM."""

    def __init__(self, scope: Construct, *, profile: Profile) -> None:
        super().__init__(
            scope,
            f"{profile.stack_name}-edge",
            env=Environment(account=profile.account, region=EDGE_REGION),
            description=f"adstream public pixels' WAF for CloudFront ({profile.name} profile)",
        )
        self.web_acl = rate_limited_web_acl(
            self,
            "PixelsWebAcl",
            waf_scope="CLOUDFRONT",
            rate_limit=profile.public_pixels.rate_limit_per_5min,
            name=f"{profile.stack_name}-pixels",
        )
        ssm.StringParameter(
            self,
            "PixelsWebAclArn",
            parameter_name=web_acl_parameter(profile),
            string_value=self.web_acl.attr_arn,
            description="adstream public pixels' CloudFront WebACL (the main stack reads it)",
        )


def read_edge_web_acl_arn(scope: Construct, profile: Profile) -> str:
    """The edge stack's WebACL ARN, read from us-east-1 at deploy time (the main stack
    depends on the edge stack, so the parameter exists). The lookup's id carries the
    WebACL's name, so renaming it (a new WebACL) reads the parameter again."""
    name = web_acl_parameter(profile)
    stack = Stack.of(scope)
    lookup = cr.AwsCustomResource(
        scope,
        "EdgeWebAclArn",
        on_update=cr.AwsSdkCall(
            service="SSM",
            action="getParameter",
            parameters={"Name": name},
            region=EDGE_REGION,
            physical_resource_id=cr.PhysicalResourceId.of(f"{name}@{profile.stack_name}-pixels"),
            output_paths=["Parameter.Value"],
        ),
        policy=cr.AwsCustomResourcePolicy.from_statements(
            [
                iam.PolicyStatement(
                    actions=["ssm:GetParameter"],
                    resources=[
                        stack.format_arn(
                            service="ssm",
                            region=EDGE_REGION,
                            resource="parameter",
                            resource_name=name.lstrip("/"),
                        )
                    ],
                )
            ]
        ),
        install_latest_aws_sdk=False,
    )
    return lookup.get_response_field("Parameter.Value")


class CloudFrontPixels(Construct):
    """A distribution forwarding only the pixel routes to the internal load balancer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        load_balancer: elbv2.ApplicationLoadBalancer,
        https: bool,
        web_acl_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        pixels = profile.public_pixels
        port = 443 if https else 80
        origin = origins.VpcOrigin.with_application_load_balancer(
            load_balancer,
            protocol_policy=(
                cloudfront.OriginProtocolPolicy.HTTPS_ONLY
                if https
                else cloudfront.OriginProtocolPolicy.HTTP_ONLY
            ),
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            domain_name=pixels.origin_domain_name,
            vpc_origin_name=f"{profile.stack_name}-ingest",
        )
        query = cloudfront.OriginRequestPolicy(
            self,
            "SignedQuery",
            comment="adstream pixels: the signed URL's query string, nothing else",
            query_string_behavior=cloudfront.OriginRequestQueryStringBehavior.allow_list(
                *SIGNED_QUERY
            ),
            header_behavior=cloudfront.OriginRequestHeaderBehavior.none(),
            cookie_behavior=cloudfront.OriginRequestCookieBehavior.none(),
        )

        deny = cloudfront.Function(
            self,
            "NotForwarded",
            code=cloudfront.FunctionCode.from_inline(DENY_ALL_FUNCTION),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="adstream pixels: every other path answers 404 at the edge",
        )
        signed_only = cloudfront.Function(
            self,
            "SignedOnly",
            code=cloudfront.FunctionCode.from_inline(SIGNED_ONLY_FUNCTION),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="adstream pixels: a request without a signature answers 401 at the edge",
        )

        def forward(methods: cloudfront.AllowedMethods) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                allowed_methods=methods,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=query,
                compress=False,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=signed_only,
                        event_type=cloudfront.FunctionEventType.VIEWER_REQUEST,
                    )
                ],
            )

        behaviors = {
            path: forward(cloudfront.AllowedMethods.ALLOW_GET_HEAD) for path in PIXEL_PATHS
        }
        behaviors |= {
            path: forward(cloudfront.AllowedMethods.ALLOW_ALL) for path in SIGNED_EVENT_PATHS
        }
        certificate = (  # the profile checks that it is in us-east-1
            acm.Certificate.from_certificate_arn(self, "Certificate", pixels.certificate_arn)
            if pixels.certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"adstream public pixels ({profile.name})",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=deny, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
            ),
            additional_behaviors=behaviors,
            web_acl_id=web_acl_arn,
            domain_names=list(pixels.domain_names) or None,
            certificate=certificate,
            minimum_protocol_version=(
                cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=access_log_bucket(
                self, receives="the public pixel entry's access logs", acl=True
            ),
            log_file_prefix="pixels-cloudfront/",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "ads are served worldwide; which countries may load a pixel is the advertiser's "
            "targeting, not the collector's (the WAF rate rule and signatures still apply)",
        )
        if certificate is None:
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR4",
                "without public_pixels.certificate_arn the distribution uses the "
                "*.cloudfront.net certificate, whose TLS policy CloudFront fixes; set "
                "domain_names and a certificate for TLSv1.2_2021",
            )
        vpc_origin = next(
            child
            for child in self.distribution.node.find_all()
            if isinstance(child, cloudfront.CfnVpcOrigin)
        )
        if profile.network.egress is not Egress.NAT:
            vpc_origin.node.add_dependency(self._internet_gateway(vpc))
        self._admit_vpc_origin(vpc, load_balancer, port)

    def _internet_gateway(self, vpc: ec2.IVpc) -> ec2.CfnVPCGatewayAttachment:
        """CloudFront accepts a VPC origin only in a VPC with an internet gateway attached.
        Without NAT the VPC has none; this one gets no route (no route table points at it),
        so nothing in the private subnets becomes reachable from or can reach the internet."""
        gateway = ec2.CfnInternetGateway(self, "InternetGateway")
        return ec2.CfnVPCGatewayAttachment(
            self, "InternetGatewayAttachment", vpc_id=vpc.vpc_id, internet_gateway_id=gateway.ref
        )

    def _admit_vpc_origin(
        self, vpc: ec2.IVpc, load_balancer: elbv2.ApplicationLoadBalancer, port: int
    ) -> None:
        """The internal load balancer's group admits CloudFront's VPC-origin group on the
        listener port only. CloudFront creates that group itself and CloudFormation has no
        attribute for it, so a lookup reads it once the distribution is deployed. (The ALB's
        VPC-CIDR rule admits those interfaces too, unless `clients.api_allowed_cidrs`
        narrows it; this rule does not depend on that.)"""
        lookup = cr.AwsCustomResource(
            self,
            "VpcOriginGroup",
            on_update=cr.AwsSdkCall(
                service="ec2",
                action="describeSecurityGroups",
                parameters={
                    "Filters": [
                        {"Name": "vpc-id", "Values": [vpc.vpc_id]},
                        {"Name": "group-name", "Values": [VPC_ORIGIN_SG]},
                    ]
                },
                physical_resource_id=cr.PhysicalResourceId.of(VPC_ORIGIN_SG),
                output_paths=["SecurityGroups.0.GroupId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
            ),
            install_latest_aws_sdk=False,
        )
        # CloudFront may create the group only while it deploys the distribution (CDK's docs).
        lookup.node.add_dependency(self.distribution)
        acknowledge(
            lookup,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeSecurityGroups has no resource-level permissions",
        )
        (group,) = load_balancer.connections.security_groups
        ec2.CfnSecurityGroupIngress(
            self,
            "FromVpcOrigin",
            group_id=group.security_group_id,
            source_security_group_id=lookup.get_response_field("SecurityGroups.0.GroupId"),
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description="CloudFront VPC origin (public pixels) to the listener",
        )


class PublicAlbPixels(Construct):
    """An internet-facing load balancer that forwards only the pixel routes to the API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        api: ecs.FargateService,
    ) -> None:
        super().__init__(scope, construct_id)
        pixels = profile.public_pixels
        https = pixels.certificate_arn is not None
        port = 443 if https else 80
        group = ec2.SecurityGroup(
            self,
            "Sg",
            vpc=vpc,
            description="public pixel load balancer: the internet on the listener port",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(port), "browsers (pixels)")
        acknowledge(
            group,
            "AwsSolutions-EC23",
            "the public pixel entry is for any browser by design; AWS WAF rate-limits each "
            "IP and only the signed pixel routes are forwarded",
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=group,
            drop_invalid_header_fields=True,
        )
        self.load_balancer.log_access_logs(
            access_log_bucket(self, receives="the public pixel entry's access logs"),
            prefix="pixels-alb",
        )
        not_found = elbv2.ListenerAction.fixed_response(
            404, content_type="text/plain", message_body="not found"
        )
        if pixels.certificate_arn is not None:
            self.listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                open=False,
                certificates=[elbv2.ListenerCertificate.from_arn(pixels.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_action=not_found,
            )
        else:
            self.listener = self.load_balancer.add_listener(
                "Http", port=80, open=False, default_action=not_found
            )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "Api",
            vpc=vpc,
            port=profile.clients.api_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[api],
            health_check=elbv2.HealthCheck(
                path=profile.clients.api_health_path, interval=Duration.seconds(15)
            ),
            deregistration_delay=Duration.seconds(30),
        )
        api.connections.allow_from(group, ec2.Port.tcp(profile.clients.api_port), "public pixels")
        self.rules: list[CfnElement] = []
        routes = (
            ("Pixel", 10, PIXEL_PATHS, ("GET", "HEAD")),
            ("SignedEvents", 20, SIGNED_EVENT_PATHS, ("POST",)),
        )
        for name, priority, paths, methods in routes:
            rule = elbv2.ApplicationListenerRule(
                self,
                name,
                listener=self.listener,
                priority=priority,
                conditions=[
                    elbv2.ListenerCondition.path_patterns(list(paths)),
                    elbv2.ListenerCondition.http_request_methods(list(methods)),
                    elbv2.ListenerCondition.query_strings(
                        [elbv2.QueryStringCondition(key=SIGNATURE_PARAM, value="*")]
                    ),
                ],
                action=elbv2.ListenerAction.forward([self.target_group]),
            )
            element = rule.node.default_child
            assert isinstance(element, CfnElement)
            self.rules.append(element)
        self.web_acl = rate_limited_web_acl(
            self,
            "WebAcl",
            waf_scope="REGIONAL",
            rate_limit=pixels.rate_limit_per_5min,
            name=f"{profile.stack_name}-pixels",
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.load_balancer.load_balancer_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        self.scheme = "https" if https else "http"


class PublicPixels(Construct):
    """The profile's public pixel entry: builds the chosen mode and names its URL."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        vpc: ec2.IVpc,
        load_balancer: elbv2.ApplicationLoadBalancer,
        internal_https: bool,
        api: ecs.FargateService,
    ) -> None:
        super().__init__(scope, construct_id)
        mode = profile.public_pixels.mode
        assert mode is not PixelMode.NONE, "built only for a public mode"
        self.cloudfront: CloudFrontPixels | None = None
        self.public_alb: PublicAlbPixels | None = None
        self.edge: PixelEdgeStack | None = None
        if mode is PixelMode.CLOUDFRONT:
            if needs_edge_stack(profile):
                stack, stage = Stack.of(self), Stage.of(self)
                assert stage is not None, "the main stack lives in an App"
                self.edge = PixelEdgeStack(stage, profile=profile)
                stack.add_stack_dependency(self.edge, "the pixels' WebACL and its SSM parameter")
                web_acl_arn = read_edge_web_acl_arn(self, profile)
            else:
                web_acl_arn = rate_limited_web_acl(
                    self,
                    "WebAcl",
                    waf_scope="CLOUDFRONT",
                    rate_limit=profile.public_pixels.rate_limit_per_5min,
                    name=f"{profile.stack_name}-pixels",
                ).attr_arn
            self.cloudfront = CloudFrontPixels(
                self,
                "CloudFront",
                profile=profile,
                vpc=vpc,
                load_balancer=load_balancer,
                https=internal_https,
                web_acl_arn=web_acl_arn,
            )
            names = profile.public_pixels.domain_names
            host = names[0] if names else self.cloudfront.distribution.distribution_domain_name
            self.url = f"https://{host}"
        elif mode is PixelMode.PUBLIC_ALB:
            self.public_alb = PublicAlbPixels(self, "PublicAlb", profile=profile, vpc=vpc, api=api)
            dns = self.public_alb.load_balancer.load_balancer_dns_name
            self.url = f"{self.public_alb.scheme}://{dns}"
