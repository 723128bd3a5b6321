"""`chaos run`: hypothesis before, load and disruptions together, hypothesis after, rollbacks,
then the cost of each disruption computed from the load test's raw records."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from modelserve_chaos.errors import ActionFailed, ExperimentAborted
from modelserve_chaos.experiment import Action, Experiment, Hypothesis
from modelserve_chaos.metrics import ChaosMetrics
from modelserve_chaos.recovery import Request, availability, impact
from modelserve_chaos.timeline import plot_timeline


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _ready(url):
            return True
        time.sleep(0.5)
    return False


def check(hypothesis: Hypothesis, url: str, requests: list[Request] | None) -> dict:
    """Probe results; load-based probes look at the last `window_s` of the load."""
    results = []
    for probe in hypothesis.probes:
        value: Any = None
        ok: bool | None = None
        if probe.kind == "http":
            try:
                value = httpx.get(probe.url or f"{url}/readyz", timeout=5).status_code
            except httpx.HTTPError as exc:
                value = f"{type(exc).__name__}"
            ok = value == probe.tolerance
        elif probe.kind in ("error_rate", "p99_ms") and requests:
            end = max(r.intended for r in requests)
            window = [r for r in requests if r.intended >= end - probe.window_s]
            if probe.kind == "error_rate":
                value = sum(not r.ok for r in window) / max(1, len(window))
            else:
                latencies = sorted(r.latency_ms for r in window if r.ok and r.latency_ms)
                value = latencies[int(0.99 * (len(latencies) - 1))] if latencies else None
            ok = value is not None and value <= probe.tolerance
        elif probe.kind == "prometheus":
            value, ok = _prometheus(probe.url, probe.query, probe.tolerance)
        results.append(
            {
                "probe": probe.name,
                "kind": probe.kind,
                "value": value,
                "tolerance": probe.tolerance,
                "ok": ok,
            }
        )
    return {"ok": all(r["ok"] is not False for r in results), "probes": results}


def _prometheus(base: str | None, query: str | None, tolerance: Any) -> tuple[Any, bool]:
    """First sample of an instant query, healthy when inside [low, high] (or <= tolerance)."""
    if not base or not query:
        return "prometheus probes need url and query", False
    try:
        answer = httpx.get(
            f"{base.rstrip('/')}/api/v1/query", params={"query": query}, timeout=5
        ).json()
        value = float(answer["data"]["result"][0]["value"][1])
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        return f"no value: {type(exc).__name__}", False
    low, high = tolerance if isinstance(tolerance, list) else (float("-inf"), tolerance)
    return value, low <= value <= high


class Executor:
    """Carries out actions on the experiment's target."""

    def __init__(self, experiment: Experiment, supervisor: Any = None, clients: Any = None) -> None:
        self.experiment, self.supervisor, self.clients = experiment, supervisor, clients

    def __call__(self, step: Action) -> dict:
        from modelserve_chaos.actions import REGISTRY_ACTIONS

        target, args = self.experiment.target, dict(step.arguments)
        if step.action in REGISTRY_ACTIONS:
            from modelserve_chaos import registry_actions

            return registry_actions.run(step.action, args)
        if target.kind == "local":
            from modelserve_chaos.local_target import actions as local

            function = getattr(local, step.action.replace("-", "_"))
            return function(self.supervisor, **args)
        from modelserve_chaos.kubernetes_target import actions as k8s

        if step.action in k8s.NODE_COMMANDS:
            return k8s.node_command(step.action, bool(args.get("via_nsenter")))
        if step.action == "rollout-restart":
            return k8s.rollout_restart(self.clients, target.namespace, target.deployment)
        if step.action == "delete-replica-set":
            return k8s.delete_replica_set(self.clients, target.namespace, target.label_selector)
        if step.action == "delete-pod":
            return k8s.delete_pod(
                self.clients,
                target.namespace,
                target.label_selector,
                int(args.get("grace_period_s", 0)),
            )
        return k8s.scale(self.clients, target.namespace, target.deployment, int(args["replicas"]))


def _annotate(grafana_url: str | None, event: dict) -> str | None:
    if not grafana_url:
        return None
    try:
        httpx.post(
            f"{grafana_url.rstrip('/')}/api/annotations",
            timeout=2,
            json={
                "time": int(event["t"] * 1000),
                "tags": ["chaos", event["action"]],
                "text": f"{event['name']} ({event['action']})",
            },
        ).raise_for_status()
        return None
    except httpx.HTTPError as exc:
        return f"grafana annotation failed: {exc}"


def read_load(folder: Path) -> list[Request]:
    from modelserve_loadtest.records import read_requests

    return [Request(r.intended, r.finished, r.ok) for r in read_requests(folder / "requests.csv")]


def _start_load(
    experiment: Experiment, out: Path, load_metrics_port: int | None
) -> tuple[subprocess.Popen, float]:
    """The open-loop load in a subprocess, and the time of its first arrival."""
    url, load = experiment.target.url, experiment.load
    command = [
        str(Path(sys.executable).parent / "loadtest"),
        "run",
        "--host",
        url,
        "--scenario",
        load.scenario,
        "--rate",
        str(load.rate),
        "--duration",
        str(load.duration_s),
        "--seed",
        str(load.seed),
        "--endpoint",
        load.endpoint,
        "--slo-ms",
        str(load.slo_ms),
        "--out",
        str(out / "load"),
        "--quiet",
        "--started-file",
        str(out / "load-started"),
    ]
    if load.shape is not None:
        command += ["--shape", str(load.shape)]
    if load.model:
        command += ["--model", load.model]
    if load_metrics_port is not None:
        command += ["--metrics-port", str(load_metrics_port), "--metrics-linger", "3"]
    marker = out / "load-started"
    marker.unlink(missing_ok=True)
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120  # action offsets count from the load's first arrival
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    return process, float(marker.read_text()) if marker.exists() else time.time()


def _stop_load(process: subprocess.Popen | None) -> None:
    """After an abort: the load must not outlive the run."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=30)


def _roll_back(experiment: Experiment, execute: Executor) -> list[dict]:
    """Every rollback runs, whatever the one before it did."""
    done = []
    for step in experiment.rollbacks:
        try:
            done.append({"name": step.name, "result": execute(step)})
        except Exception as exc:  # a broken rollback must not skip the next one
            done.append({"name": step.name, "error": _describe(exc)})
    return done


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ActionFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def run_experiment(
    experiment: Experiment,
    out: Path,
    execute: Executor,
    grafana_url: str | None = None,
    metrics: ChaosMetrics | None = None,
    load_metrics_port: int | None = None,
) -> dict:
    """Run it and write `journal.json`. Rollbacks run and the journal is written however
    the run ends; an unexpected failure is recorded (`error`, `deviated: true`) and raised
    as ExperimentAborted."""
    out.mkdir(parents=True, exist_ok=True)
    journal: dict[str, Any] = {"title": experiment.title, "started": time.time(), "events": []}
    readiness: list[tuple[float, bool]] = []
    requests: list[Request] = []
    try:
        try:
            requests = _observe(
                experiment,
                out,
                execute,
                journal,
                readiness,
                grafana_url,
                metrics,
                load_metrics_port,
            )
        finally:
            journal["rollbacks"] = _roll_back(experiment, execute)
        _summarise(journal, requests, readiness, experiment.load.slo_ms, experiment.load.rate)
        if metrics:
            for event in journal["events"]:
                if "impact" in event:
                    recovery = event["impact"]["time_to_recovery_s"]
                    metrics.recovered(event["action"], event["name"], recovery)
    except BaseException as exc:
        journal["error"] = _describe(exc)
        journal["deviated"] = True
        if isinstance(exc, Exception):
            raise ExperimentAborted(
                f"{experiment.title!r} aborted: {journal['error']}; rollbacks ran, "
                f"journal: {out / 'journal.json'}"
            ) from exc
        raise
    finally:
        journal["readiness"] = readiness
        journal["ended"] = time.time()
        (out / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    if requests:
        plot_timeline(requests, journal["events"], experiment.load.slo_ms, out / "timeline.png")
    return journal


def _observe(
    experiment: Experiment,
    out: Path,
    execute: Executor,
    journal: dict[str, Any],
    readiness: list[tuple[float, bool]],
    grafana_url: str | None,
    metrics: ChaosMetrics | None,
    load_metrics_port: int | None,
) -> list[Request]:
    """Hypothesis, load and method, hypothesis again: the requests the load made. The load
    and the readiness sampler are stopped however this ends."""
    url, load = experiment.target.url, experiment.load
    journal["before"] = check(experiment.steady_state_hypothesis, url, None)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            ok = _ready(url)
            readiness.append((time.time(), ok))  # stamped when the answer is known
            if metrics:
                metrics.ready(ok)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load_process: subprocess.Popen | None = None
    try:
        load_process, started = _start_load(experiment, out, load_metrics_port)
        for step in sorted(experiment.method, key=lambda s: s.at_s):
            time.sleep(max(0.0, started + step.at_s - time.time()))
            event: dict[str, Any] = {"t": time.time(), "name": step.name, "action": step.action}
            journal["events"].append(event)
            try:
                event["result"] = execute(step)
            except ActionFailed as exc:
                event["error"] = str(exc)
            except Exception as exc:
                event["error"] = _describe(exc)
                raise
            finally:
                if metrics:
                    metrics.disrupted(step.action, "error" not in event)
            event["annotation_error"] = _annotate(grafana_url, event)
            time.sleep(step.pause_after_s)
        _, load_errors = load_process.communicate(timeout=load.duration_s + 300)
        load_ok = load_process.returncode == 0
    finally:
        stop.set()
        sampler.join()
        _stop_load(load_process)
    requests = read_load(out / "load") if load_ok else []
    journal["load_error"] = None if load_ok else load_errors[-500:]
    journal["after"] = check(experiment.steady_state_hypothesis, url, requests)
    journal["deviated"] = not journal["after"]["ok"]
    return requests


def _summarise(
    journal: dict[str, Any],
    requests: list[Request],
    readiness: list[tuple[float, bool]],
    slo_ms: float,
    rate: float,
) -> None:
    """The cost of each disruption that happened, and the totals."""
    end = max((r.intended for r in requests), default=time.time()) + 1
    done = [e for e in journal["events"] if "result" in e]
    for event, following in zip(done, [*done[1:], None], strict=True):
        window_end = following["t"] if following else end
        event["impact"] = impact(requests, readiness, event["t"], window_end, slo_ms, rate).__dict__
    recoveries = [e["impact"]["time_to_recovery_s"] for e in done]
    journal["totals"] = {
        "requests": len(requests),
        "availability": availability(requests),
        "requests_lost": sum(not r.ok for r in requests),
        "worst_time_to_recovery_s": None
        if None in recoveries or not recoveries
        else max(recoveries),
        "unrecovered": sum(r is None for r in recoveries),
    }
