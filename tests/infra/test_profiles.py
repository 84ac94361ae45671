"""Profile validation: impossible deployments fail early, naming the setting."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from adstream.infra.cli import app
from adstream.infra.profiles import (
    PROFILE_DIR,
    ClientBroker,
    ProfileError,
    load_profile,
    parse_profile,
    resolve_profile_path,
)

pytestmark = pytest.mark.infra


def _dev() -> dict[str, Any]:
    return yaml.safe_load((PROFILE_DIR / "dev.yaml").read_text())


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(data, "test")
    return str(info.value)


def test_shipped_profiles_load_with_their_shape() -> None:
    dev, prod, serverless = (load_profile(n) for n in ("dev", "prod", "serverless"))
    assert (dev.az_count, dev.cluster.broker_count, dev.network.egress.value) == (
        2,
        4,
        "vpc-endpoints",
    )
    assert (prod.az_count, prod.network.egress.value) == (3, "nat")
    assert (prod.cluster.auth.iam, prod.cluster.auth.scram, prod.cluster.auth.mtls) == (True,) * 3
    assert prod.cluster.client_broker is ClientBroker.TLS
    assert serverless.serverless
    assert (serverless.cluster.auth.scram, serverless.cluster.auth.mtls) == (False, False)


def test_profile_name_or_path_resolution(tmp_path: Any) -> None:
    assert resolve_profile_path("prod") == PROFILE_DIR / "prod.yaml"
    assert resolve_profile_path(str(tmp_path / "x.yaml")) == tmp_path / "x.yaml"


def test_broker_count_must_be_a_multiple_of_the_azs() -> None:
    data = _dev()
    data["cluster"]["broker_count"] = 5
    assert "cluster.broker_count: 5 is not a multiple of az_count (2)" in _error(data)


def test_broker_count_must_allow_replication_factor_three() -> None:
    data = _dev()
    data["cluster"]["broker_count"] = 2
    assert "cluster.broker_count: 2 is too few for default.replication.factor=3" in _error(data)


@pytest.mark.parametrize("mode", ["scram", "mtls"])
def test_serverless_refuses_scram_and_mtls(mode: str) -> None:
    data = yaml.safe_load((PROFILE_DIR / "serverless.yaml").read_text())
    data["cluster"]["auth"][mode] = True
    assert f"cluster.auth.{mode}: MSK Serverless supports IAM auth only" in _error(data)


def test_serverless_requires_iam() -> None:
    data = yaml.safe_load((PROFILE_DIR / "serverless.yaml").read_text())
    data["cluster"]["auth"]["iam"] = False
    assert "cluster.auth.iam: MSK Serverless requires IAM auth" in _error(data)


@pytest.mark.parametrize("client_broker", ["TLS_PLAINTEXT", "PLAINTEXT"])
def test_prod_refuses_plaintext(client_broker: str) -> None:
    data = yaml.safe_load((PROFILE_DIR / "prod.yaml").read_text())
    data["cluster"]["client_broker"] = client_broker
    assert f"cluster.client_broker: {client_broker} enables plaintext" in _error(data)


def test_dev_may_enable_plaintext_next_to_tls() -> None:
    data = _dev()
    data["cluster"]["client_broker"] = "TLS_PLAINTEXT"
    assert parse_profile(data).plaintext


def test_scram_requires_tls() -> None:
    data = _dev()
    data["cluster"]["client_broker"] = "PLAINTEXT"
    message = _error(data)
    assert "cluster.auth.scram: requires TLS in transit" in message
    assert "cluster.auth.iam: requires TLS in transit" in message


def test_clients_need_an_enabled_auth_mode() -> None:
    data = _dev()
    data["cluster"]["auth"]["scram"] = False
    data["clients"]["auth"] = "scram"
    assert "clients.auth: scram is not enabled on the cluster" in _error(data)


def test_private_ca_without_mtls_is_rejected() -> None:
    data = _dev()
    data["cluster"]["auth"]["private_ca_arn"] = (
        "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-1111"
    )
    assert "cluster.auth.private_ca_arn: set, but cluster.auth.mtls is false" in _error(data)


def test_unknown_and_mistyped_settings_are_named() -> None:
    data = _dev()
    data["cluster"]["brokers"] = 4
    data["az_count"] = 4
    message = _error(data)
    assert "cluster.brokers: Extra inputs are not permitted" in message
    assert "az_count: Input should be 2 or 3" in message


def test_valid_edit_still_parses() -> None:
    data = copy.deepcopy(_dev())
    data["cluster"]["broker_count"] = 6
    assert parse_profile(data).cluster.broker_count == 6


runner = CliRunner()


def test_cli_names_the_bad_setting_without_traceback(tmp_path: Any) -> None:
    data = _dev()
    data["cluster"]["broker_count"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["synth", "--profile", str(path)])
    assert result.exit_code == 2
    assert "cluster.broker_count: 3 is not a multiple of az_count (2)" in result.output
    assert "Traceback" not in result.output


def test_cli_unknown_profile_lists_known_ones() -> None:
    result = runner.invoke(app, ["synth", "--profile", "staging"])
    assert result.exit_code == 2
    assert "known profiles: ['dev', 'prod', 'serverless']" in result.output


@pytest.mark.parametrize("name", ["dev", "prod", "serverless"])
def test_each_profile_deploys_the_topic_and_group_that_kafka_yaml_grants(name: str) -> None:
    """The services' topic and consumer group must be the ones deploy/kafka.yaml creates
    and grants: with SCRAM or mutual TLS, a group without an ACL is refused at start."""
    desired = yaml.safe_load((PROFILE_DIR.parents[1] / "deploy" / "kafka.yaml").read_text())
    profile = load_profile(name)
    assert profile.topic.name in desired["topics"]
    aggregator_grants = desired["acls"]["adstream-aggregator"]
    assert {"group": profile.topic.consumer_group, "operations": ["read"]} in aggregator_grants


def test_storage_target_utilization_is_within_what_msk_accepts() -> None:
    data = _dev()
    data["cluster"]["storage_target_utilization"] = 85
    assert "cluster.storage_target_utilization: Input should be less than or equal to 80" in (
        _error(data)
    )
    data["cluster"]["storage_target_utilization"] = 80
    assert parse_profile(data).cluster.storage_target_utilization == 80


@pytest.mark.parametrize("mode", ["scram", "mtls"])
def test_scram_or_mtls_without_the_deploy_time_apply_is_refused(mode: str) -> None:
    """allow.everyone.if.no.acl.found=false: without ACLs every such request is refused."""
    data = _dev()
    data["cluster"]["auth"].update({"scram": False, mode: True})
    data["kafka_apply"]["enabled"] = False
    assert f"cluster.auth.{mode}: with allow.everyone.if.no.acl.found=false" in _error(data)
    data["kafka_apply"]["enabled"] = True
    assert getattr(parse_profile(data).cluster.auth, mode)


def test_iam_only_clusters_may_skip_the_apply() -> None:
    data = _dev()
    data["cluster"]["auth"]["scram"] = False
    data["kafka_apply"]["enabled"] = False
    assert not parse_profile(data).kafka_apply.enabled


def test_the_apply_needs_iam_on_the_cluster() -> None:
    data = _dev()
    data["cluster"]["auth"]["iam"] = False
    data["clients"]["auth"] = "scram"
    assert "kafka_apply.enabled: the deploy-time apply connects as an IAM principal" in (
        _error(data)
    )


EXISTING_DB = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:adstream-db-AbCdEf"


def test_a_running_aggregator_needs_a_database() -> None:
    data = _dev()
    data["database"] = {"kind": "none"}
    data["clients"]["aggregator"]["desired_count"] = 1
    assert "clients.aggregator.desired_count: a deployed aggregator needs" in _error(data)
    data["clients"]["database_secret_arn"] = EXISTING_DB
    assert parse_profile(data).clients.aggregator.desired_count == 1
    data["clients"].pop("database_secret_arn")
    data["database"] = {"kind": "aurora-serverless"}
    assert parse_profile(data).has_database


def test_shipped_profiles_run_the_aggregator_on_a_database_of_their_own() -> None:
    kinds = {}
    for name in ("dev", "prod", "serverless"):
        profile = load_profile(name)
        assert profile.clients.aggregator.desired_count > 0
        assert profile.clients.database_secret_arn is None
        kinds[name] = profile.database.kind.value
    assert kinds == {"dev": "rds", "prod": "rds", "serverless": "aurora-serverless"}
    prod = load_profile("prod").database
    assert prod.multi_az
    assert prod.deletion_protection
    assert prod.backup_retention_days >= 7


def test_a_created_and_an_existing_database_exclude_each_other() -> None:
    data = _dev()
    data["clients"]["database_secret_arn"] = EXISTING_DB
    assert "choose the database the stack creates or an existing one" in _error(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"deletion_protection": False}, "database.deletion_protection: prod profiles require"),
        ({"backup_retention_days": 3}, "database.backup_retention_days: prod profiles keep"),
        ({"multi_az": False}, "database.multi_az: prod profiles require a second AZ"),
    ],
)
def test_prod_databases_are_protected(change: dict[str, Any], message: str) -> None:
    data = yaml.safe_load((PROFILE_DIR / "prod.yaml").read_text())
    data["database"].update(change)
    assert message in _error(data)


def test_api_scaling_bounds_hold_the_desired_count() -> None:
    data = _dev()
    data["clients"]["api_scaling"] = {"min_count": 2, "max_count": 3}
    assert "clients.api.desired_count: 1 is outside api_scaling's 2..3" in _error(data)
    data["clients"]["api_scaling"] = {"min_count": 3, "max_count": 2}
    assert "clients.api_scaling.max_count: below min_count" in _error(data)


def test_topic_requirements_per_cluster_kind() -> None:
    assert load_profile("dev").topic_requirements() == (3, 2)
    assert load_profile("serverless").topic_requirements() == (None, None)
    data = _dev()
    data["clients"]["require_min_insync_replicas"] = 1
    assert parse_profile(data).topic_requirements() == (3, 1)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            {"source": "ecr", "repository": "adstream", "tag": "latest"},
            "clients.image.tag: latest never rolls out",
        ),
        ({"source": "ecr", "repository": "adstream"}, "source ecr needs repository and tag"),
        ({"source": "asset", "tag": "v1"}, "repository/tag are for source ecr, not asset"),
        ({"source": "ecr", "repository": "adstream", "tag": "sha256:abc"}, "should match"),
    ],
)
def test_images_must_roll_out(image: dict[str, Any], message: str) -> None:
    data = _dev()
    data["clients"]["image"] = image
    assert message in _error(data)


def test_an_image_digest_or_immutable_tag_is_accepted() -> None:
    data = _dev()
    for tag in ("sha256:" + "0f" * 32, "2026-11-27.3", "5afb9d6"):
        data["clients"]["image"] = {"source": "ecr", "repository": "adstream", "tag": tag}
        assert parse_profile(data).clients.image.tag == tag


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_scram_users_are_the_ones_kafka_yaml_grants_and_reads(name: str) -> None:
    """The stack creates AmazonMSK_<cluster>_<user> for the users deploy/kafka.yaml names,
    and the environment's overlay reads exactly those secrets."""
    deploy = PROFILE_DIR.parents[1] / "deploy"
    base = yaml.safe_load((deploy / "kafka.yaml").read_text())
    overlay = yaml.safe_load((deploy / f"kafka.{name}.yaml").read_text())
    profile = load_profile(name)
    users = profile.cluster.auth.scram_users
    assert set(users) == set(base["users"]) == set(overlay["users"])
    assert set(users) <= set(base["acls"])
    for user in users:
        expected = f"aws_secret:AmazonMSK_{profile.cluster.name}_{user}"
        assert overlay["users"][user]["password"] == expected
