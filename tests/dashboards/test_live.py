"""The real check the dashboards must pass: a real Prometheus on 127.0.0.1 scrapes a real
predictor (two workers, started and disrupted by `chaos run`), the open-loop load generator
and the chaos runner; every panel's query then runs through Prometheus's HTTP API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelserve_dashboards.build import DASHBOARDS, load
from modelserve_dashboards.live import LiveRun, live_run
from modelserve_dashboards.promql import panels_of
from tests.tools import require_tool

# Panels that cannot have data on this CPU machine outside Kubernetes, with the reason. The
# live module keeps the same list to label the rendered PNGs; this one is the test's own.
NO_DATA_HERE = {
    "GPU utilisation": "DCGM exporter: needs a GPU",
    "Graphics engine active": "DCGM exporter: needs a GPU",
    "GPU memory used": "DCGM exporter: needs a GPU",
    "Power draw": "DCGM exporter: needs a GPU",
    "GPU utilisation by predictor worker": "DCGM exporter and a cuda worker: needs a GPU",
    "Inference time per batch on GPUs p99": "predictor device cuda:N: needs a GPU",
    "Container restarts (kube-state-metrics)": "kube-state-metrics: needs a cluster",
    "Replicas: desired and available (kube-state-metrics)": "kube-state-metrics: needs a cluster",
    # The live run serves fixed versions (no alias moves) over HTTP only.
    "Swap time p50 / p99": "needs a version change during the run",
    "annotation: Model swaps": "needs a version change during the run",
    "gRPC requests by method and code": "needs gRPC traffic",
    "gRPC latency p99 by method": "needs gRPC traffic",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, e2e_registry: Path) -> LiveRun:
    require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("live")
    config = tmp / "predictor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "registry_uri": str(e2e_registry),
                "workers": 2,
                "models": [{"ref": "tiny-sentiment"}, {"ref": "big-batch", "max_batch_size": 16}],
            }
        )
    )
    env = {"PREDICTOR_CONFIG_FILE": str(config), "REGISTRY_CACHE_DIR": str(tmp / "cache")}
    return live_run(
        tmp / "run", [], rate=25.0, duration_s=24.0, env=env, progress=lambda _line: None
    )


def _by_panel(run: LiveRun) -> dict[str, list]:
    panels: dict[str, list] = {}
    for result in run.results:
        panels.setdefault(result.query.panel, []).append(result)
    return panels


def test_every_query_parses(run: LiveRun) -> None:
    errors = [(r.query.panel, r.expr, r.error) for r in run.results if r.error]
    assert not errors


def test_every_panel_that_can_have_data_here_returns_series(run: LiveRun) -> None:
    panels = _by_panel(run)
    titles = {p["title"] for n in DASHBOARDS for p in panels_of(load(n)) if p["type"] != "row"}
    titles |= {t for t in panels if t.startswith(("annotation:", "variable:"))}
    assert set(NO_DATA_HERE) <= titles, "the list names panels that no longer exist"
    for title in titles:
        has_data = any(r.has_data for r in panels[title])
        if title in NO_DATA_HERE:
            assert not has_data, f"{title} has data here: drop it from NO_DATA_HERE"
        else:
            assert has_data, f"{title}: no series ({[r.expr for r in panels[title]]})"


def test_template_variables_list_the_served_models(run: LiveRun) -> None:
    models = {s["metric"]["model"] for r in _by_panel(run)["variable: model"] for s in r.series}
    assert models == {"tiny-sentiment", "big-batch"}


def test_series_show_what_happened(run: LiveRun) -> None:
    panels = _by_panel(run)
    workers = {
        s["metric"]["worker"] for s in panels["Requests per second by worker and device"][0].series
    }
    assert len(workers) == 2  # both workers took traffic
    disruptions = panels["Disruptions injected"][0].series
    assert {s["metric"]["action"] for s in disruptions} == {"kill-worker"}
    injected = {s["metric"]["result"]: max(float(v) for _, v in s["values"]) for s in disruptions}
    assert injected["ok"] > 0 and injected["failed"] == 0  # the kill shows as an increase
    processes = panels["Worker processes started"][0].series
    assert max(float(s["values"][-1][1]) for s in processes) == 2  # the killed slot restarted
    serving = panels["Workers serving each model"][0].series
    assert {float(s["values"][-1][1]) for s in serving} == {2.0}
    versions = panels["Version served by model and worker"][0].series
    slots = {(s["metric"]["model"], s["metric"]["worker"]) for s in versions}
    assert {model for model, _ in slots} == {"tiny-sentiment", "big-batch"} and len(slots) == 4
    assert all(float(s["values"][-1][1]) >= 1 for s in versions)  # 0 would be none loaded
    states = {
        (s["metric"]["model"], s["metric"]["state"]): float(s["values"][-1][1])
        for s in panels["Workers in each model state"][0].series
    }
    assert states[("tiny-sentiment", "READY")] == states[("big-batch", "READY")] == 2
    assert states[("tiny-sentiment", "UNAVAILABLE")] == 0
    nominal = panels["Offered, answered and nominal rate"][0].series
    assert float(nominal[0]["values"][-1][1]) == pytest.approx(25.0)
    assert run.journal["events"][0]["action"] == "kill-worker"


def test_every_dashboard_is_drawn(run: LiveRun) -> None:
    assert [p.stem for p in run.pictures] == list(DASHBOARDS)
    for picture in run.pictures:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert picture.stat().st_size > 20_000
    assert (
        "| serving | Requests per second by model | yes | yes"
        in (run.out / "panels.md").read_text()
    )
