"""deploy/grafana: the committed dashboards are what adstream.local.grafana generates, and
each panel's query is valid PromQL naming only metrics the code registers (the Kafka
brokers' own metrics are checked against a live broker's exporter instead)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from adstream.local.grafana import DASHBOARDS, render
from tests.support.metrics import broker_metrics, exported_series, named_metrics

GRAFANA = Path(__file__).resolve().parents[3] / "deploy" / "grafana"


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every target of every committed dashboard."""
    found = []
    for path in sorted(GRAFANA.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(path.name, panel["title"], t["expr"]) for t in panel["targets"]]
    return found


def test_committed_dashboards_are_generated() -> None:
    committed = {path.name for path in GRAFANA.glob("*.json")}
    assert committed == set(DASHBOARDS)
    for name, board in DASHBOARDS.items():
        assert (GRAFANA / name).read_text() == render(board), (
            f"{name} is stale: run `adstream monitor dashboards`"
        )


def test_every_panel_names_only_exported_metrics() -> None:
    exported = exported_series()
    assert len(queries()) >= 12
    for board, title, expr in queries():
        named = named_metrics(expr)
        assert named or broker_metrics(expr), f"{board} / {title}: no known metric in {expr}"
        assert named <= exported, f"{board} / {title}: unknown metrics {named - exported}"


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (it has no offline query check)."""
    tool = shutil.which("promtool")
    assert tool, "promtool not found: run scripts/system-deps.sh (Debian package prometheus)"
    rules = [{"record": f"panel:query_{i}", "expr": q[2]} for i, q in enumerate(queries())]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
