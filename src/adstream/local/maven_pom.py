"""The throwaway POMs through which Maven fetches what the local components run (the
broker's jars, the JMX exporter agent, Kafka Connect and its Iceberg plugin, the schema
registry): one renderer, so each caller only names its artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

SLF4J_VERSION = "2.0.17"
LOG4J_VERSION = "2.24.3"


@dataclass(frozen=True)
class Dependency:
    group: str
    artifact: str
    version: str
    classifier: str | None = None
    excluded_groups: tuple[str, ...] = ()
    """Groups left out of its transitive dependencies (``*``: all of them)."""
    excluded_artifacts: tuple[tuple[str, str], ...] = ()
    """Single (group, artifact) pairs left out."""
    comment: str = ""

    def render(self) -> str:
        lines = ["    <dependency>"]
        if self.comment:
            lines.append(f"      <!-- {escape(self.comment)} -->")
        lines += [
            f"      <groupId>{self.group}</groupId>",
            f"      <artifactId>{self.artifact}</artifactId>",
            f"      <version>{self.version}</version>",
        ]
        if self.classifier:
            lines.append(f"      <classifier>{self.classifier}</classifier>")
        exclusions = [(group, "*") for group in self.excluded_groups]
        exclusions += list(self.excluded_artifacts)
        if exclusions:
            lines.append("      <exclusions>")
            lines += [
                f"        <exclusion><groupId>{group}</groupId>"
                f"<artifactId>{artifact}</artifactId></exclusion>"
                for group, artifact in exclusions
            ]
            lines.append("      </exclusions>")
        lines.append("    </dependency>")
        return "\n".join(lines)


LOGGING = (
    Dependency("org.slf4j", "slf4j-api", SLF4J_VERSION),
    Dependency("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
)
"""Kafka 4 logs through SLF4J 2 and leaves the binding to the application: log4j2."""


def render_pom(artifact_id: str, version: str, dependencies: tuple[Dependency, ...] = ()) -> str:
    """A ``pom``-packaged project whose only purpose is its dependencies."""
    body = "\n".join(dependency.render() for dependency in dependencies)
    deps = f"  <dependencies>\n{body}\n  </dependencies>\n" if dependencies else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>io.adstream.local</groupId>\n"
        f"  <artifactId>{artifact_id}</artifactId>\n"
        f"  <version>{version}</version>\n"
        "  <packaging>pom</packaging>\n"
        f"{deps}"
        "</project>\n"
    )
