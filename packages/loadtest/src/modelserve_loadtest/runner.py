"""Open-loop load on Locust: one scheduler user walks the whole arrival schedule and spawns a
greenlet per arrival at its intended time, whether or not earlier requests have returned.
Latency is measured from the *intended* send time (wrk2's correction), so a stalled server
cannot hide its stall. Arrivals that find every in-flight slot busy are recorded as dropped.

Import this module before anything that imports ssl or urllib3: locust's gevent patching must
come first (see ../shared/notes/stack.md)."""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import gevent
import gevent.pool
import numpy as np
from locust import FastHttpUser, task
from locust.env import Environment
from locust.exception import StopUser

from modelserve_loadtest.metrics import LoadMetrics
from modelserve_loadtest.records import Record


@dataclass
class RunPlan:
    offsets: np.ndarray
    path: str
    bodies: list[dict]
    max_in_flight: int = 1000
    drain_timeout_s: float = 30.0
    started_file: str | None = None  # gets the start time, for tools aligning events to the load
    headers: dict[str, str] = field(default_factory=dict)
    metrics: LoadMetrics | None = None  # live Prometheus view of the run, when exported
    records: list[Record] = field(default_factory=list)
    started: float = 0.0
    done: bool = False


class OpenLoopUser(FastHttpUser):
    abstract = True  # concrete users (run(), the locustfile) supply `plan`
    plan: RunPlan
    concurrency = 1000
    network_timeout = 60.0
    connection_timeout = 10.0

    @task
    def drive(self) -> None:
        plan = self.plan
        pool = gevent.pool.Pool(plan.max_in_flight)
        plan.started = time.time()
        if plan.started_file:
            with open(plan.started_file, "w") as marker:
                marker.write(f"{plan.started:.6f}\n")
        for index, offset in enumerate(plan.offsets):
            intended = plan.started + float(offset)
            delay = intended - time.time()
            if delay > 0:
                gevent.sleep(delay)
            if plan.metrics:
                plan.metrics.arrival()
            if pool.full():
                dropped = Record(index, intended, None, None, 0, "dropped")
                plan.records.append(dropped)
                if plan.metrics:
                    plan.metrics.finished(dropped)
                continue
            pool.spawn(self._send, index, intended)
        pool.join(timeout=plan.drain_timeout_s)
        pool.kill()
        plan.done = True
        raise StopUser()

    def _send(self, index: int, intended: float) -> None:
        plan = self.plan
        body = plan.bodies[index % len(plan.bodies)]
        sent = time.time()
        if plan.metrics:
            plan.metrics.sending(intended, sent)
        status, error = 0, None
        try:
            with self.client.post(
                plan.path,
                json=body,
                headers=plan.headers,
                catch_response=True,
                context={"intended": intended},
            ) as response:
                status = response.status_code or 0
                if not 200 <= status < 300:
                    error = f"HTTP {status}" if status else (str(response.error) or "no response")
                    response.failure(error)
        except Exception as exc:  # the record must exist whatever happened
            error = f"{type(exc).__name__}: {exc}"
        record = Record(index, intended, sent, time.time(), status, error)
        plan.records.append(record)
        if plan.metrics:
            plan.metrics.finished(record)


def _progress(plan: RunPlan, total: int, out: Callable[[str], None]) -> None:
    while not plan.done:
        gevent.sleep(1.0)
        if not plan.started:
            continue
        recent = [r.latency_ms for r in plan.records[-500:] if r.latency_ms is not None]
        p99 = f"{np.percentile(recent, 99):.0f} ms" if recent else "-"
        failures = sum(1 for r in plan.records if not r.ok)
        out(
            f"\r{time.time() - plan.started:6.1f}s done {len(plan.records)}/{total} "
            f"failures {failures} p99(last 500) {p99}   "
        )


# The oldest generation collects only after this many young collections: never, in a run.
NO_FULL_COLLECTION = 10**9


@contextlib.contextmanager
def no_full_collections() -> Iterator[None]:
    """Keep the collector's full pass out of the run. It walks every record gathered so far
    with every greenlet stopped: 56-111 ms at 15-30 thousand records (measured, 2 cores),
    which showed as a stall of the server under test: the slowest rejections and admitted
    answers of an overload run were all sent in the two 100 ms spans around two such passes.
    The young generations still collect (under 3 ms each); what is old when the run starts
    is frozen, and one full collection runs after it."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold[0], threshold[1], NO_FULL_COLLECTION)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        gc.collect()


def run(host: str, plan: RunPlan, progress: bool = True) -> list[Record]:
    """Drive the whole schedule against `host` and return one record per arrival."""
    with no_full_collections():
        return _run(host, plan, progress)


def _run(host: str, plan: RunPlan, progress: bool) -> list[Record]:
    user = type("ScheduledUser", (OpenLoopUser,), {"plan": plan, "host": host})
    environment = Environment(user_classes=[user], host=host)
    runner = environment.create_local_runner()

    def show(line: str) -> None:
        sys.stderr.write(line)
        sys.stderr.flush()

    watcher = gevent.spawn(_progress, plan, len(plan.offsets), show) if progress else None
    runner.start(1, spawn_rate=1)
    while not plan.done:
        gevent.sleep(0.1)
    runner.quit()
    if watcher is not None:
        watcher.kill()
        show("\n")
    return sorted(plan.records, key=lambda r: r.index)
