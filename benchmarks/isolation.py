"""One system on the CPU at a time. The comparisons start every system under test and then
interleave their steps; between its own steps a system sits idle, but not at rest: Ray's
raylet, GCS and dashboard agents, Triton's backend stubs and BentoML's arbiters took 0.2 of
this 2-core machine's cores during every other system's steps (the 2026-12-05 comparison's
"other" column). So while one system is measured, every other one is stopped (SIGSTOP to
each of its processes, Ray's actors included, which leave the server's session but stay its
descendants), and continued and waited on until ready before its own next step.

A step that something else on the machine still took CPU from (`cores_other` over
CONTAMINATED_CORES) is measured again, up to ATTEMPTS times; the record says how many it
took, and a step that stayed contaminated says so."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from benchmarks import serving

# What the machine's own daemons and the harness use while no other system runs: 0.00-0.05
# cores per step (2026-12-05, predictor and plain alone). Above this something else ran.
CONTAMINATED_CORES = 0.1
ATTEMPTS = 3
RESUME_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def pause(system: serving.System) -> None:
    """Stop every process of the system, parents first (a supervisor stopped before its
    workers cannot react to their stopping)."""
    if system.paused or system.process is None:
        return
    found = serving.tree(system.process.pid)
    for process in found:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.suspend()
    system.paused = True
    # a signal takes effect when the process next runs: wait until each one has stopped
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while not all(_stopped(p) for p in found):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{system.name}'s processes did not all stop")
        time.sleep(0.01)


def _stopped(process: psutil.Process) -> bool:
    try:
        return process.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def resume(system: serving.System, timeout_s: float = RESUME_TIMEOUT_S) -> None:
    """Continue every process of the system, children first, then wait until it is ready."""
    if not system.paused:
        return
    serving.continue_processes(system)
    serving.wait_ready(system, timeout_s, "after being continued")


def measured_alone(systems: Mapping[str, serving.System], name: str, out: Path, **run) -> dict:
    """`serving.measured_run` of systems[name] with every other system stopped; repeated
    while the step was contaminated. `run`: measured_run's keyword arguments."""
    chosen = systems[name]
    for other in systems.values():
        if other is not chosen:
            pause(other)
    resume(chosen)
    for attempt in range(1, ATTEMPTS + 1):
        folder = out if attempt == 1 else out.with_name(f"{out.name}-attempt{attempt}")
        record = serving.measured_run(chosen, folder, **run)
        record["attempts"] = attempt
        if record["cores_other"] <= CONTAMINATED_CORES:
            return record
        time.sleep(2)  # what contaminated it may be a burst that is over
    record["contaminated"] = True
    return record
