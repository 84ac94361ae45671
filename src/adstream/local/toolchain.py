"""Find ``java`` (17+ for Kafka, 21+ for the schema registry) and ``mvn``, and say clearly
what to install when they are missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

MIN_JAVA = 17
JVM_DIRS: tuple[Path, ...] = (Path("/usr/lib/jvm"),)
"""Where Debian (and Temurin's packages) install JDKs side by side."""


class ToolchainError(RuntimeError):
    """A required program is missing or too old; the message says how to fix it."""


def find_java() -> Path:
    """The ``java`` to run Kafka with: ``$JAVA_HOME/bin/java`` first, then ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.is_file():
        java = candidate
    else:
        found = shutil.which("java")
        if found is None:
            raise ToolchainError(
                "java was not found: Apache Kafka needs a Java 17+ runtime. "
                "Install one (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) "
                "or set JAVA_HOME."
            )
        java = Path(found)
    version = java_major_version(java)
    if version < MIN_JAVA:
        raise ToolchainError(
            f"{java} is Java {version}; Apache Kafka 4 needs Java {MIN_JAVA} or newer. "
            "Install a newer JDK or point JAVA_HOME at one."
        )
    return java


def find_java_at_least(
    minimum: int, purpose: str, jvm_dirs: tuple[Path, ...] = JVM_DIRS
) -> tuple[Path, int]:
    """A ``java`` of version `minimum`+ and its version: ``$JAVA_HOME`` if new enough, else
    the newest one in `jvm_dirs` or on ``PATH``. Several JDKs often live side by side
    (Debian's 17 beside a Temurin 25), and the default one may be too old for `purpose`."""
    seen: list[str] = []
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        java = Path(java_home) / "bin" / "java"
        version = java_major_version(java)
        if version >= minimum:
            return java, version
        seen.append(f"JAVA_HOME {java_home} (Java {version})")
    candidates = sorted({p for d in jvm_dirs if d.is_dir() for p in d.glob("*/bin/java")})
    on_path = shutil.which("java")
    if on_path is not None:
        candidates.append(Path(on_path))
    best: tuple[Path, int] | None = None
    for java in candidates:
        try:
            version = java_major_version(java)
        except (ToolchainError, OSError):
            continue
        seen.append(f"{java} (Java {version})")
        if version >= minimum and (best is None or version > best[1]):
            best = (java, version)
    if best is None:
        found = "; found: " + ", ".join(seen) if seen else "; no java was found"
        raise ToolchainError(
            f"{purpose} needs Java {minimum}+ (Java {minimum} or newer){found}. Install one "
            f"(Debian/Ubuntu: apt-get install openjdk-{minimum}-jre-headless) or point "
            "JAVA_HOME at one."
        )
    return best


def java_major_version(java: Path) -> int:
    out = subprocess.run(
        [str(java), "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise ToolchainError(f"could not read the Java version from `{java} -version`")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_xxx".
    return int(match.group(2) or 0) if major == 1 else major


def find_maven() -> Path:
    found = shutil.which("mvn")
    if found is None:
        raise ToolchainError(
            "mvn was not found: adstream fetches Apache Kafka's jars from Maven Central "
            "with Maven. Install it (Debian/Ubuntu: apt-get install maven)."
        )
    return Path(found)
