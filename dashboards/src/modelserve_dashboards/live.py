"""A live run that fills every dashboard that can be filled without a GPU or a cluster: a real
Prometheus scraping a real predictor (started and disrupted by `chaos run`), the open-loop
load generator and the chaos runner, each on 127.0.0.1; then every panel's query is run
through Prometheus and every dashboard is drawn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modelserve_dashboards.build import DASHBOARDS
from modelserve_dashboards.check import QueryResult, check_all, markdown
from modelserve_dashboards.errors import DashboardsError
from modelserve_dashboards.prometheus import PrometheusServer, free_port
from modelserve_dashboards.render import render_dashboard

# Panels that cannot have data on a CPU machine outside Kubernetes, and why.
NEEDS_GPU = "needs a GPU and NVIDIA's DCGM exporter"
NEEDS_CLUSTER = "needs Kubernetes and kube-state-metrics"
NEEDS_RELEASE = "needs a version change during the run (`registry tag` or promote-alias)"
NEEDS_GRPC = "needs gRPC traffic (the load generator speaks HTTP)"
UNAVAILABLE_HERE = {
    "GPU utilisation": NEEDS_GPU,
    "Graphics engine active": NEEDS_GPU,
    "GPU memory used": NEEDS_GPU,
    "Power draw": NEEDS_GPU,
    "GPU utilisation by predictor worker": NEEDS_GPU,
    "Inference time per batch on GPUs p99": "needs a GPU (predictor device cuda:N)",
    "Container restarts (kube-state-metrics)": NEEDS_CLUSTER,
    "Replicas: desired and available (kube-state-metrics)": NEEDS_CLUSTER,
    "Swap time p50 / p99": NEEDS_RELEASE,
    "annotation: Model swaps": NEEDS_RELEASE,
    "gRPC requests by method and code": NEEDS_GRPC,
    "gRPC latency p99 by method": NEEDS_GRPC,
}


@dataclass
class LiveRun:
    out: Path
    start: float
    end: float
    results: list[QueryResult]
    journal: dict
    pictures: list[Path] = field(default_factory=list)


def experiment(port: int, rate: float, duration_s: float, slo_ms: float) -> dict:
    """Bursty load (the study's 'extreme' Gamma k=0.8) with one worker killed a third of the
    way in: traffic, batching, a disruption and its recovery, all in one short run."""
    return {
        "title": "dashboards live run",
        "target": {"kind": "local", "url": f"http://127.0.0.1:{port}"},
        "steady_state_hypothesis": {
            "title": "serving",
            "probes": [{"name": "ready", "kind": "http", "tolerance": 200}],
        },
        "load": {
            "scenario": "extreme",
            "rate": rate,
            "duration_s": duration_s,
            "seed": 7,
            "slo_ms": slo_ms,
        },
        "method": [{"name": "kill a worker", "action": "kill-worker", "at_s": duration_s / 3}],
    }


def live_run(
    out: Path,
    predictor_args: list[str],
    rate: float = 30.0,
    duration_s: float = 30.0,
    slo_ms: float = 250.0,
    env: dict[str, str] | None = None,
    step_s: float = 2.0,
    progress=print,
) -> LiveRun:
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    ports = {"predictor": free_port(), "loadtest": free_port(), "chaos": free_port()}
    prometheus = PrometheusServer.start(
        out / "prometheus", {job: [f"127.0.0.1:{port}"] for job, port in ports.items()}
    )
    try:
        experiment_file = out / "experiment.yaml"
        experiment_file.write_text(
            yaml.safe_dump(experiment(ports["predictor"], rate, duration_s, slo_ms))
        )
        predictor = [str(bin_dir / "predictor"), "serve", "--port", str(ports["predictor"])]
        command = [
            str(bin_dir / "chaos"),
            "run",
            str(experiment_file),
            "--out",
            str(out / "chaos"),
            "--predictor-command",
            " ".join([*predictor, *predictor_args]),
            "--metrics-port",
            str(ports["chaos"]),
            "--load-metrics-port",
            str(ports["loadtest"]),
            "--metrics-linger",
            "4",
            "--ready-timeout",
            "300",
        ]
        progress(f"prometheus {prometheus.url}; chaos run against :{ports['predictor']}")
        start = time.time()
        finished = subprocess.run(
            command,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=duration_s + 420,
        )
        end = time.time()
        if finished.returncode != 0:
            raise DashboardsError(
                f"chaos run failed ({finished.returncode}): "
                f"{(finished.stderr or finished.stdout)[-2000:]}"
            )
        progress(finished.stdout.strip())
        results = check_all(prometheus.client, start, end, step=step_s, scrape_s=1.0)
    finally:
        prometheus.stop()
    journal = json.loads((out / "chaos" / "journal.json").read_text())
    run = LiveRun(out, start, end, results, journal)
    (out / "queries.json").write_text(json.dumps([r.row() for r in results], indent=2))
    (out / "panels.md").write_text(markdown(results, UNAVAILABLE_HERE))
    events = [(float(e["t"]), e["action"]) for e in journal["events"]]
    for name in DASHBOARDS:
        run.pictures.append(
            render_dashboard(name, results, out / f"{name}.png", events, UNAVAILABLE_HERE)
        )
    return run
