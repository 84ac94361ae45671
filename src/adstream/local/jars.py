"""Apache Kafka's broker jars, resolved from Maven Central once and cached.

The broker is the ``org.apache.kafka:kafka_2.13`` artifact plus its runtime
dependencies. Its POM leaves the logging binding to the application (Kafka 4
logs through log4j2 via SLF4J 2), so ours adds ``log4j-slf4j2-impl`` and a
matching ``slf4j-api`` (``maven_pom.LOGGING``). ``mvn dependency:copy-dependencies`` puts every
jar in one folder that becomes the broker's classpath.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adstream.local.maven_pom import LOGGING, Dependency, render_pom
from adstream.local.toolchain import ToolchainError, find_maven

KAFKA_VERSION = "4.1.1"
# Pinned: Maven 3.8 would otherwise pick the plugin version of 2013.
COPY_DEPENDENCIES = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

ProgressFn = Callable[[str], None]


_DOWNLOADED = re.compile(r"Downloaded from \S+: (\S+) \(([\d.]+) ([kMG]?B)")
_UNITS = {"B": 1, "kB": 1_000, "MB": 1_000_000, "GB": 1_000_000_000}


class JarFetchError(RuntimeError):
    """Maven could not resolve the broker's jars; the message carries Maven's own words."""


def default_cache_dir() -> Path:
    """``$ADSTREAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/adstream``, else ``~/.cache/adstream``."""
    explicit = os.environ.get("ADSTREAM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "adstream"


@dataclass(frozen=True)
class KafkaDistribution:
    """A cached set of broker jars for one Kafka version."""

    version: str
    home: Path

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    @property
    def classpath(self) -> str:
        return str(self.lib_dir / "*")

    @property
    def complete_marker(self) -> Path:
        return self.home / ".complete"

    def is_installed(self) -> bool:
        return self.complete_marker.exists() and any(self.lib_dir.glob("kafka_2.13-*.jar"))


def distribution(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> KafkaDistribution:
    return KafkaDistribution(version, (cache_dir or default_cache_dir()) / f"kafka-{version}")


def ensure_kafka_jars(
    version: str = KAFKA_VERSION,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> KafkaDistribution:
    """Return the cached distribution, fetching it with Maven the first time.

    The jars land in a temporary folder that is renamed into place only when
    Maven succeeds, so an interrupted download never looks installed.
    """
    dist = distribution(version, cache_dir)
    if dist.is_installed():
        return dist
    say = progress or (lambda _msg: None)
    mvn = find_maven()
    staging = dist.home.with_name(dist.home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "pom.xml").write_text(
        render_pom(
            "kafka-broker-runtime",
            version,
            (Dependency("org.apache.kafka", "kafka_2.13", version), *LOGGING),
        )
    )
    say(f"Fetching Apache Kafka {version} jars from Maven Central (first time only)")
    run_maven(mvn, staging, say)
    shutil.rmtree(dist.home, ignore_errors=True)
    staging.rename(dist.home)
    dist.complete_marker.write_text(version + "\n")
    jars = sorted(dist.lib_dir.glob("*.jar"))
    size = sum(j.stat().st_size for j in jars) / 1e6
    say(f"Kafka {version}: {len(jars)} jars ({size:.1f} MB) in {dist.lib_dir}")
    return dist


def run_maven(
    mvn: Path, workdir: Path, say: ProgressFn, *extra: str, what: str = "Apache Kafka's jars"
) -> None:
    """Run ``copy-dependencies`` on ``workdir/pom.xml`` into ``workdir/lib``, reporting each jar.

    ``what`` names the jars in the error message (the broker's, Kafka Connect's, a plugin's).
    """
    cmd = [
        str(mvn),
        "--batch-mode",
        "-f",
        str(workdir / "pom.xml"),
        COPY_DEPENDENCIES,
        "-DincludeScope=runtime",
        f"-DoutputDirectory={workdir / 'lib'}",
        *extra,
    ]
    tail: list[str] = []
    files, total = 0, 0.0
    try:
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except OSError as exc:  # pragma: no cover - find_maven checked it exists
        raise ToolchainError(f"could not run {mvn}: {exc}") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail[-40:], line.rstrip()]
        match = _DOWNLOADED.search(line)
        if match:
            files += 1
            total += float(match.group(2)) * _UNITS.get(match.group(3), 1)
            if match.group(1).endswith(".jar"):
                name = match.group(1).rsplit("/", 1)[-1]
                say(f"  [{files:3d} files, {total / 1e6:5.1f} MB] {name}")
    if proc.wait() != 0:
        errors = [line for line in tail if "ERROR" in line] or tail[-15:]
        raise JarFetchError(f"Maven could not fetch {what}:\n" + "\n".join(errors[-15:]))
