"""The predictor against real peers (issue 14): the same ONNX file and tokenizer behind each
server, the same open-loop Poisson load of real Sp1786 texts (`loadtest run`, its own
process), capacity searches interleaved one step per system in turn.

    uv run python -m benchmarks.peers.compare [--systems predictor-1w,plain,...]
        [--step-duration 30] [--out benchmarks/results/peers]

Each peer is its own uv project under benchmarks/peers/ with pinned versions (their
dependencies stay out of the workspace lock); `uv sync` of each happens on its first run.
Before any timing, every system answers the same 20 texts alone and must give the
predictor's labels. During each step every other system is stopped (SIGSTOP), and the CPU
seconds of the server's processes, of the load generator and of everything else on the
machine are recorded; a step that something else took CPU from is measured again
(`isolation.measured_alone`). Capacity at an SLO: the highest rate whose step had p99 under it
and < 1% failures (`modelserve_loadtest.sweep`).

Writes peers.json ({"systems": {NAME: {"capacity_p99_50ms", "capacity_p99_100ms",
"p50_ms_at_20rps", ...}}}), peers.md and one latency-vs-rate plot per system."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console

from benchmarks import isolation, serving
from benchmarks.reliability import cpu_model
from modelserve_loadtest.payloads import bodies, read_texts, route
from modelserve_loadtest.sweep import Step, capacity_search
from modelserve_registry.settings import find_shared_data

MODEL, VARIANT = "sentiment-minilm", "onnx-int8"
PEERS = Path(__file__).resolve().parent
RESULTS = serving.REPO / "benchmarks" / "results" / "peers"
SLOS_MS = (50.0, 100.0)
FIRST_RATE = 20.0  # every search starts here: its step also gives the p50 at 20 req/s
console = Console(width=None if sys.stdout.isatty() else 120)


def model_folder(
    reference: str = f"{MODEL}@production",
    registry_uri: str | None = None,
    cache: Path | None = None,
) -> Path:
    """The pulled folder of the variant the predictor serves (model.onnx, tokenizer,
    manifest.json), from the default registry unless told: every peer loads these files."""
    from modelserve_predictor.models import fetch
    from modelserve_predictor.placement import Device
    from modelserve_predictor.settings import ModelConfig
    from modelserve_runtime.settings import StoreSettings
    from modelserve_runtime.store import Registry

    settings = StoreSettings()
    registry = Registry.open(registry_uri or settings.uri)
    config = ModelConfig(ref=reference, variant=VARIANT)
    manifest = registry.manifest(reference)
    cache = cache or settings.cache_dir / "pulled"
    return fetch(registry, manifest, config, Device("cpu"), cache)


def uv() -> str:
    found = shutil.which("uv")
    if not found:
        raise SystemExit("the peers run in their own uv projects: uv must be on PATH")
    return found


SERVER_PY = ["python", "server.py", "--port", "{port}"]
# name -> (description, command in its project, System fields that differ from the defaults)
PEER_SERVERS: dict[str, tuple[str, list[str], dict]] = {
    "plain": (
        "Starlette + uvicorn (uvloop, httptools), ONNX Runtime in the handler, no batching",
        SERVER_PY,
        {},
    ),
    "bentoml-batchable": (
        "BentoML 1.4.40, one service, batchable API (adaptive batching, <= 32)",
        ["bentoml", "serve", "service:Sentiment", "--host", "127.0.0.1", "--port", "{port}"],
        {"endpoint": "analyze-list"},
    ),
    "litserve": (
        "LitServe 0.2.19, max_batch_size 32, batch_timeout 5 ms, 1 CPU worker",
        SERVER_PY,
        {"ready_path": "/health"},
    ),
    "ray-serve": (
        "Ray Serve 2.60.0, one replica, @serve.batch (<= 32, 5 ms wait)",
        SERVER_PY,
        {"stop_leader_first": True},
    ),
    "pytriton": (
        "PyTriton 0.7.0: Triton Inference Server, Python backend, dynamic batching <= 32, "
        "5 ms queue delay; its OIP/KServe v2 route",
        SERVER_PY,
        {
            "endpoint": "oip-batched",
            "model": "sentiment",
            "ready_path": "/v2/models/sentiment/ready",
        },
    ),
}


def peer(name: str, folder: Path) -> serving.System:
    """The peer `name` started in its own uv project, loading the files in `folder`."""
    description, command, fields = PEER_SERVERS[name]
    system = serving.System(
        name=name,
        description=description,
        command=[],
        env={"PEER_MODEL_DIR": str(folder), "VIRTUAL_ENV": ""},  # the peer's own .venv
        cwd=PEERS / name,
        **fields,
    )
    command = [part.replace("{port}", str(system.port)) for part in command]
    system.command = [uv(), "run", "--locked", "--project", str(PEERS / name), *command]
    return system


# The predictor as an operator sets it for the 100 ms SLO (serving.WAIT_SHARE_OF_SLO)
SLO_100_WAIT_MS = serving.WAIT_SHARE_OF_SLO * 100


def systems(folder: Path) -> dict[str, serving.System]:
    found = {f"predictor-{w}w": serving.predictor(w, model=MODEL, variant=VARIANT) for w in (1, 2)}
    for_100 = serving.predictor(2, MODEL, VARIANT, max_queue_wait_ms=SLO_100_WAIT_MS)
    for_100.name = f"predictor-2w-wait{SLO_100_WAIT_MS:g}"
    found[for_100.name] = for_100
    for predictor in found.values():
        predictor.env["PREDICTOR_GRPC_PORT"] = "0"  # HTTP alone is compared
    return found | {name: peer(name, folder) for name in PEER_SERVERS}


def labels(system: serving.System, texts: list[str]) -> list[str]:
    """Each text alone (dynamic INT8 is not batch-independent), as that system answers it."""
    found = []
    path = route(system.endpoint, system.model)
    with httpx.Client(base_url=system.host, timeout=30) as client:
        for text in texts:
            (body,) = bodies([text], system.endpoint, system.model)
            answer = client.post(path, json=body)
            answer.raise_for_status()
            data = answer.json()
            if "outputs" in data:  # OIP: the `label` output's one element
                (label,) = [o["data"][0] for o in data["outputs"] if o["name"] == "label"]
                found.append(label)
                continue
            row = data[0] if isinstance(data, list) else data.get("results", [data])[0]
            found.append(row["label"])
    return found


def compare(chosen: dict[str, serving.System], texts_csv: Path, args, work: Path) -> dict:
    steps: dict[str, list[dict]] = {name: [] for name in chosen}

    def measure(name: str, rate: float) -> Step:
        record = isolation.measured_alone(
            chosen,
            name,
            work / f"{name}-{len(steps[name]):02d}",
            rate=rate,
            duration_s=args.step_duration,
            texts=texts_csv,
            seed=int(rate),
        )
        steps[name].append(record)
        time.sleep(2)  # a backlog drains before the next system's step
        return serving.step_of(record)

    def show(name: str, step: Step) -> None:
        record = steps[name][-1]
        console.print(
            f"{name:18s} {step.rate:6.1f} req/s  p50 {record['p50_ms'] or 0:7.1f}  "
            f"p99 {step.p99_ms or 0:7.1f} ms  failed {100 * step.failure_rate:5.2f}%  "
            f"cores server {record['cores_server']:.2f} generator "
            f"{record['cores_generator']:.2f} other {record['cores_other']:.2f}"
            f"{attempts(record)}"
        )

    searches = {
        (name, slo): capacity_search(
            slo, start_rate=FIRST_RATE, max_rate=args.max_rate, precision=args.precision
        )
        for name in chosen
        for slo in SLOS_MS
    }
    found = serving.interleave(searches, measure, show)
    report = {}
    for name, system in chosen.items():
        at_20 = next((s for s in steps[name] if s["rate"] == FIRST_RATE), None)
        report[name] = {
            "description": system.description,
            **{f"capacity_p99_{slo:g}ms": found[(name, slo)].rate for slo in SLOS_MS},
            "p50_ms_at_20rps": at_20 and at_20["p50_ms"],
            "steps": sorted(steps[name], key=lambda s: s["rate"]),
        }
    return report


ISOLATED = (
    ", every other system stopped (SIGSTOP) during a step and a step that something else "
    "took CPU from measured again"
)


def attempts(record: dict) -> str:
    """How often a step was measured before it ran uncontaminated (see isolation.py)."""
    if record.get("contaminated"):
        return f" (contaminated in all {record['attempts']} attempts)"
    return f" ({record['attempts']} attempts)" if record.get("attempts", 1) > 1 else ""


def markdown(report: dict) -> str:
    lines = [
        f"# The predictor against its peers ({report['date']})",
        "",
        f"`{report['command']}` on {report['machine']}. {MODEL} `{VARIANT}` (the same ONNX file "
        f"and tokenizer in every server), open-loop Poisson load of Sp1786 texts from a "
        f"separate process, {report['step_duration_s']:g} s steps, searches interleaved one "
        f"step per system in turn{ISOLATED if report.get('isolated') else ''}; capacity = "
        "highest step with p99 under the SLO and < 1% failed. Every system gave the "
        "predictor's labels on the same 20 texts first.",
        "",
        "| system | capacity @ p99 <= 50 ms | @ p99 <= 100 ms | p50 at 20 req/s | what |",
        "|---|---|---|---|---|",
    ]
    for name, system in report["systems"].items():
        cells = [
            "< 20" if system[k] is None else f"{system[k]:g}"
            for k in ("capacity_p99_50ms", "capacity_p99_100ms")
        ]
        p50 = system["p50_ms_at_20rps"]
        p50 = "-" if p50 is None else f"{p50:.1f} ms"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {p50} | {system['description']} |")
    cores = "CPU seconds per second of the whole `loadtest run`, its start-up included"
    lines += ["", f"## Steps (cores: {cores})", ""]
    lines += [
        "| system | req/s | p50 ms | p99 ms | failed | cores server | generator | other |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, system in report["systems"].items():
        for s in system["steps"]:
            lines.append(
                f"| {name} | {s['rate']:g} | {s['p50_ms'] or 0:.1f} | {s['p99_ms'] or 0:.1f} | "
                f"{100 * s['failure_rate']:.2f}% | {s['cores_server']:.2f} | "
                f"{s['cores_generator']:.2f} | {s['cores_other']:.2f}{attempts(s)} |"
            )
    return "\n".join(lines) + "\n"


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, system in report["systems"].items():
        rates = [s["rate"] for s in system["steps"]]
        figure, axis = plt.subplots(figsize=(6, 4))
        for key, style in (("p50_ms", "o-"), ("p99_ms", "s-")):
            axis.plot(rates, [s[key] for s in system["steps"]], style, label=key[:3])
        # the latencies are of the answered requests: mark the steps that failed >= 1%
        failing = [s for s in system["steps"] if s["failure_rate"] >= 0.01]
        axis.plot(
            [s["rate"] for s in failing],
            [s["p99_ms"] for s in failing],
            "rx",
            markersize=10,
            label=">= 1% failed",
        )
        for slo in SLOS_MS:
            axis.axhline(slo, color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel="offered req/s", ylabel="latency, ms", yscale="log", title=name)
        axis.legend()
        figure.tight_layout()
        figure.savefig(out / f"{name}.png", dpi=110)
        plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--systems",
        default=",".join(
            ["predictor-1w", "predictor-2w", f"predictor-2w-wait{SLO_100_WAIT_MS:g}", *PEER_SERVERS]
        ),
    )
    parser.add_argument("--step-duration", type=float, default=30.0)
    parser.add_argument("--precision", type=float, default=0.15)
    parser.add_argument("--max-rate", type=float, default=640.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--from-json", type=Path, help="redraw the table and plots of a past run")
    args = parser.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "peers.md").write_text(markdown(report))
        plot(report, args.out)
        return
    serving.exit_on_sigterm()
    texts_csv = find_shared_data("sp1786/val.csv")
    if texts_csv is None:
        sys.exit("needs ../shared/data/sp1786/val.csv (real Sp1786 texts); see its README")
    folder = model_folder()
    every = systems(folder)
    unknown = set(args.systems.split(",")) - set(every)
    if unknown:
        sys.exit(f"unknown systems {sorted(unknown)}; known: {', '.join(every)}")
    chosen = {name: every[name] for name in args.systems.split(",")}
    probe = read_texts(str(texts_csv), limit=20)
    work = Path(tempfile.mkdtemp(prefix="peers-"))
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for system in chosen.values():
            console.print(f"starting {system.name}: {system.description}")
            serving.start(system, work / "logs", timeout_s=900)
        reference = labels(next(iter(chosen.values())), probe)
        for system in chosen.values():
            answered = labels(system, probe)
            if answered != reference:
                differ = sum(a != b for a, b in zip(answered, reference, strict=True))
                raise SystemExit(f"{system.name} differs from the others on {differ} of 20 labels")
        console.print("labels agree on 20 texts; measuring")
        found = compare(chosen, texts_csv, args, work)
    finally:
        for system in chosen.values():
            serving.stop(system)
    report = {
        "date": date,
        "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}",
        "command": " ".join(["uv run python -m benchmarks.peers.compare", *sys.argv[1:]]),
        "step_duration_s": args.step_duration,
        "isolated": True,  # isolation.measured_alone: the others stopped during each step
        "systems": found,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(report, indent=1))
    (args.out / "peers.md").write_text(markdown(report))
    plot(report, args.out)
    console.print(markdown(report))


if __name__ == "__main__":
    main()
