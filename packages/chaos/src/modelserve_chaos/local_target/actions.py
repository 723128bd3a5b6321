"""Local actions: signals to the supervised predictor and its workers."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from modelserve_chaos.errors import ActionFailed
from modelserve_chaos.local_target.supervisor import Supervisor

__all__ = ["kill_server", "kill_worker", "restart_with_variant", "stall_worker", "term_server"]


def _server_pid(supervisor: Supervisor) -> int:
    if (
        supervisor.pid is None
        or supervisor.process is None
        or supervisor.process.poll() is not None
    ):
        raise ActionFailed("the predictor is not running")
    return supervisor.pid


def kill_worker(supervisor: Supervisor, index: int = 0) -> dict:
    workers = supervisor.workers()
    if not workers:
        raise ActionFailed("no predictor worker is running")
    victim = workers[min(index, len(workers) - 1)]
    os.kill(victim.pid, signal.SIGKILL)
    return {"worker_pid": victim.pid}


def kill_server(supervisor: Supervisor) -> dict:
    pid = _server_pid(supervisor)
    supervisor.kill_tree(signal.SIGKILL)  # the CLI, BentoML's arbiter and every worker
    return {"server_pid": pid, "signal": "SIGKILL"}


def term_server(supervisor: Supervisor) -> dict:
    pid = _server_pid(supervisor)
    os.kill(pid, signal.SIGTERM)
    return {"server_pid": pid, "signal": "SIGTERM"}


def stall_worker(supervisor: Supervisor, seconds: float = 2.0, index: int = 0) -> dict:
    """SIGSTOP a worker, SIGCONT it `seconds` later (a GC pause or a frozen VM)."""
    workers = supervisor.workers()
    if not workers:
        raise ActionFailed("no predictor worker is running")
    victim = workers[min(index, len(workers) - 1)]
    os.kill(victim.pid, signal.SIGSTOP)

    def resume() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGCONT)

    threading.Timer(seconds, resume).start()
    return {"worker_pid": victim.pid, "stalled_s": seconds}


def restart_with_variant(supervisor: Supervisor, models: str) -> dict:
    """Restart the predictor serving `models` (PREDICTOR_MODELS form, e.g.
    `sentiment-minilm@production=onnx-fp32`)."""
    supervisor.replace_env(PREDICTOR_MODELS=models)
    pid = _server_pid(supervisor)
    os.kill(pid, signal.SIGTERM)
    return {"server_pid": pid, "models": models}
