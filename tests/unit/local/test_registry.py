"""The local registry's command line and settings, without starting it (that is in
tests/integration/test_schema_registry.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adstream.local.registry import LocalRegistry, PostgresStorage, RegistryError
from adstream.local.registry_dist import RegistryDistribution


def _registry(tmp_path: Path, **options: object) -> LocalRegistry:
    dist = RegistryDistribution("3.3.3", tmp_path / "dist")
    return LocalRegistry(tmp_path / "state", dist, **options)  # type: ignore[arg-type]


def test_binds_loopback_on_the_port_and_the_next_with_a_bounded_heap(tmp_path: Path) -> None:
    command = _registry(tmp_path, port=18081, heap_mb=300).command(Path("/jdk/bin/java"))
    assert command[0] == "/jdk/bin/java"
    assert "-Xmx300m" in command
    for prop in (
        "-Dquarkus.http.host=127.0.0.1",
        "-Dquarkus.http.port=18081",
        "-Dquarkus.management.host=127.0.0.1",
        "-Dquarkus.management.port=18082",
    ):
        assert prop in command
    assert command[-2:] == ["-jar", str(tmp_path / "dist" / "quarkus-run.jar")]
    assert not any("apicurio.storage" in part for part in command)  # in memory


def test_postgres_storage_keeps_the_password_off_the_command_line(tmp_path: Path) -> None:
    storage = PostgresStorage.from_url("postgresql://reg:s%40cret@db.local:5433/registry")
    assert storage == PostgresStorage("jdbc:postgresql://db.local:5433/registry", "reg", "s@cret")
    command = _registry(tmp_path, storage=storage).command(Path("java"))
    assert "-Dapicurio.storage.sql.kind=postgresql" in command
    assert "-Dapicurio.datasource.url=jdbc:postgresql://db.local:5433/registry" in command
    assert not any("s@cret" in part for part in command)


def test_bad_settings_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="not a postgresql://"):
        PostgresStorage.from_url("mysql://x@y/z")
    with pytest.raises(RegistryError, match="compatibility 'SOMETIMES' is not one of"):
        _registry(tmp_path, compatibility="SOMETIMES")


def test_not_running_without_a_state_file(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert registry.running() is None
    assert registry.status().running is False
    assert registry.down() is False
