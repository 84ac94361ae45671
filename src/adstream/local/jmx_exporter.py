"""The Prometheus JMX exporter as a Java agent in each local broker, the way Amazon MSK's
open monitoring exposes broker metrics (there on port 11001 of every broker).

The agent jar comes from Maven Central once (``io.prometheus.jmx:jmx_prometheus_javaagent``;
1.0.1 resolves here) and is cached beside the Kafka jars. Its configuration keeps the
exporter's default metric naming, which is the naming MSK's open monitoring serves
(``kafka_server_ReplicaManager_Value{name="UnderReplicatedPartitions"}``), so the same
alert rules and dashboards work on the local brokers and on MSK; it reads only the MBeans
the rules and dashboards use, which keeps a scrape to a few hundred series.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from adstream.local.jars import ProgressFn, default_cache_dir, run_maven
from adstream.local.layout import LISTEN_HOST
from adstream.local.maven_pom import Dependency, render_pom
from adstream.local.toolchain import find_maven

JMX_EXPORTER_VERSION = "1.0.1"


EXPORTER_CONFIG = """\
# Written by adstream (src/adstream/local/jmx_exporter.py): the JMX exporter's default
# naming, as Amazon MSK's open monitoring serves it, for the MBeans the alert rules and
# dashboards use.
lowercaseOutputName: false
lowercaseOutputLabelNames: false
includeObjectNames:
  - "kafka.server:type=ReplicaManager,*"
  - "kafka.server:type=BrokerTopicMetrics,*"
  - "kafka.controller:type=KafkaController,*"
  - "kafka.controller:type=ControllerStats,*"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,*"
  - "kafka.network:type=SocketServer,*"
  - "kafka.log:type=LogManager,*"
  - "kafka.server:type=raft-metrics"
  - "java.lang:type=Memory"
rules:
  - pattern: ".*"
"""


def agent_jar(version: str = JMX_EXPORTER_VERSION, cache_dir: Path | None = None) -> Path:
    folder = (cache_dir or default_cache_dir()) / f"jmx-exporter-{version}" / "lib"
    return folder / f"jmx_prometheus_javaagent-{version}.jar"


def ensure_agent(
    version: str = JMX_EXPORTER_VERSION,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """The cached agent jar, fetched with Maven the first time (into a staging folder that
    is renamed into place only when Maven succeeds)."""
    jar = agent_jar(version, cache_dir)
    if jar.exists():
        return jar
    say = progress or (lambda _msg: None)
    home = jar.parent.parent
    staging = home.with_name(home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    agent = Dependency("io.prometheus.jmx", "jmx_prometheus_javaagent", version)
    (staging / "pom.xml").write_text(render_pom("jmx-exporter", version, (agent,)))
    say(f"Fetching the Prometheus JMX exporter {version} from Maven Central (first time only)")
    run_maven(find_maven(), staging, say, "-DexcludeTransitive=true", what="the JMX exporter agent")
    shutil.rmtree(home, ignore_errors=True)
    staging.rename(home)
    return jar


def java_agent_option(jar: Path, port: int, config: Path) -> str:
    """The JVM option that serves the broker's metrics on ``LISTEN_HOST:port/metrics``."""
    return f"-javaagent:{jar}={LISTEN_HOST}:{port}:{config}"
