"""A three-node local cluster: shifted ports, a three-voter quorum, MSK's replication, one
certificate per node naming its host, and the cluster overlay of deploy/kafka.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from adstream.kafka.topics import AD_EVENTS_TOPIC, DEAD_LETTER_TOPIC
from adstream.local.broker import LocalBroker
from adstream.local.certs import ensure_certificates
from adstream.local.cluster import active_controller
from adstream.local.jars import KafkaDistribution
from adstream.local.layout import BrokerLayout, Listener, Ports
from adstream.local.provision import local_desired_state
from adstream.local.server_config import request_threads, server_properties


def test_each_node_shifts_its_ports_by_ten_and_clients_bootstrap_from_all() -> None:
    ports = Ports(9092, nodes=3)
    assert [ports.node(n).of(Listener.SSL) for n in (1, 2, 3)] == [9094, 9104, 9114]
    assert ports.bootstrap(Listener.SSL) == "127.0.0.1:9094,127.0.0.1:9104,127.0.0.1:9114"
    assert len(set(ports.every_port())) == 15  # 4 listeners + the metrics port, per node
    assert ports.metrics_targets() == ["127.0.0.1:9101", "127.0.0.1:9111", "127.0.0.1:9121"]
    assert Ports(9092).bootstrap(Listener.SSL) == "127.0.0.1:9094"  # one broker: unchanged


def test_the_highest_base_port_leaves_room_for_every_node() -> None:
    with pytest.raises(ValueError, match="out of range"):
        Ports(65531, nodes=3)


def test_every_node_votes_and_replicates_like_msk(tmp_path: Path) -> None:
    layout = BrokerLayout.at(tmp_path)
    props = server_properties(layout.node(2), Ports(9092, nodes=3), "pw")
    assert props["node.id"] == "2"
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113"
    )
    assert "SSL://127.0.0.1:9104" in props["advertised.listeners"]
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["min.insync.replicas"] == "2"
    assert props["log.dirs"] == str(tmp_path / "node-2" / "data")
    assert props["ssl.keystore.location"] == str(tmp_path / "certs" / "broker-2.p12")


def test_one_broker_keeps_its_single_voter_and_one_replica(tmp_path: Path) -> None:
    props = server_properties(BrokerLayout.at(tmp_path), Ports(9092), "pw")
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["ssl.keystore.location"] == str(tmp_path / "certs" / "broker.p12")


def test_nodes_share_the_ca_and_clients_but_each_has_a_certificate_naming_it(
    tmp_path: Path,
) -> None:
    layout = BrokerLayout.at(tmp_path)
    for n in (1, 2):
        ensure_certificates(layout.node(n), "pw")
    assert layout.node(1).ca_pem() == layout.ca_pem()
    assert layout.node(2).cert_pem("adstream-api") == layout.cert_pem("adstream-api")
    names = []
    for n in (1, 2):
        loaded = pkcs12.load_pkcs12(layout.node(n).broker_keystore().read_bytes(), b"pw")
        assert loaded.cert is not None
        san = loaded.cert.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        names.append(set(san.get_values_for_type(x509.DNSName)))
    assert names == [{"localhost", "b-1.localhost"}, {"localhost", "b-2.localhost"}]


def test_the_cluster_overlay_restores_replication_three_and_min_isr_two() -> None:
    single = local_desired_state()
    cluster = local_desired_state(brokers=3)
    for topic in (AD_EVENTS_TOPIC, DEAD_LETTER_TOPIC):
        assert single.topics[topic].replication_factor == 1
        assert cluster.topics[topic].replication_factor == 3
        assert cluster.topics[topic].configs["min.insync.replicas"] == "2"
    assert cluster.acls == single.acls


def _nodes_with_quorum_state(root: Path, states: dict[int, tuple[int, int]]) -> list[LocalBroker]:
    """Nodes whose ``quorum-state`` files name (leader, epoch)."""
    layout = BrokerLayout.at(root)
    nodes = []
    for node_id, (leader, epoch) in states.items():
        node = LocalBroker(layout.node(node_id), KafkaDistribution("4.1.1", root / "k"), nodes=3)
        folder = node.layout.data_dir / "__cluster_metadata-0"
        folder.mkdir(parents=True)
        state = {"leaderId": leader, "leaderEpoch": epoch, "votedId": -1}
        (folder / "quorum-state").write_text(json.dumps(state))
        nodes.append(node)
    return nodes


def test_the_active_controller_is_the_leader_of_the_newest_epoch(tmp_path: Path) -> None:
    nodes = _nodes_with_quorum_state(tmp_path, {1: (3, 4), 2: (2, 5), 3: (3, 4)})
    assert active_controller(nodes) == 2


def test_a_leader_that_is_not_running_is_not_the_active_controller(tmp_path: Path) -> None:
    nodes = _nodes_with_quorum_state(tmp_path, {1: (3, 4), 2: (3, 4), 3: (3, 4)})
    assert active_controller(nodes[:2]) is None  # node 3 was killed; no new election yet
    assert active_controller([]) is None


@pytest.mark.parametrize(
    ("cpus", "network", "io"), [(1, "1", "2"), (2, "1", "2"), (4, "2", "4"), (16, "3", "8")]
)
def test_request_threads_follow_the_cpus_up_to_kafkas_defaults(
    cpus: int, network: str, io: str
) -> None:
    assert request_threads(cpus) == {"num.network.threads": network, "num.io.threads": io}


def test_the_broker_starts_with_its_whole_heap(tmp_path: Path) -> None:
    broker = LocalBroker(BrokerLayout.at(tmp_path), KafkaDistribution("4.1.1", tmp_path / "k"))
    cmd = broker._java("kafka.Kafka", "server.properties", heap_mb=384)
    assert "-Xmx384m" in cmd
    assert "-Xms384m" in cmd
