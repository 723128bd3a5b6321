"""`chaos run` for real against a stand-in predictor under the local supervisor, with the real
load generator: a run that ends normally, and one whose action raises something unexpected,
which must still run every rollback, write the journal and exit with one clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import yaml

from tests.conftest import free_port

STAND_IN = Path(__file__).with_name("stand_in_predictor.py")


def chaos_run(tmp_path: Path, method: list[dict], rollbacks: list[dict]) -> tuple:
    port = free_port()
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "title": "runner test",
                "target": {"kind": "local", "url": f"http://127.0.0.1:{port}"},
                "steady_state_hypothesis": {
                    "title": "ready",
                    "probes": [{"name": "ready", "kind": "http", "tolerance": 200}],
                },
                "load": {"rate": 10, "duration_s": 3, "slo_ms": 1000},
                "method": method,
                "rollbacks": rollbacks,
            }
        )
    )
    out = tmp_path / "run"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "chaos"),
            "run",
            str(experiment),
            "--out",
            str(out),
            "--ready-timeout",
            "60",
            "--predictor-command",
            f"{sys.executable} {STAND_IN} --port {port}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, out, port


def left_running(*fragments: str) -> list[str]:
    """Command lines of live processes containing every fragment (orphans of the run)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        line = " ".join(process.info["cmdline"] or [])
        if process.info["status"] != psutil.STATUS_ZOMBIE and all(f in line for f in fragments):
            found.append(line)
    return found


def test_a_normal_run_measures_the_disruption_and_rolls_back(tmp_path: Path) -> None:
    result, out, port = chaos_run(
        tmp_path,
        method=[{"name": "kill a worker", "action": "kill-worker", "at_s": 0.5}],
        rollbacks=[{"name": "restart", "action": "term-server"}],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    journal = json.loads((out / "journal.json").read_text())
    (event,) = journal["events"]
    assert "worker_pid" in event["result"] and "impact" in event
    assert journal["totals"]["requests"] > 0 and journal["load_error"] is None
    assert journal["rollbacks"][0]["result"]["signal"] == "SIGTERM"
    assert "error" not in journal and journal["deviated"] is False
    assert left_running(str(STAND_IN), str(port)) == []


def test_an_unexpected_failure_still_rolls_back_and_writes_the_journal(tmp_path: Path) -> None:
    bad_index = {"index": "first"}  # not an int: kill-worker raises TypeError, not ActionFailed
    result, out, port = chaos_run(
        tmp_path,
        method=[
            {"name": "bad kill", "action": "kill-worker", "at_s": 0.5, "arguments": bad_index},
            {"name": "never reached", "action": "kill-server", "at_s": 1.0},
        ],
        rollbacks=[
            {"name": "broken rollback", "action": "kill-worker", "arguments": bad_index},
            {"name": "restart", "action": "term-server"},
        ],
    )
    assert result.returncode == 5, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: 'runner test' aborted: TypeError") and "journal:" in line

    journal = json.loads((out / "journal.json").read_text())
    assert journal["error"].startswith("TypeError") and journal["deviated"] is True
    assert [e["name"] for e in journal["events"]] == ["bad kill"]
    assert journal["events"][0]["error"].startswith("TypeError")
    broken, restart = journal["rollbacks"]
    assert broken["error"].startswith("TypeError")  # recorded, and the next one still ran
    assert restart["result"]["signal"] == "SIGTERM"
    assert journal["ended"] >= journal["started"]
    # neither the load (3 s, cut short) nor the stand-in outlives the run
    assert left_running("loadtest", str(out / "load")) == []
    assert left_running(str(STAND_IN), str(port)) == []
