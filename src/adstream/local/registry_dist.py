"""Apicurio Registry's server, fetched from Maven Central once and unpacked into the cache.

The artifact is ``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` (~160 MB), a
Quarkus "fast-jar" (``quarkus-run.jar`` + ``lib/``). Maven fetches it into its local
repository (so a second checkout reuses it); it is unpacked into a temporary folder that is
renamed into place only when complete, so an interrupted download never looks installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

from adstream.local.jars import JarFetchError, ProgressFn, default_cache_dir
from adstream.local.maven_pom import render_pom
from adstream.local.toolchain import ToolchainError, find_maven

REGISTRY_VERSION = "3.3.3"
REGISTRY_GROUP = "io.apicurio"
REGISTRY_ARTIFACT = "apicurio-registry-app"
COPY = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
_PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class RegistryDistribution:
    """An unpacked Apicurio Registry server for one version."""

    version: str
    home: Path

    @property
    def run_jar(self) -> Path:
        return self.home / "quarkus-run.jar"

    @property
    def complete_marker(self) -> Path:
        return self.home / ".complete"

    def is_installed(self) -> bool:
        return self.complete_marker.exists() and self.run_jar.is_file()


def registry_distribution(
    version: str = REGISTRY_VERSION, cache_dir: Path | None = None
) -> RegistryDistribution:
    return RegistryDistribution(
        version, (cache_dir or default_cache_dir()) / f"apicurio-registry-{version}"
    )


def maven_repository_dir(version: str) -> Path:
    """Where Maven keeps the tarball (its default local repository)."""
    group = REGISTRY_GROUP.replace(".", "/")
    return Path.home() / ".m2" / "repository" / group / REGISTRY_ARTIFACT / version


def ensure_registry(
    version: str = REGISTRY_VERSION,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> RegistryDistribution:
    """Return the unpacked server, fetching and unpacking it the first time."""
    dist = registry_distribution(version, cache_dir)
    if dist.is_installed():
        return dist
    say = progress or (lambda _msg: None)
    staging = dist.home.with_name(dist.home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "pom.xml").write_text(render_pom("registry-fetch", "1"))
    say(f"Fetching Apicurio Registry {version} (~160 MB) from Maven Central (first time only)")
    tarball = _fetch(version, staging, say)
    say(f"Unpacking {tarball.name} ({tarball.stat().st_size / 1e6:.0f} MB)")
    with tarfile.open(tarball) as archive:
        archive.extractall(staging / "server", filter="data")
    tarball.unlink()
    if not (staging / "server" / "quarkus-run.jar").is_file():
        raise JarFetchError(f"{tarball.name} has no quarkus-run.jar at its top level")
    shutil.rmtree(dist.home, ignore_errors=True)
    (staging / "server").rename(dist.home)
    shutil.rmtree(staging, ignore_errors=True)
    dist.complete_marker.write_text(version + "\n")
    say(f"Apicurio Registry {version} in {dist.home}")
    return dist


def _fetch(version: str, workdir: Path, say: ProgressFn) -> Path:
    """Run Maven's ``dependency:copy`` for the tarball, reporting the bytes received so far.

    Maven prints nothing while one large file downloads in batch mode, so a thread watches
    the file growing in Maven's local repository instead.
    """
    mvn = find_maven()
    coordinates = f"{REGISTRY_GROUP}:{REGISTRY_ARTIFACT}:{version}:tar.gz:all"
    command = [
        str(mvn),
        "--batch-mode",
        "-f",
        str(workdir / "pom.xml"),
        COPY,
        f"-Dartifact={coordinates}",
        f"-DoutputDirectory={workdir}",
    ]
    done = threading.Event()
    watcher = threading.Thread(
        target=_report_growth, args=(maven_repository_dir(version), done, say), daemon=True
    )
    watcher.start()
    try:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    except OSError as exc:  # pragma: no cover - find_maven checked it exists
        raise ToolchainError(f"could not run {mvn}: {exc}") from exc
    finally:
        done.set()
        watcher.join()
    if result.returncode != 0:
        lines = result.stdout.splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines[-15:]
        raise JarFetchError(f"Maven could not fetch {coordinates}:\n" + "\n".join(errors[-15:]))
    found = sorted(workdir.glob(f"{REGISTRY_ARTIFACT}-*.tar.gz"))
    if not found:
        raise JarFetchError(f"Maven reported success but left no tarball in {workdir}")
    return found[0]


def _report_growth(folder: Path, done: threading.Event, say: ProgressFn) -> None:
    last = -1
    while not done.wait(_PROGRESS_EVERY_S):
        try:
            size = sum(p.stat().st_size for p in folder.iterdir() if "tar.gz" in p.name)
        except OSError:
            continue
        if size != last:
            say(f"  {size / 1e6:6.1f} MB received")
            last = size
