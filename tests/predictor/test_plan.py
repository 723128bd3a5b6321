"""How many CPU workers `predictor serve` starts by default, and with how many threads."""

from __future__ import annotations

import os
from pathlib import Path

from modelserve_predictor.plan import usable_cores, worker_plans
from modelserve_predictor.settings import MAX_DEFAULT_CPU_WORKERS, load_settings


def test_a_cgroup_quota_bounds_the_usable_cores(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cores(cpu_max) == affinity  # no cgroup v2 file: the affinity
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == affinity
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs: 2 cores to spread over
    assert usable_cores(cpu_max) == min(affinity, 2)
    cpu_max.write_text("10000 100000\n")
    assert usable_cores(cpu_max) == 1


def test_by_default_one_cpu_worker_per_core_with_one_thread_each() -> None:
    cores = usable_cores()
    plans = worker_plans(load_settings({"gpus": []}))
    assert len(plans) == min(cores, MAX_DEFAULT_CPU_WORKERS)
    assert {p.threads for p in plans} == {max(1, cores // len(plans))}
    (single,) = worker_plans(load_settings({"gpus": [], "workers": 1}))
    assert single.threads == cores
