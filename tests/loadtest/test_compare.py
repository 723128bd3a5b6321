from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelserve_loadtest.compare import compare, load_variant, markdown
from modelserve_loadtest.errors import NoRuns
from modelserve_loadtest.records import Record, write_requests
from modelserve_loadtest.report import summarize


def fake_run(folder: Path, latencies_ms: np.ndarray, failures: int = 0) -> Path:
    folder.mkdir(parents=True)
    records = [
        Record(i, 1000.0 + i * 0.1, 1000.0 + i * 0.1, 1000.0 + i * 0.1 + ms / 1000, 200, None)
        for i, ms in enumerate(latencies_ms)
    ]
    records += [
        Record(len(records) + j, 2000.0, 2000.0, 2000.1, 503, "HTTP 503") for j in range(failures)
    ]
    write_requests(records, folder / "requests.csv")
    summary = summarize(records, duration_s=60.0, process=None)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_single_runs_compare_per_request(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    fast = fake_run(tmp_path / "fast", rng.normal(100, 10, 500))
    slow = fake_run(tmp_path / "slow", rng.normal(130, 10, 500), failures=5)
    result = compare([load_variant(fast), load_variant(slow)], resamples=300)
    rows = {r["variant"]: r for r in result["table"]}
    assert rows["fast"]["p50"] == pytest.approx(100, abs=2)
    assert rows["slow"]["failure_rate"] == pytest.approx(5 / 505)
    (pair,) = result["pairs"]
    assert pair["unit"] == "request" and pair["a12"] > 0.95 and pair["mann_whitney_p"] < 1e-10
    assert pair["p50"]["verdict"] == "second is slower" and pair["p50"]["ci95"][0] > 20
    assert "| fast -> slow | request |" in markdown(result)


def test_repeated_runs_are_pooled_per_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for variant, centre in (("a", 100), ("b", 100)):
        for run in range(3):
            fake_run(tmp_path / variant / f"run{run}", rng.normal(centre, 10, 300))
    result = compare([load_variant(tmp_path / "a"), load_variant(tmp_path / "b")], resamples=300)
    assert [r["runs"] for r in result["table"]] == [3, 3]
    (pair,) = result["pairs"]
    assert pair["unit"] == "run p50"
    assert pair["p50"]["verdict"] == "no detectable difference"


def test_compare_cli_writes_markdown_and_refuses_empty_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a = fake_run(tmp_path / "a", rng.normal(50, 5, 200))
    b = fake_run(tmp_path / "b", rng.normal(50, 5, 200))
    loadtest = Path(sys.executable).parent / "loadtest"
    done = subprocess.run(
        [
            str(loadtest),
            "compare",
            str(a),
            str(b),
            "--out",
            str(tmp_path / "cmp.md"),
            "--resamples",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "| a | 1 | 200 |" in (tmp_path / "cmp.md").read_text()
    assert json.loads((tmp_path / "cmp.json").read_text())["pairs"][0]["a"] == "a"
    (tmp_path / "empty").mkdir()
    refused = subprocess.run(
        [str(loadtest), "compare", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 3 and "holds no run" in refused.stderr
    with pytest.raises(NoRuns):
        load_variant(tmp_path / "missing")


def test_a_run_compared_with_itself_shows_no_difference(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "same", np.random.default_rng(4).normal(80, 8, 300))
    result = compare([load_variant(run), load_variant(run)], resamples=300)
    (pair,) = result["pairs"]
    assert pair["a12"] == pytest.approx(0.5) and pair["p99"]["diff_ms"] == 0
    assert all(pair[q]["verdict"] == "no detectable difference" for q in ("p50", "p95", "p99"))
