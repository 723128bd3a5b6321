"""The local target's supervisor and signals, on a stand-in process tree (a parent with two
children whose command lines look like BentoML workers)."""

from __future__ import annotations

import sys
import time

import psutil
import pytest

from modelserve_chaos.local_target import actions
from modelserve_chaos.local_target.supervisor import Supervisor

TREE = (
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)',"
    " '--worker-id', str(i)]) for i in (1, 2)]\n"
    "time.sleep(600)\n"
)


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def supervised():
    supervisor = Supervisor([sys.executable, "-c", TREE], restart_delay_s=0.1)
    supervisor.start()
    assert wait_for(lambda: len(supervisor.workers()) == 2)
    yield supervisor
    supervisor.stop()


def test_stall_stops_a_worker_and_resumes_it(supervised: Supervisor) -> None:
    # SIGSTOP is delivered asynchronously: the victim shows as stopped a moment later, and
    # the stall lasts long enough for a busy machine's poll to see it before it resumes.
    result = actions.stall_worker(supervised, seconds=4.0)
    victim = psutil.Process(result["worker_pid"])
    assert wait_for(lambda: victim.status() == psutil.STATUS_STOPPED, 3.5)
    assert wait_for(lambda: victim.status() != psutil.STATUS_STOPPED, 20)


def test_term_and_kill_are_followed_by_a_restart_and_no_orphans(supervised: Supervisor) -> None:
    first_workers = {p.pid for p in supervised.workers()}
    old = actions.kill_server(supervised)["server_pid"]
    assert wait_for(lambda: supervised.pid != old and len(supervised.workers()) == 2)
    assert supervised.restarts == 1
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in first_workers
    )
    actions.term_server(supervised)
    assert wait_for(lambda: supervised.restarts == 2 and len(supervised.workers()) == 2)


def test_kill_worker_kills_exactly_one(supervised: Supervisor) -> None:
    before = {p.pid for p in supervised.workers()}
    killed = actions.kill_worker(supervised)["worker_pid"]
    assert killed in before
    assert wait_for(lambda: {p.pid for p in supervised.workers()} == before - {killed})


def test_restart_with_variant_changes_what_the_next_start_serves(supervised: Supervisor) -> None:
    actions.restart_with_variant(supervised, "m@production=onnx-fp32")
    assert supervised.env["PREDICTOR_MODELS"] == "m@production=onnx-fp32"
    assert wait_for(lambda: supervised.restarts == 1)
