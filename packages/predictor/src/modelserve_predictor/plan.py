"""From settings to the per-worker placement plan (GPU discovery lives here, at the edge)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

from modelserve_predictor.placement import WorkerPlan, parse_gpu_map, plan_workers
from modelserve_predictor.settings import MAX_DEFAULT_CPU_WORKERS, PredictorSettings


def visible_gpus() -> list[int]:
    """GPU indices this process may use, without creating a CUDA context (nvidia-smi)."""
    restricted = os.environ.get("CUDA_VISIBLE_DEVICES")
    if restricted is not None:
        return list(range(len([d for d in restricted.split(",") if d.strip()])))
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return []
    return [int(line) for line in listed.stdout.split() if line.strip().isdigit()]


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, bounded by a cgroup v2 CPU quota
    (a container limited to 2 CPUs on a 64-core node sees 64 in its affinity)."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def worker_plans(settings: PredictorSettings) -> list[WorkerPlan]:
    gpus = settings.gpus if settings.gpus is not None else visible_gpus()
    cores = usable_cores()
    return plan_workers(
        [m.name for m in settings.models],
        gpus=gpus,
        workers_per_gpu=settings.workers_per_gpu,
        cpu_workers=settings.workers or min(cores, MAX_DEFAULT_CPU_WORKERS),
        cpu_count=cores,
        model_gpus=parse_gpu_map(settings.gpu_map),
    )
