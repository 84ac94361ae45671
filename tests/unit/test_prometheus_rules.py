"""deploy/prometheus: the config and alert rules are valid for the Prometheus that runs them,
each alert fires and stays quiet as alerts_test.yml says, and every metric they name is one
the code registers (a renamed metric would otherwise leave an alert that never fires)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.metrics import exported_series, named_metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    # Installed by scripts/system-deps.sh (`make setup`): missing is a failure, not a skip.
    assert tool, "promtool not found: run scripts/system-deps.sh (Debian package prometheus)"
    return subprocess.run(
        [tool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    done = promtool(*args)
    assert done.returncode == 0, done.stdout + done.stderr


def rules() -> list[dict[str, str]]:
    loaded = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_alerts_name_only_metrics_the_code_exports() -> None:
    exported = exported_series()
    for rule in rules():
        named = named_metrics(rule["expr"])
        assert named <= exported, f"{rule['alert']}: unknown metrics {named - exported}"


def test_every_alert_has_firing_and_quiet_cases() -> None:
    tests = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} never quiet"
