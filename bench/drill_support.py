"""What every failure drill needs: restartable processes (the real API and aggregator), a
closed-loop client load with known event ids, and the reconciliation against Kafka and
the count database. ``bench/drills.py`` composes them into drills.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from confluent_kafka import Consumer, TopicPartition

from adstream.aggregate.store_url import open_store
from adstream.kafka.factory import consumer_config
from adstream.kafka.topics import AD_EVENTS_TOPIC
from adstream.local.client_configs import local_kafka_settings
from adstream.local.cluster import LocalCluster
from adstream.local.processes import wait_exit

READY_TIMEOUT_S = 90.0


class Service:
    """A command run in its own process group, so a SIGKILL takes its workers too."""

    proc: subprocess.Popen[bytes] | None

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        log: Path,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.name, self.cmd, self.env, self.log, self.ready = name, cmd, env, log, ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.RLock()  # a fault's kill + start and the supervisor's restart
        self.restarts = 0

    def start(self) -> None:
        with self.lock:
            self._start()

    def _start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.1)

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Signal the whole process group; SIGKILL it if it outlives ``timeout``."""
        with self.lock:
            self._kill(sig, timeout)

    def restart(self, sig: int = signal.SIGKILL) -> None:
        with self.lock:
            self._kill(sig, 30.0)
            self._start()

    def restart_if_exited(self) -> bool:
        """What a supervisor (ECS, systemd) does: start a process that ended by itself."""
        with self.lock:
            if self.proc is None or self.proc.poll() is None:
                return False
            self.restarts += 1
            self._start()
            return True

    def _kill(self, sig: int, timeout: float) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        wait_exit(self.proc.pid, 5)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def exited(self) -> bool:
        """It ended by itself (not stopped by us)."""
        return self.proc is not None and self.proc.poll() is not None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def log_has(self, text: str) -> bool:
        return self.log.exists() and text in self.log.read_text(errors="replace")


def api_service(cluster: LocalCluster, port: int, log: Path) -> Service:
    """``adstream serve`` (one worker) as ``adstream-api`` over mutual TLS to every node."""
    config = cluster.layout.client_properties("tls")
    cmd = [sys.executable, "-m", "adstream", "serve", "--kafka-config", str(config)]
    cmd += ["--port", str(port), "--workers", "1"]
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return Service("api", cmd, dict(os.environ), log, ready)


def aggregator_service(cluster: LocalCluster, db_url: str, instance: str, log: Path) -> Service:
    """``adstream aggregate`` as a user runs it on the local cluster (mutual TLS, default
    path), with static membership so a restart takes its partitions back at once."""
    env = os.environ | {"ADSTREAM_LOCAL_KAFKA_DIR": str(cluster.layout.root)}
    env.pop("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", None)
    cmd = [sys.executable, "-m", "adstream", "aggregate", "--db", db_url]
    cmd += ["--instance-id", instance, "--batch-size", "500"]
    return Service(f"aggregator {instance}", cmd, env, log)


@dataclass
class Load:
    """Clients that POST impressions and clicks with an ``Idempotency-Key`` each, and retry
    a key (same key, so the same event id) after a 503 or a broken connection until a 2xx.

    ``acked`` maps each acknowledged event id to the (adId, type) it was sent for;
    ``answers`` holds (sent, answered, status; 0 = no answer) for every attempt.
    """

    url: str
    prefix: str
    clients: int = 8
    ads: int = 12
    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    issued: int = 0
    unfinished: int = 0
    refused_without_retry_after: int = 0
    started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _drain_deadline: float = 0.0

    def start(self) -> Load:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 90.0) -> None:
        """No new keys; wait up to ``drain_s`` for the keys in flight to be acknowledged."""
        self._drain_deadline = time.monotonic() + drain_s
        self._stop.set()
        if self._thread is not None:
            self._thread.join(drain_s + 30)

    def ads_of_drill(self) -> list[str]:
        return [f"{self.prefix}{n}" for n in range(self.ads)]

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            n = self.issued
            self.issued += 1
            ad, kind = f"{self.prefix}{n % self.ads}", "click" if n % 5 == 0 else "impression"
            if not await self._until_acked(client, ad, kind, f"{self.prefix}-{n}"):
                self.unfinished += 1

    async def _until_acked(self, client: httpx.AsyncClient, ad: str, kind: str, key: str) -> bool:
        while True:
            sent = time.monotonic()
            try:
                answer = await client.post(
                    f"{self.url}/ads/{ad}/{kind}", headers={"Idempotency-Key": key}
                )
                status = answer.status_code
            except httpx.TransportError:
                status, answer = 0, None
            self.answers.append((sent, time.monotonic(), status))
            if status == 503 and answer is not None and "retry-after" not in answer.headers:
                self.refused_without_retry_after += 1
            if answer is not None and 200 <= status < 300:
                self.acked[answer.headers["x-event-id"]] = (ad, kind)
                return True
            if self._stop.is_set() and time.monotonic() > self._drain_deadline:
                return False
            retry_after = float(answer.headers.get("retry-after", 0.2)) if answer else 0.2
            await asyncio.sleep(min(retry_after, 1.0))


@dataclass(frozen=True)
class Reconciliation:
    acked: int
    missing_in_kafka: int
    """Acknowledged event ids that are not in ``ad-events`` (must be 0)."""
    altered_in_kafka: int
    """Acknowledged ids whose record names another ad or type (must be 0)."""
    unacked_in_kafka: int
    """Ids in Kafka that no client saw acknowledged (a 503 after the write; 0 once every
    client retried to a 2xx)."""
    lost_in_db: int
    counted_twice: int

    @property
    def exact(self) -> bool:
        return not (
            self.missing_in_kafka
            or self.altered_in_kafka
            or self.unacked_in_kafka
            or self.lost_in_db
            or self.counted_twice
        )


def topic_ends(cluster: LocalCluster, topic: str = AD_EVENTS_TOPIC) -> dict[int, int]:
    """Each partition's high watermark: where a drill's records begin."""
    consumer = _reader(cluster)
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def _reader(cluster: LocalCluster) -> Consumer:
    settings = local_kafka_settings(cluster.layout, cluster.ports, "admin")
    config = consumer_config(settings, "adstream-drill-reader", {"enable.auto.commit": False})
    return Consumer(dict(config))


def records_since(
    cluster: LocalCluster, starts: dict[int, int], prefix: str
) -> dict[str, tuple[str, str]]:
    """Event id -> (adId, type) of the drill's records written after ``starts``."""
    ends = topic_ends(cluster)
    consumer = _reader(cluster)
    found: dict[str, tuple[str, str]] = {}
    try:
        wanted = {p: o for p, o in starts.items() if ends[p] > o}
        consumer.assign([TopicPartition(AD_EVENTS_TOPIC, p, o) for p, o in wanted.items()])
        deadline = time.monotonic() + 60
        while wanted and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            body = orjson.loads(message.value() or b"{}")
            if str(body.get("adId", "")).startswith(prefix):
                found[str(body["eventId"])] = (body["adId"], body["type"])
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                wanted.pop(partition, None)
        if wanted:
            raise RuntimeError(f"could not read partitions {sorted(wanted)} to their end")
    finally:
        consumer.close()
    return found


def db_counts(db_url: str, prefix: str) -> Counter[str]:
    """Impressions + clicks per ad of the drill, as the aggregator counted them (empty while
    the database does not answer)."""
    try:
        store = open_store(db_url)
    except Exception:
        return Counter()
    try:
        counts: Counter[str] = Counter()
        for ad, _minute, impressions, clicks in store.totals():
            if ad.startswith(prefix):
                counts[ad] += impressions + clicks
        return counts
    finally:
        store.close()


def reconcile(
    cluster: LocalCluster, starts: dict[int, int], load: Load, db_url: str, wait_s: float = 120
) -> Reconciliation:
    """Compare what clients were acknowledged with Kafka, then (once the aggregator has
    caught up, or after ``wait_s``) with the database."""
    in_kafka = records_since(cluster, starts, load.prefix)
    missing = [i for i in load.acked if i not in in_kafka]
    altered = [i for i, sent in load.acked.items() if i in in_kafka and in_kafka[i] != sent]
    expected = Counter(ad for ad, _kind in in_kafka.values())
    deadline = time.monotonic() + wait_s
    counted = db_counts(db_url, load.prefix)
    while counted != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        counted = db_counts(db_url, load.prefix)
    ads = set(expected) | set(counted)
    return Reconciliation(
        acked=len(load.acked),
        missing_in_kafka=len(missing),
        altered_in_kafka=len(altered),
        unacked_in_kafka=len(set(in_kafka) - set(load.acked)),
        lost_in_db=sum(max(0, expected[a] - counted[a]) for a in ads),
        counted_twice=sum(max(0, counted[a] - expected[a]) for a in ads),
    )
