"""Forgetting dead workers' gauges in a real multiprocess folder, with real processes."""

from __future__ import annotations

import subprocess
import sys

from modelserve_predictor.metrics import forget_dead_workers

WRITE_GAUGES = """
import os
from prometheus_client import Counter, Gauge
Gauge("queue", "q", multiprocess_mode="livesum").set(256)
Gauge("stamp", "s").set(1)
Counter("served", "s").inc()
"""


def test_only_dead_processes_lose_their_gauges_and_counters_stay(tmp_path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": ""}
    finished = subprocess.run([sys.executable, "-c", WRITE_GAUGES], env=env, check=True)
    assert finished.returncode == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    dead_pid = int(names[0].rsplit("_", 1)[1].split(".")[0])
    (tmp_path / f"gauge_livesum_{1}.db").write_bytes(b"")  # pid 1 is alive (init)
    assert forget_dead_workers(str(tmp_path)) == [dead_pid]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f"counter_{dead_pid}.db", "gauge_livesum_1.db"])
    assert forget_dead_workers(str(tmp_path)) == []
