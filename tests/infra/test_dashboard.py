"""The CloudWatch dashboard: MSK health per profile, consumer lag, ECS services, the alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth, SynthCache

pytestmark = pytest.mark.infra

LAG = ("EstimatedMaxTimeLag", "MaxOffsetLag")
BROKER_METRICS = (
    "CpuUser",
    "CpuSystem",
    "KafkaDataLogsDiskUsed",
    "BytesInPerSec",
    "BytesOutPerSec",
    "UnderReplicatedPartitions",
)


def _body(s: Synth) -> dict[str, Any]:
    """The dashboard's JSON, with each CloudFormation reference replaced by a marker."""
    props = s.one("AWS::CloudWatch::Dashboard")
    body = props["DashboardBody"]
    if isinstance(body, str):
        return dict(json.loads(body))
    parts = body["Fn::Join"][1]
    return dict(json.loads("".join(p if isinstance(p, str) else "<ref>" for p in parts)))


def _metrics(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, name, dimensions) of each metric row of a graph widget."""
    out = []
    for row in widget["properties"].get("metrics", []):
        fields = [f for f in row if not isinstance(f, dict)]
        if len(fields) < 2 or fields[0] == ".":
            continue  # an expression row
        namespace, name, *dims = fields
        out.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True))))
    return out


def _graphs(body: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, str]]]]:
    return {
        w["properties"]["title"]: _metrics(w)
        for w in body["widgets"]
        if w["type"] == "metric" and "metrics" in w["properties"]
    }


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_provisioned_dashboard_graphs_every_broker_and_shows_the_alarms(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    body = _body(s)
    graphs = _graphs(body)
    cluster, brokers = s.profile.cluster.name, s.profile.cluster.broker_count
    every = [m for ms in graphs.values() for m in ms]
    for metric in BROKER_METRICS:
        seen = {
            d["Broker ID"] for ns, n, d in every if n == metric and d["Cluster Name"] == cluster
        }
        assert seen == {str(b) for b in range(1, brokers + 1)}, metric
        assert all(ns == "AWS/Kafka" for ns, n, _ in every if n == metric)
    for metric in ("OfflinePartitionsCount", "ActiveControllerCount"):
        assert ("AWS/Kafka", metric, {"Cluster Name": cluster}) in every
    (controllers,) = [
        row[-1]
        for w in body["widgets"]
        for row in w["properties"].get("metrics", [])
        if "ActiveControllerCount" in row
    ]
    assert (controllers["stat"], controllers["period"]) == ("Sum", 60)  # 1 when healthy
    _assert_lag_and_ecs(s, every)
    # The alarm status widget lists every alarm of the stack.
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(status["properties"]["alarms"]) == len(s.resources("AWS::CloudWatch::Alarm"))
    assert len(status["properties"]["alarms"]) == 3 * brokers + 1
    # Graphs say their units.
    cpu = next(
        w for w in body["widgets"] if w["properties"].get("title", "").startswith("Broker CPU")
    )
    assert cpu["properties"]["yAxis"]["left"]["label"] == "%"
    assert (
        cpu["properties"]["annotations"]["horizontal"][0]["value"] == s.profile.alarms.cpu_percent
    )


def test_serverless_dashboard_has_only_metrics_serverless_publishes(synth: SynthCache) -> None:
    s = synth("serverless")
    body = _body(s)
    every = [m for ms in _graphs(body).values() for m in ms]
    kafka = {n for ns, n, _ in every if ns == "AWS/Kafka"}
    assert kafka == {"BytesInPerSec", "BytesOutPerSec", *LAG}
    topic = {"Cluster Name": s.profile.cluster.name, "Topic": s.profile.topic.name}
    assert ("AWS/Kafka", "BytesInPerSec", topic) in every
    assert not any("Broker ID" in d for _, _, d in every)
    assert not [w for w in body["widgets"] if w["type"] == "alarm"]  # no alarms to show
    _assert_lag_and_ecs(s, every)


def _assert_lag_and_ecs(s: Synth, every: list[tuple[str, str, dict[str, str]]]) -> None:
    containers = [
        c
        for task in s.resources("AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
        if c["Name"] == "aggregator"
    ]
    env = {e["Name"]: e["Value"] for e in containers[0]["Environment"]}
    group = env["ADSTREAM_AGGREGATE_GROUP"]  # the lag is the group the aggregator really uses
    lag_dims = {
        "Cluster Name": s.profile.cluster.name,
        "Consumer Group": group,
        "Topic": s.profile.topic.name,
    }
    for metric in LAG:
        assert ("AWS/Kafka", metric, lag_dims) in every
    for metric in ("CPUUtilization", "MemoryUtilization"):
        ecs = [d for ns, n, d in every if ns == "AWS/ECS" and n == metric]
        assert len(ecs) == 2, metric
        assert all(set(d) == {"ClusterName", "ServiceName"} for d in ecs)
