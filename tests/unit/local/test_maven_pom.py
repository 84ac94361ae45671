"""The POMs Maven fetches through: well-formed, with classifiers and exclusions as written."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from adstream.local.maven_pom import LOGGING, Dependency, render_pom

NS = "{http://maven.apache.org/POM/4.0.0}"


def test_a_pom_names_its_dependencies_with_classifier_and_exclusions() -> None:
    dep = Dependency(
        "g",
        "a",
        "1.0",
        classifier="all",
        excluded_groups=("*",),
        excluded_artifacts=(("x", "y"),),
        comment="why <this> one",
    )
    root = ET.fromstring(render_pom("fetch", "1", (dep, *LOGGING)))  # noqa: S314 - our own
    assert root.findtext(f"{NS}artifactId") == "fetch"
    assert root.findtext(f"{NS}packaging") == "pom"
    deps = root.findall(f"{NS}dependencies/{NS}dependency")
    assert [d.findtext(f"{NS}artifactId") for d in deps] == ["a", "slf4j-api", "log4j-slf4j2-impl"]
    assert deps[0].findtext(f"{NS}classifier") == "all"
    exclusions = [
        (e.findtext(f"{NS}groupId"), e.findtext(f"{NS}artifactId"))
        for e in deps[0].iter(f"{NS}exclusion")
    ]
    assert exclusions == [("*", "*"), ("x", "y")]


def test_a_pom_without_dependencies_is_well_formed() -> None:
    root = ET.fromstring(render_pom("registry-fetch", "1"))  # noqa: S314 - our own
    assert root.find(f"{NS}dependencies") is None
