"""A local chaos experiment for real: the predictor under a supervisor, open-loop load
running, a worker SIGKILLed and then the whole server SIGKILLed and restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import free_port


def test_worker_and_server_kills_are_measured(tmp_path: Path, e2e_registry: Path) -> None:
    port = free_port()
    config = tmp_path / "predictor.yaml"
    config.write_text(
        yaml.safe_dump(
            {"registry_uri": str(e2e_registry), "workers": 2, "models": [{"ref": "tiny-sentiment"}]}
        )
    )
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "title": "local kills",
                "target": {"kind": "local", "url": f"http://127.0.0.1:{port}"},
                "steady_state_hypothesis": {
                    "title": "serving",
                    "probes": [
                        {"name": "ready", "kind": "http", "tolerance": 200},
                        {"name": "errors", "kind": "error_rate", "window_s": 8, "tolerance": 0.01},
                    ],
                },
                "load": {
                    "scenario": "steady",
                    "rate": 20,
                    "duration_s": 60,
                    "seed": 2,
                    "slo_ms": 500,
                },
                "method": [
                    {"name": "kill a worker", "action": "kill-worker", "at_s": 6},
                    {"name": "kill the server", "action": "kill-server", "at_s": 14},
                ],
            }
        )
    )
    env = {
        **os.environ,
        "PREDICTOR_CONFIG_FILE": str(config),
        "REGISTRY_CACHE_DIR": str(tmp_path / "cache"),
    }
    out = tmp_path / "run"
    chaos = Path(sys.executable).parent / "chaos"
    result = subprocess.run(
        [str(chaos), "run", str(experiment), "--out", str(out), "--ready-timeout", "180"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    journal = json.loads((out / "journal.json").read_text())
    worker, server = journal["events"]
    assert "error" not in worker and "error" not in server, journal["events"]
    assert journal["before"]["ok"] is True
    # the sibling worker kept serving: a handful of requests at most were lost
    assert worker["impact"]["failed_requests"] <= 5
    assert worker["impact"]["time_to_recovery_s"] is not None
    # the whole server went down: requests failed until the supervisor's restart was ready
    cost = server["impact"]
    assert cost["failed_requests"] > 10 and cost["first_failure"] >= server["t"] - 0.5
    assert cost["time_to_recovery_s"] is not None and 1 < cost["time_to_recovery_s"] < 45
    assert journal["deviated"] is False  # healthy again by the end of the load
    assert journal["totals"]["requests_lost"] >= cost["failed_requests"]
    assert 0.5 < journal["totals"]["availability"] < 1.0
    assert (out / "timeline.png").stat().st_size > 0
