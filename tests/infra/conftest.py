"""Synthesize each profile once per session; every infra test reads those templates."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from adstream.infra.app import SynthResult, synthesize
from adstream.infra.profiles import PROFILE_DIR, Profile, load_profile, parse_profile

SHIPPED = ("dev", "prod", "serverless")
EXISTING_CA = (
    "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/"
    "0a1b2c3d-1111-2222-3333-444455556666"
)


TEST_IMAGE = {"source": "ecr", "repository": "adstream", "tag": "test-1"}
"""Tests deploy a fixed ECR tag: synth then needs no prepared build context (asset mode has
its own test with a context of its own)."""


def shipped_data(name: str) -> dict[str, Any]:
    """A shipped profile's YAML with the test image."""
    data: dict[str, Any] = yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())
    data.setdefault("clients", {})["image"] = TEST_IMAGE
    return data


def variant_profile() -> Profile:
    """dev with plaintext (TLS_PLAINTEXT), mTLS through an existing CA, SCRAM clients, NAT,
    and per-task rate limits (no shared limits cache)."""
    data = shipped_data("dev")
    data["name"] = "variant"
    data["cluster"]["name"] = "adstream-variant"
    data["cluster"]["client_broker"] = "TLS_PLAINTEXT"
    data["cluster"]["auth"].update(mtls=True, private_ca_arn=EXISTING_CA)
    data["clients"]["auth"] = "scram"
    data["network"]["egress"] = "nat"
    data["clients"]["api_limits"] = {"enabled": False}
    return parse_profile(data, "variant")


def next_kafka_profile() -> Profile:
    """dev after a Kafka version bump: what the first update after an upgrade deploys."""
    data = shipped_data("dev")
    data["cluster"]["kafka_version"] = "3.9.x"
    return parse_profile(data, "dev-next-kafka")


CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-4444"
DATABASE = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:adstream-db-AbCdEf"
DIGEST = "sha256:" + "ab" * 32


def complete_profile() -> Profile:
    """dev with everything optional set: HTTPS certificate, alarm e-mail, count database (so
    the aggregator runs), the image by digest."""
    data = shipped_data("dev")
    data["name"] = "complete"
    data["clients"]["image"] = {"source": "ecr", "repository": "adstream", "tag": DIGEST}
    data["clients"]["certificate_arn"] = CERTIFICATE
    data["clients"]["database_secret_arn"] = DATABASE
    data["database"] = {"kind": "none"}  # an existing database instead of the stack's
    data["clients"]["aggregator"]["desired_count"] = 1
    data["alarms"] = {"email": "oncall@example.com"}
    return parse_profile(data, "complete")


def plugin_zip(root: Path) -> Path:
    """A stand-in for `adstream connect plugin-zip`'s ~140 MB ZIP: synth only hashes and
    stages the asset."""
    path = root / "plugin" / "iceberg-kafka-connect-msk.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("iceberg-kafka-connect/lib/README", "test stand-in\n")
    return path


def avro_profile() -> Profile:
    """dev writing Avro through the Glue Schema Registry the stack creates."""
    data = shipped_data("dev")
    data["name"] = "avro"
    data["schema"] = {"format": "avro", "registry": "glue"}
    return parse_profile(data, "avro")


def lake_profile(root: Path) -> Profile:
    """dev with the raw-events warehouse: the Iceberg sink on MSK Connect (JSON values: the
    sink cannot read Glue-framed Avro, so the profile refuses both together)."""
    data = shipped_data("dev")
    data["name"] = "lake"
    data["warehouse"] = {
        "enabled": True,
        "plugin_zip": str(plugin_zip(root)),
        "commit_interval_ms": 60_000,
    }
    return parse_profile(data, "lake")


def asset_context(root: Path, marker: str = "1") -> Path:
    """A build context as `make image-context` prepares one (tests need no container engine: synth
    only hashes and stages it; `cdk deploy` builds it)."""
    context = root / f"image-context-{marker}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Containerfile").write_text(f"FROM scratch\nLABEL marker={marker}\n")
    return context


def asset_profile(root: Path, marker: str = "1") -> Profile:
    """serverless with the image built from a context by `cdk deploy` (the shipped default)."""
    data = shipped_data("serverless")
    data["clients"]["image"] = {"source": "asset", "context": str(asset_context(root, marker))}
    return parse_profile(data, "asset")


PIXEL_RATE_LIMIT = 1200
EDGE_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-5555-6666-7777-8888"


def pixels_cloudfront_profile() -> Profile:
    """dev (no NAT, plain HTTP inside the VPC) with the public pixel path on CloudFront:
    its WebACL in a second stack in us-east-1."""
    data = shipped_data("dev")
    data["public_pixels"] = {"mode": "cloudfront", "rate_limit_per_5min": PIXEL_RATE_LIMIT}
    return parse_profile(data, "pixels-cloudfront")


def pixels_edge_tls_profile() -> Profile:
    """complete moved to us-east-1 (the WebACL stays in the main stack), with HTTPS all the
    way: the internal load balancer's certificate and CloudFront's own domain."""
    data = complete_profile().model_dump(mode="json", by_alias=True, exclude_none=True)
    data.update(name="pixels-edge-tls", region="us-east-1")
    data["clients"]["certificate_arn"] = EDGE_CERTIFICATE
    data["clients"]["database_secret_arn"] = DATABASE.replace("eu-west-1", "us-east-1")
    data["public_pixels"] = {
        "mode": "cloudfront",
        "rate_limit_per_5min": PIXEL_RATE_LIMIT,
        "domain_names": ["px.example.com"],
        "certificate_arn": EDGE_CERTIFICATE,
        "origin_domain_name": "ingest.internal.example.com",
    }
    return parse_profile(data, "pixels-edge-tls")


def pixels_alb_profile() -> Profile:
    """prod with the public pixel path on a second, internet-facing load balancer."""
    data = shipped_data("prod")
    data["public_pixels"] = {
        "mode": "public-alb",
        "rate_limit_per_5min": PIXEL_RATE_LIMIT,
        "certificate_arn": CERTIFICATE,
    }
    return parse_profile(data, "pixels-alb")


VARIANTS = {
    "variant": variant_profile,
    "dev-next-kafka": next_kafka_profile,
    "complete": complete_profile,
    "avro": avro_profile,
    "pixels-cloudfront": pixels_cloudfront_profile,
    "pixels-edge-tls": pixels_edge_tls_profile,
    "pixels-alb": pixels_alb_profile,
}


def profile_named(name: str, root: Path | None = None) -> Profile:
    if name == "asset":
        assert root is not None, "the asset profile needs a directory for its context"
        return asset_profile(root)
    if name == "lake":
        assert root is not None, "the lake profile needs a directory for its plugin ZIP"
        return lake_profile(root)
    if name in VARIANTS:
        return VARIANTS[name]()
    load_profile(name)  # the shipped file as it is must be valid
    return parse_profile(shipped_data(name), name)


@dataclass
class Synth:
    profile: Profile
    result: SynthResult
    template: dict[str, Any]
    """The profile's main stack."""
    others: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Further stacks by name (e.g. the public pixels' `<stack>-edge` in us-east-1)."""

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == type_}

    def direct_dependencies(self, logical_id: str) -> set[str]:
        """Resources `logical_id` waits for: DependsOn, Ref, Fn::GetAtt and ${X} in Fn::Sub."""
        resource = self.template["Resources"][logical_id]
        found = set(_as_list(resource.get("DependsOn", [])))
        _collect_references(resource.get("Properties", {}), found)
        return found & set(self.template["Resources"])

    def dependencies(self, logical_id: str) -> set[str]:
        """Everything CloudFormation must create before `logical_id` (transitively)."""
        seen: set[str] = set()
        todo = [logical_id]
        while todo:
            for dep in self.direct_dependencies(todo.pop()) - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    def one(self, type_: str) -> dict[str, Any]:
        found = self.resources(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))["Properties"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _collect_references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if "Ref" in node:
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in node:
            body = node["Fn::Sub"]
            text = body if isinstance(body, str) else body[0]
            found.update(name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
        for value in node.values():
            _collect_references(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_references(item, found)


class SynthCache:
    """Lazily synthesizes a profile the first time a test asks for it."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._done: dict[str, Synth] = {}

    def __call__(self, name: str) -> Synth:
        if name not in self._done:
            profile = profile_named(name, self._root)
            result = synthesize(profile, self._root / name, strict=False)
            templates = {
                path.name.removesuffix(".template.json"): json.loads(path.read_text())
                for path in result.templates
            }
            main = templates.pop(profile.stack_name)
            self._done[name] = Synth(profile, result, main, templates)
        return self._done[name]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthCache:
    return SynthCache(tmp_path_factory.mktemp("cdk"))
