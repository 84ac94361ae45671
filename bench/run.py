"""Benchmarks of the ingest path on this machine, all against one local broker.

    .venv/bin/python -m bench.run [--seconds 10] [--connections 64] [--soak-seconds 120]

Prints a Markdown table: the raw librdkafka producer ceiling, single-event API req/s
with p50/p99 latency for 1 and 2 workers (closed loop: wrk, Debian package), latency at a
fixed rate of 50% and 25% of that (open loop: bench/openloop, built with Go), batch API
events/s, and RSS per worker after the runs and after a soak at full load. Each server
gets a 5 s warm-up first. Traffic stays on 127.0.0.1. Not a test: numbers depend on the
machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from tests.support.ports import free_base_port, free_port

from adstream.events import AdEvent, EventType, uuid7, wire
from adstream.kafka.factory import make_producer
from adstream.kafka.java_properties import from_java_properties
from adstream.local.broker import LocalBroker
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout

HERE = Path(__file__).parent
SINGLE_LUA = HERE / "single.lua"
POST_LUA = HERE / "post.lua"


def raw_ceiling(properties: Path, count: int) -> float:
    """Events/s of the factory's producer (idempotent, acks=all) producing AdEvents flat out."""
    producer = make_producer(from_java_properties(properties), {"linger.ms": 5})
    events = [
        AdEvent.create(
            event_id=uuid7(), ad_id=f"AD{i % 1000}", type=EventType.IMPRESSION, timestamp=1
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    for event in events:
        while True:
            try:
                producer.produce(
                    "ad-events", wire.value(event), wire.key(event), headers=wire.headers(event)
                )
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(60) == 0
    return count / (time.perf_counter() - started)


def wrk(url: str, script: Path | None, seconds: int, connections: int) -> dict[str, float]:
    # One wrk thread: it shares the 2 CPUs with the broker and the server under test.
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(
        [*cmd, "-s", str(script)] if script else cmd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses:\n{out}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
    }


def build_openloop() -> Path | None:
    """The fixed-rate load generator (bench/openloop, Rust: one thread, one epoll loop)."""
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
    if not Path(cargo).exists():
        print("cargo not found (https://rustup.rs): the open-loop latency rows are skipped")
        return None
    manifest = HERE / "openloop" / "Cargo.toml"
    cmd = [cargo, "build", "--release", "--quiet", "--locked", "--manifest-path", str(manifest)]
    subprocess.run(cmd, check=True)
    return HERE / "openloop" / "target" / "release" / "openloop"


def openloop(binary: Path, base_url: str, rate: float, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [str(binary), "-url", base_url, "-rate", f"{rate:.0f}", "-duration", f"{seconds}s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = orjson.loads(out)
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} failed responses in the open-loop run: {out}")
    return result


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def worker_rss_mb(server_pid: int) -> list[float]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
    return sizes


class Server:
    """`adstream serve` in a separate process."""

    def __init__(self, properties: Path, workers: int, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "adstream", "serve", "--kafka-config", str(properties)]
        cmd += ["--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--listener", choices=["plaintext", "tls"], default="tls")
    parser.add_argument("--soak-seconds", type=int, default=120, help="0: no memory soak")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    batch_body = orjson.dumps([{"adId": f"AD{i}"} for i in range(1000)]).decode()
    batch_lua = Path(tempfile.mkdtemp(prefix="adstream-wrk-")) / "batch.lua"
    batch_lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{batch_body}]==]\n"
    )
    rows: list[tuple[str, str]] = []
    loadgen = build_openloop()
    with tempfile.TemporaryDirectory(prefix="adstream-bench-") as tmp:
        broker = LocalBroker(BrokerLayout.at(tmp), ensure_kafka_jars(), base_port=free_base_port())
        broker.up()
        try:
            props = broker.layout.client_properties(args.listener)
            rows.append(("raw producer ceiling", f"{raw_ceiling(props, 200_000):,.0f} events/s"))
            for workers in (1, 2):
                server = Server(props, workers)
                try:
                    # Warm-up, not measured: the broker's JIT, TLS sessions, librdkafka's
                    # batches and the workers' first requests settle before the runs.
                    wrk(f"{server.url}/ads/AD1/impression", POST_LUA, 5, args.connections)
                    single = wrk(
                        f"{server.url}/ads/AD1/impression",
                        SINGLE_LUA,
                        args.seconds,
                        args.connections,
                    )
                    rows.append(
                        (
                            f"single-event API, 1000 ads, {workers} worker(s)",
                            f"{single['rps']:,.0f} req/s, p50 {single['p50']:.1f} ms, "
                            f"p99 {single['p99']:.1f} ms",
                        )
                    )
                    # The same without a Lua request() per request: wrk itself costs less CPU.
                    fixed = wrk(
                        f"{server.url}/ads/AD1/impression", POST_LUA, args.seconds, args.connections
                    )
                    rows.append(
                        (
                            f"single-event API, one ad, {workers} worker(s)",
                            f"{fixed['rps']:,.0f} req/s, p50 {fixed['p50']:.1f} ms, "
                            f"p99 {fixed['p99']:.1f} ms",
                        )
                    )
                    baseline = wrk(f"{server.url}/healthz", None, args.seconds, args.connections)
                    rows.append(
                        (
                            f"framework baseline GET /healthz (no Kafka), {workers} worker(s)",
                            f"{baseline['rps']:,.0f} req/s, p50 {baseline['p50']:.1f} ms",
                        )
                    )
                    if workers == 2 and loadgen is not None:
                        for share in (0.5, 0.25):
                            rate = fixed["rps"] * share
                            lat = openloop(loadgen, server.url, rate, args.seconds)
                            rows.append(
                                (
                                    f"open loop at {share:.0%} of that ({rate:,.0f} req/s fixed,"
                                    " 1000 ads), 2 workers",
                                    f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
                                    f"p99.9 {lat['p999_ms']:.1f} ms",
                                )
                            )
                    if workers == 2:
                        batch = wrk(f"{server.url}/events", batch_lua, args.seconds, 8)
                        rows.append(
                            (
                                "batch API (1000/request), 2 workers",
                                f"{batch['rps'] * 1000:,.0f} events/s, p50 {batch['p50']:.0f} ms",
                            )
                        )
                    rss = ", ".join(f"{mb:.0f}" for mb in worker_rss_mb(server.process.pid))
                    rows.append((f"RSS per worker after load, {workers} worker(s)", f"{rss} MiB"))
                    if workers == 2 and args.soak_seconds:
                        wrk(f"{server.url}/ads/AD1/impression", SINGLE_LUA, args.soak_seconds, 64)
                        after = ", ".join(f"{mb:.0f}" for mb in worker_rss_mb(server.process.pid))
                        rows.append(
                            (
                                f"RSS per worker after {args.soak_seconds} s more at full load",
                                f"{after} MiB (growth: compare with the row above)",
                            )
                        )
                finally:
                    server.stop()
        finally:
            broker.down()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, listener {args.listener}, "
        f"{args.connections} connections, {args.seconds} s per run\n"
    )
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
