"""Benchmarks of the ingest path on this machine, all against one local broker.

    .venv/bin/python -m bench.run [--seconds 10] [--connections 64] [--soak-seconds 120]
                                  [--write bench/RESULTS.md]

Prints a Markdown table, each row beside the baseline measured in the same run and the
ratio to it: the raw librdkafka producer ceiling (the API's producer settings, and
`linger.ms=5`), a hello-world Granian server (same workers, no Kafka, `bench/hello.py`),
the Kafka floor (`bench/probe.py`: produce, answer after the ack, nothing else; the same
closed- and open-loop runs), single-event API req/s with p50/p99 latency for 1 and 2
workers (closed loop: wrk, Debian package), latency at a fixed rate of 50% and 25% of
that (open loop: `bench/openloop`, built with cargo; its own CPU per request is shown),
batch API events/s against the producer ceiling, and RSS per worker after the runs and
after a soak at full load. Each server gets a 10 s warm-up first (one ad, then 1000).
Traffic stays on 127.0.0.1. `--write` replaces this table's section of the given Markdown
file (between `<!-- bench.run -->` markers). Not a test: numbers depend on the machine
and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from bench.probe import PROPERTIES_ENV as PROBE_PROPERTIES_ENV
from tests.support.ports import free_base_port, free_port

from adstream.events import AdEvent, EventType, uuid7, wire
from adstream.ingest.config import ApiSettings
from adstream.kafka.factory import make_producer
from adstream.kafka.java_properties import from_java_properties
from adstream.local.broker import LocalBroker
from adstream.local.jars import ensure_kafka_jars
from adstream.local.layout import BrokerLayout

HERE = Path(__file__).parent
SINGLE_LUA = HERE / "single.lua"
POST_LUA = HERE / "post.lua"
BATCH_EVENTS = 1000


def raw_ceiling(properties: Path, count: int, overrides: dict[str, object]) -> float:
    """Events/s of the factory's producer (idempotent, acks=all) producing AdEvents flat out.

    The events exist beforehand; encoding (value, key, headers) is timed, as in the API.
    """
    producer = make_producer(from_java_properties(properties), overrides)
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
    """Latency percentiles at a fixed rate, and the generator's own CPU µs per request."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [str(binary), "-url", base_url, "-rate", f"{rate:.0f}", "-duration", f"{seconds}s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, float] = orjson.loads(out)
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} failed responses in the open-loop run: {out}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    result["cpu_us_per_request"] = cpu / result["sent"] * 1e6
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
    """`adstream serve`, or a baseline app under the same Granian settings: `hello` (no
    Kafka, bench/hello.py) or `probe` (the least a server can do per acked POST,
    bench/probe.py)."""

    def __init__(self, properties: Path | None, workers: int, app: str = "adstream") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hot_url = f"{self.url}/ads/AD1/impression"
        env = dict(os.environ)
        if app in ("hello", "probe"):  # the same Granian settings as `adstream serve`
            cmd = [sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop"]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
            cmd += ["--no-access-log", f"bench.{app}:app"]
            ready = f"{self.url}/ads/AD1/impression"
            if app == "probe":
                env[PROBE_PROPERTIES_ENV] = str(properties)
        else:
            cmd = [sys.executable, "-m", "adstream", "serve", "--kafka-config", str(properties)]
            cmd += ["--port", str(self.port), "--workers", str(workers)]
            ready = f"{self.url}/readyz"
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=HERE.parent, env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ok = httpx.post(ready, timeout=2) if app == "probe" else httpx.get(ready, timeout=2)
                if ok.status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


Row = tuple[str, str, str, str]
"""measurement, result, baseline (same run), ratio."""


def _latency(run: dict[str, float]) -> str:
    return f"{run['rps']:,.0f} req/s, p50 {run['p50']:.1f} ms, p99 {run['p99']:.1f} ms"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.0%}" if baseline else "-"


def _rss(server: Server) -> str:
    return ", ".join(f"{mb:.0f}" for mb in worker_rss_mb(server.process.pid)) + " MiB"


OPEN_LOOP_SHARES = (0.5, 0.25)


@dataclass
class Floor:
    """The Kafka floor's runs (bench/probe.py): closed loop, and open loop at given rates."""

    single: dict[str, float]
    fixed: dict[str, float]
    opened: list[dict[str, float]]


def _warm_up(server: Server, connections: int) -> None:
    """Not measured: the broker's JIT, TLS sessions, librdkafka's batches for one and for
    all six partitions, and the workers' first requests settle before the runs (the first
    1000-ad run on a fresh broker was once half as fast as the next)."""
    wrk(server.hot_url, POST_LUA, 5, connections)
    wrk(server.hot_url, SINGLE_LUA, 5, connections)


def _hello(workers: int, args: argparse.Namespace) -> dict[str, float]:
    server = Server(None, workers, app="hello")
    try:
        wrk(server.hot_url, POST_LUA, 5, args.connections)
        return wrk(server.hot_url, POST_LUA, args.seconds, args.connections)
    finally:
        server.stop()


def _probe(
    props: Path,
    workers: int,
    args: argparse.Namespace,
    loadgen: Path | None,
    rates: list[float],
) -> Floor:
    """The same runs against bench/probe.py (open loop at the API's rates, when given)."""
    server = Server(props, workers, app="probe")
    try:
        _warm_up(server, args.connections)
        single = wrk(server.hot_url, SINGLE_LUA, args.seconds, args.connections)
        fixed = wrk(server.hot_url, POST_LUA, args.seconds, args.connections)
        opened = []
        if loadgen is not None:
            opened = [openloop(loadgen, server.url, rate, args.seconds) for rate in rates]
        return Floor(single, fixed, opened)
    finally:
        server.stop()


def _open_latency(run: dict[str, float]) -> str:
    return f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, p99.9 {run['p999_ms']:.1f} ms"


def measure(args: argparse.Namespace, props: Path, loadgen: Path | None) -> list[Row]:
    """Every row of the table, each beside the baseline it is compared with."""
    rows: list[Row] = []
    api_settings = ApiSettings().producer_overrides()
    ceiling = raw_ceiling(props, 200_000, api_settings)
    linger = api_settings["linger.ms"]
    rows.append(
        (
            f"raw producer ceiling (the API's settings, linger.ms={linger})",
            f"{ceiling:,.0f} events/s",
            "",
            "",
        )
    )
    lingering = raw_ceiling(props, 200_000, {**api_settings, "linger.ms": 5})
    rows.append(
        (
            "raw producer, linger.ms=5",
            f"{lingering:,.0f} events/s",
            "",
            f"{_ratio(lingering, ceiling)} of the ceiling",
        )
    )
    batch_lua = Path(tempfile.mkdtemp(prefix="adstream-wrk-")) / "batch.lua"
    batch_body = orjson.dumps([{"adId": f"AD{i}"} for i in range(BATCH_EVENTS)]).decode()
    batch_lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{batch_body}]==]\n"
    )
    for workers in (1, 2):
        hello = _hello(workers, args)
        base = f"hello world: {hello['rps']:,.0f} req/s, p99 {hello['p99']:.1f} ms"
        rows.append(
            (f"hello-world Granian RSGI, no Kafka, {workers} worker(s)", _latency(hello), "", "")
        )
        server = Server(props, workers)
        try:
            _warm_up(server, args.connections)
            single = wrk(server.hot_url, SINGLE_LUA, args.seconds, args.connections)
            # The same without a Lua request() per request: wrk itself costs less CPU.
            fixed = wrk(server.hot_url, POST_LUA, args.seconds, args.connections)
            health = wrk(f"{server.url}/healthz", None, args.seconds, args.connections)
            rates = [single["rps"] * share for share in OPEN_LOOP_SHARES]
            opened = []
            if workers == 2 and loadgen is not None:
                opened = [openloop(loadgen, server.url, rate, args.seconds) for rate in rates]
            batch = None
            if workers == 2:
                batch = wrk(f"{server.url}/events", batch_lua, args.seconds, 8)
            rss = _rss(server)
            soaked = None
            if workers == 2 and args.soak_seconds:
                wrk(server.hot_url, SINGLE_LUA, args.soak_seconds, args.connections)
                soaked = _rss(server)
        finally:
            server.stop()
        floor = _probe(props, workers, args, loadgen if opened else None, rates)
        for name, run, least in (
            ("1000 ads", single, floor.single),
            ("one ad", fixed, floor.fixed),
        ):
            rows.append(
                (
                    f"Kafka floor (bench/probe.py: produce, answer after the ack), {name}, "
                    f"{workers} worker(s)",
                    _latency(least),
                    base,
                    _ratio(least["rps"], hello["rps"]),
                )
            )
            rows.append(
                (
                    f"single-event API, {name}, {workers} worker(s)",
                    _latency(run),
                    f"{base}; Kafka floor: {least['rps']:,.0f} req/s, p99 {least['p99']:.1f} ms",
                    f"{_ratio(run['rps'], hello['rps'])} of hello world, "
                    f"{_ratio(run['rps'], least['rps'])} of the floor",
                )
            )
        rows.append(
            (
                f"framework route GET /healthz (no Kafka), {workers} worker(s)",
                _latency(health),
                base,
                _ratio(health["rps"], hello["rps"]),
            )
        )
        top = max(single["rps"], fixed["rps"])
        runs = zip(OPEN_LOOP_SHARES, rates, opened, floor.opened, strict=True) if opened else []
        for share, rate, lat, least in runs:
            rows.append(
                (
                    f"open loop at {share:.0%} of max ({rate:,.0f} req/s fixed, 1000 ads), "
                    "2 workers",
                    f"{_open_latency(lat)} (generator: "
                    f"{lat['cpu_us_per_request']:.0f} µs CPU/request)",
                    f"max {single['rps']:,.0f} req/s (1000 ads; one ad {top:,.0f}); "
                    f"Kafka floor at this rate: {_open_latency(least)}",
                    f"target p99 ≤ 3 ms: {'met' if lat['p99_ms'] <= 3 else 'not met'}",
                )
            )
        if batch is not None:
            events_per_s = batch["rps"] * BATCH_EVENTS
            rows.append(
                (
                    f"batch API ({BATCH_EVENTS}/request, wrk -c8), 2 workers",
                    f"{events_per_s:,.0f} events/s, p50 {batch['p50']:.0f} ms",
                    f"raw producer ceiling {ceiling:,.0f} events/s",
                    f"{_ratio(events_per_s, ceiling)} (target ≥ 70%); "
                    f"{_ratio(events_per_s, lingering)} of the linger.ms=5 run",
                )
            )
        rows.append((f"RSS per worker after load, {workers} worker(s)", rss, "", ""))
        if soaked is not None:
            rows.append(
                (
                    f"RSS per worker after {args.soak_seconds} s more at full load",
                    soaked,
                    "",
                    "growth: compare with the row above",
                )
            )
    return rows


def write_section(path: Path, marker: str, text: str) -> None:
    """Replace the lines between the lines `<!-- marker -->` and `<!-- /marker -->` (or add
    them under the title). Only markers alone on their line count, not ones quoted in prose.
    """
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    old = path.read_text() if path.exists() else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    found = re.search(rf"^{re.escape(start)}$.*?^{re.escape(end)}$", old, re.M | re.S)
    if found:
        new = old[: found.start()] + block + old[found.end() :]
    else:
        title, _, rest = old.partition("\n")
        new = f"{title}\n\n{block}\n{rest}" if old else block + "\n"
    path.write_text(new)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB RAM, Linux "
        f"{platform.release()}, Python {platform.python_version()}; load average before "
        f"the run {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--listener", choices=["plaintext", "tls"], default="tls")
    parser.add_argument("--soak-seconds", type=int, default=120, help="0: no memory soak")
    parser.add_argument("--write", type=Path, help="a Markdown file to put the table in")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    described = machine()
    loadgen = build_openloop()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="adstream-bench-") as tmp:
        broker = LocalBroker(BrokerLayout.at(tmp), ensure_kafka_jars(), base_port=free_base_port())
        broker.up()
        try:
            rows = measure(args, broker.layout.client_properties(args.listener), loadgen)
        finally:
            broker.down()
    lines = [
        f"`python -m bench.run` of {started}: {described}. Listener {args.listener}, "
        f"{args.connections} connections, {args.seconds} s per run; broker, servers and load "
        "generators share the CPUs.",
        "",
        "| measurement | result | baseline (same run) | ratio |",
        "|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    print("\n".join(lines))
    if args.write:
        write_section(args.write, "bench.run", "\n".join(lines))


if __name__ == "__main__":
    main()
