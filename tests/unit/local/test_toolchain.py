from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adstream.local import jars
from adstream.local.toolchain import (
    ToolchainError,
    find_java,
    find_java_at_least,
    find_maven,
    java_major_version,
)


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    """A stand-in ``java`` executable that prints a given ``-version`` banner."""
    script = tmp_path / "bin" / "java"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
    ],
)
def test_java_major_version_reads_old_and_new_banners(
    tmp_path: Path, banner: str, major: int
) -> None:
    assert java_major_version(_fake_java(tmp_path, banner)) == major


def test_old_java_is_refused_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_java(tmp_path, 'java version "1.8.0_392"')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ToolchainError, match="Java 8; Apache Kafka 4 needs Java 17 or newer"):
        find_java()


def test_missing_java_and_maven_are_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="java was not found: Apache Kafka needs a Java 17"):
        find_java()
    with pytest.raises(ToolchainError, match="mvn was not found"):
        find_maven()


def test_fetching_jars_without_maven_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="apt-get install maven"):
        jars.ensure_kafka_jars("4.1.1", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "kafka-4.1.1").exists()


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSTREAM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jars.default_cache_dir() == tmp_path / "adstream"
    monkeypatch.setenv("ADSTREAM_CACHE_DIR", str(tmp_path / "explicit"))
    assert jars.default_cache_dir() == tmp_path / "explicit"


def _jvm(root: Path, name: str, major: int) -> Path:
    return _fake_java(root / name, f'openjdk version "{major}.0.1" 2025-01-01')


def test_registry_java_prefers_a_new_enough_java_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _jvm(tmp_path, "home", 21).parent.parent
    _jvm(tmp_path / "jvm", "temurin-25", 25)
    monkeypatch.setenv("JAVA_HOME", str(home))
    java, major = find_java_at_least(21, "Apicurio Registry", (tmp_path / "jvm",))
    assert (java, major) == (home / "bin" / "java", 21)


def test_registry_java_takes_the_newest_jdk_beside_a_too_old_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's 17 is JAVA_HOME and on PATH; a Temurin 25 sits in /usr/lib/jvm."""
    old = _jvm(tmp_path, "debian-17", 17)
    monkeypatch.setenv("JAVA_HOME", str(old.parent.parent))
    monkeypatch.setenv("PATH", str(old.parent))
    jvm = tmp_path / "jvm"
    _jvm(jvm, "java-17-openjdk", 17)
    _jvm(jvm, "java-21-openjdk", 21)
    newest = _jvm(jvm, "temurin-25-jdk", 25)
    assert find_java_at_least(21, "Apicurio Registry", (jvm,)) == (newest, 25)


def test_registry_java_missing_names_java_21_and_what_was_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _jvm(tmp_path, "debian-17", 17)
    monkeypatch.setenv("JAVA_HOME", str(old.parent.parent))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ToolchainError) as missing:
        find_java_at_least(21, "Apicurio Registry 3.3.3", (tmp_path / "no-jvm",))
    message = str(missing.value)
    assert "Apicurio Registry 3.3.3 needs Java 21+" in message
    assert "(Java 17)" in message
    assert "openjdk-21-jre-headless" in message
