"""Maven fetches jars with progress, and its failures come back in its own words."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adstream.local import jars
from adstream.local.toolchain import find_maven

pytestmark = pytest.mark.integration

_SMALL_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>t</groupId><artifactId>t</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies><dependency>
    <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.9</version>
  </dependency></dependencies>
</project>"""


def test_download_progress_names_each_jar(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text(_SMALL_POM)
    # Drop this one small artifact from the local Maven cache so that Maven downloads it
    # for real (a fresh local repository would also download every plugin: 30 s more).
    shutil.rmtree(Path.home() / ".m2/repository/org/slf4j/slf4j-api/2.0.9", ignore_errors=True)
    said: list[str] = []
    jars.run_maven(find_maven(), tmp_path, said.append)
    assert (tmp_path / "lib" / "slf4j-api-2.0.9.jar").is_file()
    progress = [line for line in said if "slf4j-api-2.0.9.jar" in line]
    assert progress, said
    assert "MB]" in progress[0]


def test_unknown_kafka_version_fails_with_mavens_reason(tmp_path: Path) -> None:
    with pytest.raises(jars.JarFetchError, match=r"kafka_2\.13:jar:0\.0\.0-nope"):
        jars.ensure_kafka_jars("0.0.0-nope", cache_dir=tmp_path)
    assert not jars.distribution("0.0.0-nope", tmp_path).is_installed()
