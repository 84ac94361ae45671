"""The public pixel path (`public_pixels`): off in every shipped profile; when on, only the
signed pixel routes are public, uncached, with their query strings, behind a WAF rate rule
per IP; the ingest load balancer stays internal and the brokers' group does not change."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from adstream.infra.profiles import ProfileError, parse_profile
from adstream.infra.public_pixels import (
    DENY_ALL_FUNCTION,
    EDGE_REGION,
    MANAGED_RULE_GROUPS,
    PIXEL_PATHS,
    SIGNED_EVENT_PATHS,
    SIGNED_ONLY_FUNCTION,
    SIGNED_QUERY,
    web_acl_parameter,
)
from adstream.ingest import signing
from tests.infra.conftest import (
    CERTIFICATE,
    EDGE_CERTIFICATE,
    PIXEL_RATE_LIMIT,
    Synth,
    SynthCache,
    shipped_data,
)

pytestmark = pytest.mark.infra

SHIPPED = ("dev", "prod", "serverless")
PIXELS = ("pixels-cloudfront", "pixels-edge-tls", "pixels-alb")
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
"""The managed CachePolicy `Managed-CachingDisabled`."""
PUBLIC_TYPES = (
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::VpcOrigin",
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
)
BASE = {"pixels-cloudfront": "dev", "pixels-edge-tls": "complete", "pixels-alb": "prod"}
"""The profile each pixel variant adds `public_pixels` to."""


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = resource["Properties"]
    return props


def _load_balancers(s: Synth) -> dict[str, dict[str, Any]]:
    return {
        k: _props(r) for k, r in s.resources("AWS::ElasticLoadBalancingV2::LoadBalancer").items()
    }


def _broker_group(s: Synth) -> str:
    (group,) = [
        k
        for k, r in s.resources("AWS::EC2::SecurityGroup").items()
        if str(_props(r)["GroupDescription"]).startswith("MSK brokers of")
    ]
    return group


def _broker_rules(s: Synth) -> list[dict[str, Any]]:
    """The brokers' group as CloudFormation creates it: inline rules and separate ones."""
    group = _broker_group(s)
    rules = [
        _props(r)
        for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
        if _props(r)["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]
    return sorted(
        [s.template["Resources"][group], *rules], key=lambda r: json.dumps(r, sort_keys=True)
    )


def _ingress_to(s: Synth, group: str) -> list[dict[str, Any]]:
    """Every ingress rule of `group`: inline and separate resources."""
    inline = list(_props(s.template["Resources"][group]).get("SecurityGroupIngress", []))
    return inline + [
        _props(r)
        for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
        if _props(r)["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]


def _internal_lb_group(s: Synth) -> str:
    (lb,) = [p for p in _load_balancers(s).values() if p["Scheme"] == "internal"]
    (group,) = lb["SecurityGroups"]
    return str(group["Fn::GetAtt"][0])


def _web_acl(template: dict[str, Any]) -> dict[str, Any]:
    (acl,) = [
        _props(r) for r in template["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"
    ]
    return acl


def _distribution(s: Synth) -> dict[str, Any]:
    config: dict[str, Any] = s.one("AWS::CloudFront::Distribution")["DistributionConfig"]
    return config


def _function_code(s: Synth, reference: dict[str, Any]) -> str:
    logical = reference["Fn::GetAtt"][0]
    return str(_props(s.template["Resources"][logical])["FunctionCode"])


# ---- off by default ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_expose_nothing(synth: SynthCache, name: str) -> None:
    s = synth(name)
    assert s.profile.public_pixels.mode.value == "none"
    assert s.others == {}  # no us-east-1 edge stack
    for type_ in PUBLIC_TYPES:
        assert s.resources(type_) == {}, type_
    assert [p["Scheme"] for p in _load_balancers(s).values()] == ["internal"]
    assert "PublicPixelsUrl" not in s.template.get("Outputs", {})


# ---- what the two modes forward ----------------------------------------------------------


def test_signed_query_is_what_signed_urls_carry() -> None:
    assert set(SIGNED_QUERY) == {"adId", *signing.PARAMS}
    assert PIXEL_PATHS == (signing.PIXEL_PATH,)
    assert {p.replace("*", "{adId}") for p in SIGNED_EVENT_PATHS} == set(signing.PATHS.values())


@pytest.mark.parametrize("name", ["pixels-cloudfront", "pixels-edge-tls"])
def test_cloudfront_forwards_only_the_signed_pixel_routes_uncached(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    config = _distribution(s)
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert set(behaviors) == {*PIXEL_PATHS, *SIGNED_EVENT_PATHS}
    assert behaviors["/pixel.gif"]["AllowedMethods"] == ["GET", "HEAD"]
    for path in SIGNED_EVENT_PATHS:
        assert "POST" in behaviors[path]["AllowedMethods"]
    (policy_id,) = {json.dumps(b["OriginRequestPolicyId"]) for b in behaviors.values()}
    policy = s.one("AWS::CloudFront::OriginRequestPolicy")["OriginRequestPolicyConfig"]
    assert {"Ref": next(iter(s.resources("AWS::CloudFront::OriginRequestPolicy")))} == (
        json.loads(policy_id)
    )
    assert policy["QueryStringsConfig"] == {
        "QueryStringBehavior": "whitelist",
        "QueryStrings": list(SIGNED_QUERY),
    }
    assert policy["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert policy["CookiesConfig"] == {"CookieBehavior": "none"}
    default = config["DefaultCacheBehavior"]
    for behavior in [default, *behaviors.values()]:
        assert behavior["CachePolicyId"] == CACHING_DISABLED
        assert behavior["ViewerProtocolPolicy"] == "https-only"
        (function,) = behavior["FunctionAssociations"]
        assert function["EventType"] == "viewer-request"
    # The default behaviour never reaches the origin; the forwarded ones need a signature.
    assert "OriginRequestPolicyId" not in default
    (deny,) = default["FunctionAssociations"]
    assert _function_code(s, deny["FunctionARN"]) == DENY_ALL_FUNCTION
    for behavior in behaviors.values():
        (signed,) = behavior["FunctionAssociations"]
        assert _function_code(s, signed["FunctionARN"]) == SIGNED_ONLY_FUNCTION


def _run_function(code: str, event: dict[str, Any]) -> Any:
    """Run a CloudFront Function's handler in Node (the jsii runtime's), as the edge would."""
    script = f"{code}\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    done = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, check=True, timeout=30
    )
    return json.loads(done.stdout)


def test_edge_functions_refuse_what_is_not_forwarded() -> None:
    def request(query: dict[str, str]) -> dict[str, Any]:
        return {
            "request": {
                "method": "GET",
                "uri": "/pixel.gif",
                "querystring": {k: {"value": v} for k, v in query.items()},
                "headers": {},
            }
        }

    assert _run_function(DENY_ALL_FUNCTION, request({}))["statusCode"] == 404
    unsigned = _run_function(SIGNED_ONLY_FUNCTION, request({"adId": "AD1"}))
    assert unsigned["statusCode"] == 401
    signed = request({"adId": "AD1", "kid": "k", "exp": "1", "nonce": "n" * 16, "sig": "s"})
    assert _run_function(SIGNED_ONLY_FUNCTION, signed) == signed["request"]


def test_cloudfront_waf_lives_in_us_east_1_and_rate_limits_per_ip(synth: SynthCache) -> None:
    s = synth("pixels-cloudfront")
    edge_name = f"{s.profile.stack_name}-edge"
    assert set(s.others) == {edge_name}
    edge = s.others[edge_name]
    acl = _web_acl(edge)
    assert acl["Scope"] == "CLOUDFRONT"
    _assert_rules(acl)
    assert s.resources("AWS::WAFv2::WebACL") == {}  # none in the main stack's region
    (parameter,) = [
        _props(r) for r in edge["Resources"].values() if r["Type"] == "AWS::SSM::Parameter"
    ]
    assert parameter["Name"] == web_acl_parameter(s.profile)
    assert parameter["Value"] == {"Fn::GetAtt": ["PixelsWebAcl", "Arn"]}
    # The main stack reads the parameter in us-east-1 and deploys after the edge stack.
    web_acl_id = _distribution(s)["WebACLId"]
    lookup = _props(s.template["Resources"][web_acl_id["Fn::GetAtt"][0]])
    call = json.loads(lookup["Create"])
    assert (call["action"], call["region"]) == ("getParameter", EDGE_REGION)
    assert call["parameters"] == {"Name": web_acl_parameter(s.profile)}
    assert s.result.assembly is not None
    main = s.result.assembly.get_stack_artifact(s.profile.stack_name)
    assert edge_name in [d.id for d in main.dependencies]


def test_cloudfront_in_us_east_1_keeps_its_waf_in_the_main_stack(synth: SynthCache) -> None:
    s = synth("pixels-edge-tls")
    assert s.others == {}
    acl = _web_acl(s.template)
    assert acl["Scope"] == "CLOUDFRONT"
    _assert_rules(acl)
    assert _distribution(s)["WebACLId"] == {
        "Fn::GetAtt": [next(iter(s.resources("AWS::WAFv2::WebACL"))), "Arn"]
    }


def _assert_rules(acl: dict[str, Any]) -> None:
    assert acl["DefaultAction"] == {"Allow": {}}
    rules = sorted(acl["Rules"], key=lambda r: r["Priority"])
    rate = rules[0]["Statement"]["RateBasedStatement"]
    assert (rate["Limit"], rate["AggregateKeyType"]) == (PIXEL_RATE_LIMIT, "IP")
    assert rate["EvaluationWindowSec"] == 300
    assert rules[0]["Action"] == {"Block": {}}
    groups = [r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in rules[1:]]
    assert groups == list(MANAGED_RULE_GROUPS)


@pytest.mark.parametrize(
    ("name", "port", "protocol"),
    [("pixels-cloudfront", 80, "http-only"), ("pixels-edge-tls", 443, "https-only")],
)
def test_vpc_origin_is_the_internal_load_balancer_on_its_listener_port_only(
    synth: SynthCache, name: str, port: int, protocol: str
) -> None:
    s = synth(name)
    assert [p["Scheme"] for p in _load_balancers(s).values()] == ["internal"]
    (lb,) = _load_balancers(s)
    origin = s.one("AWS::CloudFront::VpcOrigin")["VpcOriginEndpointConfig"]
    assert origin["Arn"] == {"Ref": lb}
    assert origin["OriginProtocolPolicy"] == protocol
    # The VPC-origin group, looked up once the origin exists, reaches the listener port.
    from_origin = [
        r
        for r in _ingress_to(s, _internal_lb_group(s))
        if "SourceSecurityGroupId" in r and "Fn::GetAtt" in r["SourceSecurityGroupId"]
    ]
    (rule,) = [
        r for r in from_origin if "VpcOriginGroup" in r["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    ]
    assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (port, port, "tcp")
    lookup = rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    vpc_origin = next(iter(s.resources("AWS::CloudFront::VpcOrigin")))
    assert vpc_origin in s.dependencies(lookup)


def test_cloudfront_tls_uses_the_domain_and_checks_the_origin_certificate(
    synth: SynthCache,
) -> None:
    s = synth("pixels-edge-tls")
    config = _distribution(s)
    assert config["Aliases"] == ["px.example.com"]
    assert config["ViewerCertificate"]["AcmCertificateArn"] == EDGE_CERTIFICATE
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    origin = s.one("AWS::CloudFront::VpcOrigin")["VpcOriginEndpointConfig"]
    assert origin["OriginSSLProtocols"] == ["TLSv1.2"]
    (entry,) = config["Origins"]
    assert entry["DomainName"] == "ingest.internal.example.com"
    assert s.template["Outputs"]["PublicPixelsUrl"]["Value"] == "https://px.example.com"


def test_cloudfront_without_nat_attaches_an_unrouted_internet_gateway(
    synth: SynthCache,
) -> None:
    """CloudFront needs an internet gateway on a VPC origin's VPC; no route uses it."""
    s = synth("pixels-cloudfront")
    (gateway,) = s.resources("AWS::EC2::InternetGateway")
    attachment = s.one("AWS::EC2::VPCGatewayAttachment")
    assert attachment["InternetGatewayId"] == {"Ref": gateway}
    assert s.resources("AWS::EC2::Route") == {}
    assert [
        p for p in s.resources("AWS::EC2::Subnet").values() if _props(p).get("MapPublicIpOnLaunch")
    ] == []


def test_public_alb_forwards_only_signed_pixel_routes_behind_a_regional_waf(
    synth: SynthCache,
) -> None:
    s = synth("pixels-alb")
    lbs = _load_balancers(s)
    assert sorted(p["Scheme"] for p in lbs.values()) == ["internal", "internet-facing"]
    (public,) = [k for k, p in lbs.items() if p["Scheme"] == "internet-facing"]
    public_subnets = {
        k for k, r in s.resources("AWS::EC2::Subnet").items() if _props(r)["MapPublicIpOnLaunch"]
    }
    assert {ref["Ref"] for ref in lbs[public]["Subnets"]} <= public_subnets
    (listener,) = [
        (k, _props(r))
        for k, r in s.resources("AWS::ElasticLoadBalancingV2::Listener").items()
        if _props(r)["LoadBalancerArn"] == {"Ref": public}
    ]
    listener_id, props = listener
    assert (props["Port"], props["Protocol"]) == (443, "HTTPS")
    assert props["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    assert props["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    rules = [
        _props(r)
        for r in s.resources("AWS::ElasticLoadBalancingV2::ListenerRule").values()
        if _props(r)["ListenerArn"] == {"Ref": listener_id}
    ]
    forwarded = {}
    for rule in rules:
        (action,) = rule["Actions"]
        assert action["Type"] == "forward"
        conditions = {c["Field"]: c for c in rule["Conditions"]}
        paths = tuple(conditions["path-pattern"]["PathPatternConfig"]["Values"])
        methods = conditions["http-request-method"]["HttpRequestMethodConfig"]["Values"]
        query = conditions["query-string"]["QueryStringConfig"]["Values"]
        assert query == [{"Key": "sig", "Value": "*"}]
        forwarded[paths] = methods
    assert forwarded == {PIXEL_PATHS: ["GET", "HEAD"], SIGNED_EVENT_PATHS: ["POST"]}
    acl = _web_acl(s.template)
    assert acl["Scope"] == "REGIONAL"
    _assert_rules(acl)
    association = s.one("AWS::WAFv2::WebACLAssociation")
    assert association["ResourceArn"] == {"Ref": public}
    # Only the listener port is open to the internet.
    (group,) = lbs[public]["SecurityGroups"]
    ingress = _ingress_to(s, group["Fn::GetAtt"][0])
    assert [(r["CidrIp"], r["FromPort"], r["ToPort"]) for r in ingress] == [("0.0.0.0/0", 443, 443)]


def test_public_alb_target_group_is_registered_before_the_api_starts(
    synth: SynthCache,
) -> None:
    s = synth("pixels-alb")
    (api,) = [
        k
        for k, r in s.resources("AWS::ECS::Service").items()
        if len(_props(r).get("LoadBalancers", [])) == 2
    ]
    rules = set(s.resources("AWS::ElasticLoadBalancingV2::ListenerRule"))
    public_rules = {k for k in rules if k.startswith("PublicPixels")}
    assert len(public_rules) == 2
    assert public_rules <= set(s.template["Resources"][api]["DependsOn"])


@pytest.mark.parametrize("name", PIXELS)
def test_kafka_side_is_unchanged(synth: SynthCache, name: str) -> None:
    s, base = synth(name), synth(BASE[name])
    assert _broker_rules(s) == _broker_rules(base)


# ---- checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PIXELS)
def test_cdk_nag_has_no_unacknowledged_findings(synth: SynthCache, name: str) -> None:
    result = synth(name).result
    assert result.findings == []
    assert result.assembly is not None
    pixels = [f for f in result.acknowledged if "/PublicPixels/" in f.path]
    assert pixels  # the pack saw the pixel resources
    for finding in pixels:
        assert finding.reason is not None, finding
        assert len(finding.reason) > 20, finding


def test_expected_pixel_acknowledgements_only(synth: SynthCache) -> None:
    def rules(name: str) -> set[str]:
        return {
            f.rule.split("[")[0]
            for f in synth(name).result.acknowledged
            if "/PublicPixels/" in f.path
        }

    assert rules("pixels-cloudfront") == {
        "AwsSolutions-CFR1",  # no geo restriction: ads are served worldwide
        "AwsSolutions-CFR4",  # the *.cloudfront.net certificate (no custom domain)
        "AwsSolutions-IAM5",  # ec2:DescribeSecurityGroups has no resource scope
        "AwsSolutions-S1",  # the access-log bucket's own access logs
    }
    assert rules("pixels-edge-tls") == {
        "AwsSolutions-CFR1",
        "AwsSolutions-IAM5",
        "AwsSolutions-S1",
    }
    assert rules("pixels-alb") == {"AwsSolutions-EC23", "AwsSolutions-S1"}


@pytest.mark.parametrize("name", PIXELS)
def test_cfn_lint_reports_nothing(synth: SynthCache, name: str) -> None:
    s = synth(name)
    stacks = {s.profile.stack_name: (s.template, s.profile.region)} | {
        stack: (template, EDGE_REGION) for stack, template in s.others.items()
    }
    for stack, (template, region) in stacks.items():
        matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
        assert [str(m) for m in matches] == [], stack


# ---- profile validation ------------------------------------------------------------------


def _with_pixels(base: str, pixels: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = shipped_data(base)
    data["public_pixels"] = pixels
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return data


BAD = [
    (
        _with_pixels("dev", {"mode": "cloudfront", "rate_limit_per_5min": 5}),
        "public_pixels.rate_limit_per_5min",
    ),
    (_with_pixels("dev", {"mode": "public"}), "public_pixels.mode"),
    (
        _with_pixels("dev", {"mode": "cloudfront", "unknown": 1}),
        "public_pixels.unknown",
    ),
    (
        _with_pixels(
            "dev",
            {
                "mode": "cloudfront",
                "domain_names": ["px.example.com"],
                "certificate_arn": CERTIFICATE,
            },
        ),
        "CloudFront takes ACM certificates from us-east-1 only, not eu-west-1",
    ),
    (
        _with_pixels("dev", {"mode": "cloudfront", "domain_names": ["px.example.com"]}),
        "public_pixels.domain_names: and certificate_arn go together",
    ),
    (
        _with_pixels("dev", {"mode": "cloudfront", "domain_names": ["not a name"]}),
        "public_pixels.domain_names.0",
    ),
    (
        _with_pixels("dev", {"mode": "cloudfront"}, clients__certificate_arn=CERTIFICATE),
        "public_pixels.origin_domain_name: required",
    ),
    (
        _with_pixels("dev", {"mode": "cloudfront", "origin_domain_name": "ingest.example.com"}),
        "public_pixels.origin_domain_name: set, but the internal load balancer listens on HTTP",
    ),
    (
        _with_pixels("dev", {"mode": "public-alb"}),
        "public_pixels.mode: public-alb needs public subnets",
    ),
    (
        _with_pixels("prod", {"mode": "public-alb"}),
        "public_pixels.certificate_arn: prod profiles refuse a public load balancer on plain HTTP",
    ),
    (
        _with_pixels("prod", {"mode": "public-alb", "certificate_arn": EDGE_CERTIFICATE}),
        "a load balancer takes certificates from its own region (eu-west-1), not us-east-1",
    ),
    (
        _with_pixels(
            "prod",
            {
                "mode": "public-alb",
                "certificate_arn": CERTIFICATE,
                "domain_names": ["a.example.com"],
            },
        ),
        "public_pixels.domain_names: for mode cloudfront only",
    ),
    (
        _with_pixels("dev", {"mode": "none", "certificate_arn": EDGE_CERTIFICATE}),
        "public_pixels.certificate_arn: set, but public_pixels.mode is none",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_profile_refuses_bad_public_pixels(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, "bad")
    assert message in str(caught.value)


def test_profile_accepts_public_pixels_defaults() -> None:
    pixels = parse_profile(_with_pixels("dev", {"mode": "cloudfront"}), "ok").public_pixels
    assert pixels.rate_limit_per_5min == 2000
    assert parse_profile(shipped_data("dev"), "dev").public_pixels.mode.value == "none"
