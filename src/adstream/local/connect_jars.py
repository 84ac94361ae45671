"""Kafka Connect and the Apache Iceberg sink plugin, resolved from Maven Central once and cached.

The worker is ``org.apache.kafka:connect-runtime`` (same Kafka version as the broker) with
the broker's logging (SLF4J 2 + the log4j2 binding). Apache Iceberg publishes no connector
runtime ZIP to Maven Central, so the plugin folder is assembled from its parts:
``iceberg-kafka-connect`` (+ ``-events``, ``-transforms``), ``iceberg-parquet``,
``hadoop-common`` (Iceberg's default file IO and Parquet's configuration classes, without
its web server, ZooKeeper and Kerberos extras) and the SQLite JDBC driver for the local
JDBC catalog. The plugin lives in its own folder on ``plugin.path``, so Connect loads it in
an isolated class loader. Iceberg 1.12.0 is the newest release that resolves here; it keeps
the sink's offsets from going backwards (apache/iceberg #17552).
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from adstream.local.jars import KAFKA_VERSION, ProgressFn, default_cache_dir, run_maven
from adstream.local.maven_pom import LOGGING, Dependency, render_pom
from adstream.local.toolchain import find_maven

ICEBERG_VERSION = "1.12.0"
JACKSON_VERSION = "2.19.0"
"""connect-runtime 4.1.1's Jackson, for the YAML module log4j2 needs."""
HADOOP_VERSION = "3.4.2"
MSK_IAM_AUTH_VERSION = "2.3.2"
SQLITE_JDBC_VERSION = "3.51.1.0"
PLUGIN_NAME = "iceberg"


# Hadoop's server side (Jetty, Jersey, ZooKeeper, Kerberos server) and its logging bindings
# are not needed to read and write local or S3 files; the worker provides SLF4J.
_HADOOP_EXCLUSIONS = (
    "org.eclipse.jetty",
    "com.sun.jersey",
    "org.apache.zookeeper",
    "org.apache.curator",
    "org.apache.kerby",
    "ch.qos.reload4j",
    "org.slf4j",
    "log4j",
    "com.jcraft",
    "io.netty",
    "javax.servlet",
    "javax.servlet.jsp",
    "com.github.pjfanning",
    "dnsjava",
)


_ICEBERG_ARTIFACTS = (
    "iceberg-kafka-connect",
    "iceberg-kafka-connect-events",
    "iceberg-kafka-connect-transforms",
    "iceberg-parquet",
)


def worker_pom(kafka: str = KAFKA_VERSION) -> str:
    yaml = Dependency(
        "com.fasterxml.jackson.dataformat",
        "jackson-dataformat-yaml",
        JACKSON_VERSION,
        comment="log4j2 reads its YAML configuration with it (the broker gets it from kafka_2.13)",
    )
    runtime = Dependency("org.apache.kafka", "connect-runtime", kafka)
    return render_pom("kafka-connect-runtime", kafka, (runtime, *LOGGING, yaml))


def plugin_pom(iceberg: str = ICEBERG_VERSION, *, aws: bool = False) -> str:
    """The plugin's POM: locally with the SQLite JDBC driver, for MSK Connect (``aws``) with
    the AWS bundle and ``aws-msk-iam-auth`` instead."""
    parts = tuple(Dependency("org.apache.iceberg", name, iceberg) for name in _ICEBERG_ARTIFACTS)
    # On AWS: Glue catalog + S3FileIO (Iceberg's shaded AWS SDK bundle), and IAM auth for the
    # sink's own control-topic clients (MSK Connect authenticates only its own clients).
    catalog = (
        (
            Dependency("org.apache.iceberg", "iceberg-aws-bundle", iceberg),
            Dependency(
                "software.amazon.msk",
                "aws-msk-iam-auth",
                MSK_IAM_AUTH_VERSION,
                classifier="all",
                excluded_groups=("*",),
            ),
        )
        if aws
        else (Dependency("org.xerial", "sqlite-jdbc", SQLITE_JDBC_VERSION),)
    )
    hadoop = Dependency(
        "org.apache.hadoop",
        "hadoop-common",
        HADOOP_VERSION,
        excluded_groups=_HADOOP_EXCLUSIONS,
        excluded_artifacts=(("org.apache.avro", "avro"),),
    )
    return render_pom("iceberg-kafka-connect-plugin", iceberg, (*parts, *catalog, hadoop))


@dataclass(frozen=True)
class ConnectDistribution:
    """A cached Kafka Connect worker (``lib/``) and Iceberg plugin (``plugins/iceberg/``)."""

    kafka_version: str
    iceberg_version: str
    home: Path

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    @property
    def plugin_path(self) -> Path:
        """The worker's ``plugin.path``: one folder per plugin below it."""
        return self.home / "plugins"

    @property
    def plugin_dir(self) -> Path:
        return self.plugin_path / PLUGIN_NAME

    @property
    def classpath(self) -> str:
        return str(self.lib_dir / "*")

    @property
    def complete_marker(self) -> Path:
        return self.home / ".complete"

    def is_installed(self) -> bool:
        return (
            self.complete_marker.exists()
            and any(self.lib_dir.glob("connect-runtime-*.jar"))
            and any(self.lib_dir.glob("jackson-dataformat-yaml-*.jar"))
            and any(self.plugin_dir.glob("iceberg-kafka-connect-*.jar"))
        )


def connect_distribution(
    kafka: str = KAFKA_VERSION, iceberg: str = ICEBERG_VERSION, cache_dir: Path | None = None
) -> ConnectDistribution:
    home = (cache_dir or default_cache_dir()) / f"connect-{kafka}-iceberg-{iceberg}"
    return ConnectDistribution(kafka, iceberg, home)


def ensure_connect_jars(
    kafka: str = KAFKA_VERSION,
    iceberg: str = ICEBERG_VERSION,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> ConnectDistribution:
    """Return the cached worker and plugin, fetching them with Maven the first time.

    As for the broker, everything lands in a ``.partial`` folder renamed into place only
    when both downloads succeed.
    """
    dist = connect_distribution(kafka, iceberg, cache_dir)
    if dist.is_installed():
        return dist
    say = progress or (lambda _msg: None)
    mvn = find_maven()
    staging = dist.home.with_name(dist.home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    worker, plugin = staging / "worker", staging / "plugin"
    for folder, pom in ((worker, worker_pom(kafka)), (plugin, plugin_pom(iceberg))):
        folder.mkdir(parents=True)
        (folder / "pom.xml").write_text(pom)
    say(f"Fetching Kafka Connect {kafka} jars from Maven Central (first time only)")
    run_maven(mvn, worker, say, what=f"Kafka Connect {kafka}'s jars")
    say(f"Fetching the Apache Iceberg {iceberg} sink plugin from Maven Central (first time only)")
    run_maven(mvn, plugin, say, what=f"the Apache Iceberg {iceberg} Kafka Connect plugin")
    (staging / "plugins").mkdir()
    (worker / "lib").rename(staging / "lib")
    (plugin / "lib").rename(staging / "plugins" / PLUGIN_NAME)
    shutil.rmtree(worker)
    shutil.rmtree(plugin)
    shutil.rmtree(dist.home, ignore_errors=True)
    staging.rename(dist.home)
    dist.complete_marker.write_text(f"{kafka} {iceberg}\n")
    size = sum(j.stat().st_size for j in dist.home.rglob("*.jar")) / 1e6
    say(f"Kafka Connect {kafka} + Iceberg {iceberg}: {size:.1f} MB in {dist.home}")
    return dist


def build_msk_plugin_zip(
    out: Path,
    iceberg: str = ICEBERG_VERSION,
    progress: ProgressFn | None = None,
) -> Path:
    """Write MSK Connect's custom plugin ZIP: the sink's jars (as ``adstream connect`` runs
    them) plus ``iceberg-aws-bundle`` and ``aws-msk-iam-auth``, under one folder. Upload it to
    S3 and pass bucket and key to ``adstream.infra.warehouse.RawEventsWarehouse``."""
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="adstream-msk-plugin-") as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(plugin_pom(iceberg, aws=True))
        say(f"Fetching the Apache Iceberg {iceberg} sink for MSK Connect from Maven Central")
        run_maven(find_maven(), work, say, what=f"the Iceberg {iceberg} MSK Connect plugin")
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = f"iceberg-kafka-connect-{iceberg}"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for jar in sorted((work / "lib").glob("*.jar")):
                archive.write(jar, f"{folder}/lib/{jar.name}")
    say(f"MSK Connect plugin: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return out
