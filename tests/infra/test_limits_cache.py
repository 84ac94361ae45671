"""The API's shared rate limits on AWS: an ElastiCache Serverless (Valkey) cache in the
private subnets, reachable from the API tasks only, TLS and a customer key, a user whose
password reaches the API task as ECS secrets; off in the `variant` profile (per task)."""

from __future__ import annotations

from typing import Any

import pytest

from adstream.infra import limits_cache
from adstream.ingest import limits_redis
from tests.infra.conftest import Synth, SynthCache

pytestmark = pytest.mark.infra

LIMITS_ENV = "ADSTREAM_API_LIMITS_URL"
LIMITS_SECRETS = {"ADSTREAM_API_LIMITS_USERNAME", "ADSTREAM_API_LIMITS_PASSWORD"}


def _container(s: Synth, name: str) -> dict[str, Any]:
    for task in s.resources("AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] == name:
                return container
    raise AssertionError(f"no container {name}")


def _service_network(s: Synth, task_hint: str) -> dict[str, Any]:
    for service in s.resources("AWS::ECS::Service").values():
        if task_hint in service["Properties"]["TaskDefinition"]["Ref"]:
            config: dict[str, Any] = service["Properties"]["NetworkConfiguration"]
            return config["AwsvpcConfiguration"]  # type: ignore[no-any-return]
    raise AssertionError(f"no service for {task_hint}")


def _service_groups(s: Synth, task_hint: str) -> list[Any]:
    return list(_service_network(s, task_hint)["SecurityGroups"])


@pytest.mark.parametrize("name", ["dev", "prod", "serverless"])
def test_a_serverless_valkey_cache_in_the_private_subnets_encrypted(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    cache = s.one("AWS::ElastiCache::ServerlessCache")
    assert cache["Engine"] == "valkey"
    assert cache["KmsKeyId"] == {"Fn::GetAtt": [_only(s, "Key", "rate-limit"), "Arn"]}
    assert cache["SubnetIds"] == _service_network(s, "ApiTask")["Subnets"]  # the private ones
    assert len(cache["SubnetIds"]) == s.profile.az_count
    assert cache["CacheUsageLimits"]["DataStorage"] == {"Unit": "GB", "Maximum": 1}
    # Serverless caches accept TLS only; the user group makes every client authenticate.
    group = s.one("AWS::ElastiCache::UserGroup")
    assert cache["UserGroupId"] == {"Ref": _logical(s, "AWS::ElastiCache::UserGroup")}
    (user_ref,) = group["UserIds"]
    user = s.template["Resources"][user_ref["Ref"]]["Properties"]
    assert user["AuthenticationMode"]["Type"] == "password"
    (password,) = user["AuthenticationMode"]["Passwords"]
    assert "resolve:secretsmanager" in str(password)  # a dynamic reference, never the value
    assert user["AccessString"] == limits_cache.ACCESS_STRING
    key = s.template["Resources"][_only(s, "Key", "rate-limit")]["Properties"]
    assert key["EnableKeyRotation"] is True


def test_the_cache_admits_6379_from_the_api_tasks_only(synth: SynthCache) -> None:
    s = synth("prod")
    cache = s.one("AWS::ElastiCache::ServerlessCache")
    (cache_sg,) = cache["SecurityGroupIds"]
    cache_sg_id = cache_sg["Fn::GetAtt"][0]
    rules = [
        r["Properties"]
        for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"]["Fn::GetAtt"][0] == cache_sg_id
    ]
    inline = s.template["Resources"][cache_sg_id]["Properties"].get("SecurityGroupIngress", [])
    assert inline == []
    (rule,) = rules
    assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (6379, 6379, "tcp")
    api_tasks = rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    api_groups = {g["Fn::GetAtt"][0] for g in _service_groups(s, "ApiTask")}
    aggregator_groups = {g["Fn::GetAtt"][0] for g in _service_groups(s, "AggregatorTask")}
    assert api_tasks in api_groups
    assert api_tasks not in aggregator_groups
    egress = s.template["Resources"][cache_sg_id]["Properties"]["SecurityGroupEgress"]
    assert all(e.get("CidrIp") == "255.255.255.255/32" for e in egress)  # none


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_api_task_gets_the_rediss_url_and_credentials_as_secrets(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    api, aggregator = _container(s, "api"), _container(s, "aggregator")
    env = {e["Name"]: e["Value"] for e in api["Environment"]}
    assert env["ADSTREAM_API_LIMITS_CLUSTER"] == "true"  # serverless is cluster mode
    url = env[LIMITS_ENV]["Fn::Join"][1]
    assert url[0] == "rediss://"  # TLS, the server's certificate verified by the client
    cache = _logical(s, "AWS::ElastiCache::ServerlessCache")
    assert url[1] == {"Fn::GetAtt": [cache, "Endpoint.Address"]}
    secrets = {item["Name"]: item["ValueFrom"] for item in api["Secrets"]}
    assert set(secrets) >= LIMITS_SECRETS
    user_secret = _only(s, "User", "rate-limit cache user", "AWS::SecretsManager::Secret")
    for name_ in LIMITS_SECRETS:
        assert user_secret in str(secrets[name_])
    assert not LIMITS_SECRETS & {i["Name"] for i in aggregator.get("Secrets", [])}
    assert LIMITS_ENV not in {e["Name"] for e in aggregator["Environment"]}


def test_turned_off_each_task_limits_on_its_own(synth: SynthCache) -> None:
    s = synth("variant")
    assert s.resources("AWS::ElastiCache::ServerlessCache") == {}
    api = _container(s, "api")
    assert not {LIMITS_ENV, "ADSTREAM_API_LIMITS_CLUSTER"} & {e["Name"] for e in api["Environment"]}
    assert not LIMITS_SECRETS & {i["Name"] for i in api["Secrets"]}
    assert {e["Name"]: e["Value"] for e in api["Environment"]}["ADSTREAM_API_AUTH"] == "keys"


def test_the_cache_user_may_run_what_the_store_runs() -> None:
    """infra imports nothing of adstream, so the access string is written twice; the local
    redis-server tests run the store under `limits_redis.ACCESS_STRING`."""
    assert limits_cache.ACCESS_STRING == limits_redis.ACCESS_STRING
    assert limits_redis.KEY_PREFIX == "adstream:"


def _logical(s: Synth, type_: str) -> str:
    (logical,) = s.resources(type_)
    return logical


def _only(s: Synth, hint: str, description: str, type_: str = "AWS::KMS::Key") -> str:
    (logical,) = [
        logical
        for logical, r in s.resources(type_).items()
        if hint in logical and description in r["Properties"].get("Description", "")
    ]
    return logical
