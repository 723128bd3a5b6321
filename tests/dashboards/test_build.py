"""The generated dashboards: committed files are current, every panel queries metrics the
platform really declares, and the structure Grafana needs is there."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from modelserve_dashboards import build
from modelserve_dashboards.panels import DATASOURCE_UID
from modelserve_dashboards.promql import panels_of, queries
from modelserve_metric_names import chaos as chaos_metrics
from modelserve_metric_names import loadtest as load_metrics
from modelserve_metric_names import predictor as predictor_metrics

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = ("DCGM_FI_", "kube_")  # exporters we do not own: GPU (DCGM) and kube-state-metrics


def _declared() -> set[str]:
    names = set()
    for module in (predictor_metrics, load_metrics, chaos_metrics):
        names |= {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}
    return names


def test_committed_files_are_what_the_code_builds() -> None:
    dashboards = Path(sys.executable).parent / "dashboards"
    result = subprocess.run(
        [str(dashboards), "build", "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_check_detects_a_stale_file(tmp_path: Path) -> None:
    build.write(tmp_path)
    assert build.stale(tmp_path) == []
    target = tmp_path / build.JSON_DIR / "serving.json"
    target.write_text(target.read_text().replace("Requests per second", "Reqs"))
    (tmp_path / build.JSON_DIR / "old.json").write_text("{}")
    assert set(build.stale(tmp_path)) == {
        build.JSON_DIR / "serving.json",
        build.JSON_DIR / "old.json",
    }
    build.write(tmp_path)
    assert build.stale(tmp_path) == []


def test_every_query_names_declared_metrics() -> None:
    declared = _declared()
    metric = re.compile(r"\b([a-zA-Z_:][\w:]*?)(?:_bucket|_sum|_count)?\s*(?:\{|\[|\)|,)")
    for name in build.DASHBOARDS:
        for query in queries(name, build.load(name)):
            used = {
                m
                for m in metric.findall(query.expr)
                if m.startswith(("predictor_", "loadtest_", "chaos_", "bentoml_", *EXTERNAL))
            }
            assert used, f"{name}/{query.panel}: no metric found in {query.expr}"
            unknown = {m for m in used if not m.startswith(EXTERNAL)} - declared
            assert not unknown, f"{name}/{query.panel} uses undeclared {unknown}"


def test_panels_are_grafana_dashboards_with_unique_titles() -> None:
    titles: list[str] = []
    uids = set()
    for name in build.DASHBOARDS:
        board = build.load(name)
        uids.add(board["uid"])
        assert board["schemaVersion"] >= 39
        panels = [p for p in panels_of(board) if p["type"] != "row"]
        assert len(panels) >= 5, name
        for panel in panels:
            titles.append(panel["title"])
            assert panel["datasource"]["uid"] == DATASOURCE_UID
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
            assert panel["gridPos"]["w"] > 0 and panel["gridPos"]["h"] > 0
    assert len(uids) == len(build.DASHBOARDS)
    assert len(titles) == len(set(titles)), "panel titles are keys in the live check"


def test_configmap_carries_the_same_json() -> None:
    document = yaml.safe_load((ROOT / build.CONFIGMAP).read_text())
    assert document["kind"] == "ConfigMap" and document["metadata"]["name"] == "grafana-dashboards"
    for name in build.DASHBOARDS:
        committed = json.loads((ROOT / build.JSON_DIR / f"{name}.json").read_text())
        assert json.loads(document["data"][f"{name}.json"]) == committed
