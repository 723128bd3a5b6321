"""The harness the served benchmarks (capacity, service_level, predictor_targets,
peers.compare) share: the systems under test as real processes on free 127.0.0.1 ports (the
naive baseline, the predictor with 1 or 2 workers, the peers), started and stopped alike and
waited on until ready; one open-loop `loadtest run` against one of them, with the CPU that
server, generator and the rest of the machine used in that step (`measured_run`); searches
of several systems interleaved one step each in turn (`interleave`); and the in-process
reference throughput. Run any of them from the repository root as a module:
`uv run python -m benchmarks.capacity`.

The load generator runs as its own process (`loadtest run`), as a user would run it; on this
2-core machine it competes with the server for CPU, which every system pays alike."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from modelserve_loadtest.payloads import BUILT_IN, bodies, route
from modelserve_loadtest.sweep import Capacity, Step

REPO = Path(__file__).resolve().parents[1]
MODEL = "roberta-base-synthetic"  # the study's architecture
VARIANT = "onnx-int8"  # the predictor's fastest CPU variant
WARM_UP_REQUESTS = 8  # every built-in text once
BASELINE_FOLDER = Path.home() / ".cache" / "modelserve" / "benchmarks" / f"{MODEL}-hf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class System:
    """One server under test: how to start it and where it answers."""

    name: str
    description: str
    command: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    cwd: Path = REPO  # the baseline service is imported as benchmarks.baseline.service
    endpoint: str = "analyze"  # the body `loadtest run --endpoint` sends it
    model: str | None = None  # `loadtest run --model` (the OIP endpoints name the model)
    ready_path: str = "/readyz"
    # SIGTERM the leader alone first, for servers whose processes leave the session (Ray's
    # actors each start their own): it stops them, then the session is killed
    stop_leader_first: bool = False
    paused: bool = False  # its processes stopped (SIGSTOP) while another system is measured

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def baseline(model_dir: Path) -> System:
    """The study's "Base": BentoML + transformers pipeline, FP32 PyTorch, one text per call."""
    system = System(
        name="baseline",
        description="naive: BentoML + transformers pipeline, FP32 PyTorch, 1 text per call",
        command=[],
        env={"BASELINE_MODEL_DIR": str(model_dir)},
    )
    system.command = [
        *_bentoml(),
        "serve",
        "benchmarks.baseline.service:Baseline",
        "--host",
        "127.0.0.1",
        "--port",
        str(system.port),
    ]
    return system


def _bentoml() -> list[str]:
    return [str(Path(sys.executable).with_name("bentoml"))]


# An operator serving a latency SLO sets the predictor's admission budget to this share of it
# (the default budget, 50 ms, is set for a 50 ms SLO).
WAIT_SHARE_OF_SLO = 0.6


def predictor(
    workers: int, model: str = MODEL, variant: str = VARIANT, max_queue_wait_ms: float | None = None
) -> System:
    """`max_queue_wait_ms`: the model's admission wait budget when not the default, as an
    operator sets it for the SLO being served (a slow model refuses early under 50 ms)."""
    models = f"{model}@production={variant}"
    description = f"predictor: {variant}, adaptive batching, {workers} CPU worker(s)"
    if max_queue_wait_ms is not None:
        config = {"ref": f"{model}@production", "variant": variant}
        models = json.dumps([{**config, "max_queue_wait_ms": max_queue_wait_ms}])
        description += f", wait budget {max_queue_wait_ms:g} ms"
    system = System(
        name=f"predictor-{workers}w",
        description=description,
        command=[sys.executable, "-m", "modelserve_predictor", "serve"],
        env={
            "PREDICTOR_MODELS": models,
            "PREDICTOR_WORKERS": str(workers),
            "PREDICTOR_HOST": "127.0.0.1",
        },
    )
    system.env["PREDICTOR_PORT"] = str(system.port)
    return system


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the benchmark's `finally` stops the servers it started
    instead of leaving them running (Python's default for SIGTERM skips every `finally`)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def start(system: System, logs: Path, timeout_s: float = 600) -> None:
    """Start the server in its own session and wait until /readyz answers 200."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{system.name}.log", "ab") as log:
        system.process = subprocess.Popen(
            system.command,
            env={**os.environ, **system.env},
            cwd=system.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(system, timeout_s, f"see {logs / (system.name + '.log')}")
    except RuntimeError:
        stop(system)
        raise
    warm_up(system)


def wait_ready(system: System, timeout_s: float, hint: str = "") -> None:
    """Until the system's ready path answers 200; RuntimeError if it exits or times out."""
    assert system.process is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if system.process.poll() is not None:
            raise RuntimeError(f"{system.name} exited; {hint}")
        try:
            if httpx.get(system.host + system.ready_path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{system.name} was not ready within {timeout_s:g} s; {hint}")


def warm_up(system: System, requests: int = WARM_UP_REQUESTS) -> None:
    """A few requests, one at a time, through the route the load will use, before anything
    is timed: a server's first answers (lazy initialisation, cold caches, PyTorch's first
    passes) would otherwise land in the first step's p99."""
    path = route(system.endpoint, system.model)
    with httpx.Client(base_url=system.host, timeout=60) as client:
        for body in bodies(BUILT_IN[:requests], system.endpoint, system.model):
            answer = client.post(path, json=body)
            if answer.status_code != 200:
                stop(system)
                raise RuntimeError(
                    f"{system.name} answered its warm-up with {answer.status_code}: "
                    f"{answer.text[:300]}"
                )


def stop(system: System) -> None:
    """SIGTERM the whole session (BentoML's arbiter and workers), SIGKILL what lingers."""
    process = system.process
    if process is None:
        return
    continue_processes(system)  # a stopped process acts on SIGTERM only once continued
    if system.stop_leader_first:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    system.process = None


def ensure_baseline_model(folder: Path = BASELINE_FOLDER) -> Path:
    """roberta-base-synthetic as a plain Hugging Face folder (the registry bootstrap's seeded
    weights), written once and reused."""
    if not (folder / "config.json").exists():
        from modelserve_registry.bootstrap import build_roberta_synthetic

        build_roberta_synthetic(folder)
    return folder


def load_run(
    system: System,
    out: Path,
    *,
    rate: float,
    duration_s: float,
    scenario: str = "steady",
    seed: int = 0,
    texts: Path | None = None,
    slo_ms: float | None = None,
) -> dict:
    """One open-loop run (`loadtest run`) against `system`; returns its summary.json."""
    command = [
        sys.executable,
        "-m",
        "modelserve_loadtest",
        "run",
        "--host",
        system.host,
        "--scenario",
        scenario,
        "--rate",
        f"{rate:g}",
        "--duration",
        f"{duration_s:g}",
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--quiet",
        "--endpoint",
        system.endpoint,
    ]
    if texts is not None:
        command += ["--texts", str(texts)]
    if system.model is not None:
        command += ["--model", system.model]
    if slo_ms is not None:
        command += ["--slo-ms", f"{slo_ms:g}"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 300, cwd=REPO
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadtest against {system.name} failed: {done.stderr[-1000:]}")
    return json.loads((out / "summary.json").read_text())


def step_of(record: dict) -> Step:
    """A sweep step from a `measured_run` record."""
    return Step(record["rate"], record["p99_ms"], record["failure_rate"], record["requests"])


def step_from_summary(rate: float, summary: dict) -> Step:
    """A sweep step from a run's summary: dropped arrivals count as failures."""
    failed = summary["failures"] + summary["dropped"]
    return Step(
        rate=rate,
        p99_ms=summary["latency_ms"]["p99"],
        failure_rate=failed / max(1, summary["requests"]),
        requests=summary["requests"],
    )


def load_model(model: str = MODEL, variant: str = VARIANT):
    """The variant the predictor would serve (`model@production`), pulled from the default
    registry into its cache and loaded in this process."""
    from modelserve_predictor.models import fetch
    from modelserve_predictor.placement import Device
    from modelserve_predictor.settings import ModelConfig
    from modelserve_runtime.inference import TextModel
    from modelserve_runtime.settings import StoreSettings
    from modelserve_runtime.store import Registry

    settings = StoreSettings()
    registry = Registry.open(settings.uri)
    folder = fetch(
        registry,
        registry.manifest(f"{model}@production"),
        ModelConfig(ref=f"{model}@production", variant=variant),
        Device("cpu"),
        settings.cache_dir / "pulled",
    )
    return TextModel(folder)


def in_process_batch1(texts: list[str], model: str = MODEL, variant: str = VARIANT) -> dict:
    """Texts per second of the served variant called in this process one text at a time, on
    the same texts the load test sends (the "prize" the served figure is measured against)."""
    text_model = load_model(model, variant)
    text_model.predict(texts[:8])
    seconds = []
    for text in texts:
        started = time.perf_counter()
        text_model.predict([text])
        seconds.append(time.perf_counter() - started)
    return {
        "texts": len(texts),
        "texts_per_s": len(texts) / sum(seconds),
        "p50_ms": 1000 * statistics.median(seconds),
    }


def interleave(
    searches: dict[tuple[str, float], Generator[float, Step, Capacity]],
    measure,
    on_step=None,
) -> dict[tuple[str, float], Capacity]:
    """Drive the searches with one measured step per system in turn. A system's searches
    (one per SLO) share its measurements: a rate already measured for it is answered from
    the cache, so the 100 ms and 250 ms searches cost one ramp, not two."""
    measured: dict[tuple[str, float], Step] = {}
    pending = {key: next(search) for key, search in searches.items()}
    results: dict[tuple[str, float], Capacity] = {}
    systems = list(dict.fromkeys(system for system, _ in searches))

    def answer_from_cache(system: str) -> None:
        for key in [k for k in pending if k[0] == system]:
            while key in pending and (system, round(pending[key], 6)) in measured:
                try:
                    pending[key] = searches[key].send(measured[(system, round(pending[key], 6))])
                except StopIteration as done:
                    results[key] = done.value
                    del pending[key]

    while pending:
        for system in systems:
            answer_from_cache(system)
            waiting = [key for key in pending if key[0] == system]
            if not waiting:
                continue
            rate = pending[waiting[0]]
            step = measure(system, rate)
            measured[(system, round(rate, 6))] = step
            if on_step:
                on_step(system, step)
            answer_from_cache(system)
    return results


def tree(pid: int) -> list[psutil.Process]:
    """A process and its live descendants, parents before children (Ray's actors leave the
    server's session but stay its descendants)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def continue_processes(system: System) -> None:
    """SIGCONT to every process of a paused system (`isolation.pause`), children first."""
    if not system.paused or system.process is None:
        return
    for process in reversed(tree(system.process.pid)):
        with contextlib.suppress(psutil.Error):
            process.resume()
    system.paused = False


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its live children."""
    total = 0.0
    for process in tree(pid):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def measured_run(
    system: System, out: Path, *, rate: float, duration_s: float, texts: Path, seed: int
) -> dict:
    """One `loadtest run` step with the CPU (cores: CPU seconds per second of the whole run,
    its start-up included) that the server's processes, the load generator and everything
    else on the machine used, so that a step something else contaminated shows."""
    assert system.process is not None
    machine_before = psutil.cpu_times()
    server_before = tree_cpu_s(system.process.pid)
    generator_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    summary = load_run(system, out, rate=rate, duration_s=duration_s, texts=texts, seed=seed)
    wall = time.perf_counter() - started
    generator_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_after = psutil.cpu_times()
    busy = sum(
        getattr(machine_after, f) - getattr(machine_before, f)
        for f in ("user", "system", "nice", "irq", "softirq")
    )
    server = tree_cpu_s(system.process.pid) - server_before
    generator = (generator_after.ru_utime - generator_before.ru_utime) + (
        generator_after.ru_stime - generator_before.ru_stime
    )
    step = step_from_summary(rate, summary)
    latency = summary["latency_ms"]
    return {
        "rate": rate,
        "requests": step.requests,
        "failure_rate": step.failure_rate,
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "cores_server": server / wall,
        "cores_generator": generator / wall,
        "cores_other": max(0.0, busy - server - generator) / wall,
    }
