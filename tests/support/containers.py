"""podman for the image test: the repository's containers.conf, host networking, cleanup.

Rootful podman with ``--network=host``: a container reaches the session's broker and
PostgreSQL on 127.0.0.1 as a deployed task reaches MSK and RDS by name. The image is built
by the same script as ``make image``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-image.sh"


def podman_missing() -> str | None:
    """Why containers cannot run here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/system-deps.sh installs it on Debian/Ubuntu)"
    return None


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "CONTAINERS_CONF": os.environ.get(
            "CONTAINERS_CONF", str(ROOT / "scripts" / "containers.conf")
        ),
    }


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def build_image(tag: str, python: str) -> subprocess.CompletedProcess[str]:
    """``scripts/build-image.sh`` (wheelhouse with ``python``, base image, podman build)."""
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        env={**_env(), "ADSTREAM_IMAGE": tag, "PYTHON": python},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


@dataclass(frozen=True)
class Container:
    name: str

    def logs(self) -> str:
        done = podman("logs", self.name)
        return done.stdout + done.stderr

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name)
        return state.stdout.strip() == "true"

    def host_pid(self) -> int:
        """The container's main process as the host sees it."""
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout)


@contextmanager
def running_container(
    image: str,
    command: list[str],
    env: Mapping[str, str],
    mounts: Mapping[Path, str] | None = None,
) -> Iterator[Container]:
    """``podman run --detach`` on the host network; removed (with its logs) on exit."""
    name = f"adstream-test-{uuid.uuid4().hex[:10]}"
    args = ["run", "--detach", "--name", name, "--network=host"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    for source, target in (mounts or {}).items():
        args += ["--volume", f"{source}:{target}:ro"]
    started = podman(*args, image, *command)
    if started.returncode != 0:
        raise RuntimeError(f"podman run failed: {started.stderr}")
    try:
        yield Container(name)
    finally:
        podman("rm", "--force", "--time", "10", name, timeout=60)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
