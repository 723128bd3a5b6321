"""Capacity (issue 7, item 3): the largest open-loop Poisson rate each system holds with p99
under the SLO and under 1% failures, at SLOs of 100 and 250 ms, on real Sp1786 texts, for

- the naive baseline (benchmarks/baseline: BentoML + transformers pipeline, FP32 PyTorch),
- the predictor serving roberta-base-synthetic onnx-int8 with 1 worker, and with 2 workers,

all in one run: every server stays up, and the searches are interleaved one step each in
turn, so the machine's drift (up to 2x between minutes here) hits every system alike; while
one system is measured the others are stopped (`isolation.measured_alone`). The
same variant's in-process batch-1 throughput on the same texts is measured at the start and
the end of the run, for the "served vs in-process" target.

    uv run python -m benchmarks.capacity            # ~25 min on the 2-core machine

Writes benchmarks/results/capacity/{capacity.json,capacity.md,capacity.png}."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from benchmarks import isolation, serving
from benchmarks.serving import interleave
from modelserve_loadtest.payloads import read_texts
from modelserve_loadtest.sweep import Step, capacity_search
from modelserve_registry.settings import find_shared_data

console = Console()
RESULTS = Path(__file__).parent / "results" / "capacity"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slo", type=float, action="append", help="p99 ms (default 100, 250)")
    parser.add_argument("--step-duration", type=float, default=30.0)
    parser.add_argument("--precision", type=float, default=0.15)
    parser.add_argument("--max-rate", type=float, default=512.0)
    parser.add_argument("--workers", type=int, action="append", help="default 1 and 2")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--in-process-texts", type=int, default=1000)
    parser.add_argument(
        "--queue-wait-ms",
        type=float,
        default=None,
        help="the predictor's admission wait budget (default: 60%% of the tightest SLO, as an "
        "operator serving that SLO would set it; the rest is for the text's own batch, up to "
        "4 texts of ~19 ms for roberta-base on one thread, and the transfer)",
    )
    parser.add_argument(
        "--from-json", type=Path, default=None, help="redraw the table and plot of a past run"
    )
    args = parser.parse_args()
    if args.from_json:
        write(json.loads(args.from_json.read_text()), args.out)
        return
    serving.exit_on_sigterm()
    slos = args.slo or [100.0, 250.0]
    texts_csv = find_shared_data("sp1786/val.csv")
    if texts_csv is None:
        sys.exit("needs ../shared/data/sp1786/val.csv (real Sp1786 texts); see its README")
    texts = read_texts(str(texts_csv), limit=args.in_process_texts)  # what the load test sends

    systems = [] if args.no_baseline else [serving.baseline(serving.ensure_baseline_model())]
    wait_ms = (
        args.queue_wait_ms
        if args.queue_wait_ms is not None
        else serving.WAIT_SHARE_OF_SLO * min(slos)
    )
    systems += [serving.predictor(w, max_queue_wait_ms=wait_ms) for w in (args.workers or [1, 2])]
    start_rates = {s.name: (1.0 if s.name == "baseline" else 4.0) for s in systems}
    by_name = {s.name: s for s in systems}

    console.print("in-process batch-1 reference (before) ...")
    before = serving.in_process_batch1(texts)
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    workdir = Path(tempfile.mkdtemp(prefix="capacity-"))
    try:
        for system in systems:
            console.print(f"starting {system.name}: {system.description}")
            serving.start(system, workdir / "logs")
        searches = {
            (s.name, slo): capacity_search(
                slo,
                start_rate=start_rates[s.name],
                max_rate=args.max_rate,
                precision=args.precision,
            )
            for s in systems
            for slo in slos
        }
        counter = {"n": 0}
        measured: list[dict] = []  # each step's figures and the CPU every party used
        with Progress(console=console) as progress:
            task = progress.add_task("capacity steps", total=None)

            def measure(name: str, rate: float) -> Step:
                counter["n"] += 1
                record = isolation.measured_alone(
                    by_name,
                    name,
                    workdir / f"step-{counter['n']:03d}",
                    rate=rate,
                    duration_s=args.step_duration,
                    texts=texts_csv,
                    seed=counter["n"],
                )
                measured.append({"system": name, **record})
                time.sleep(2)  # let a backlog drain before the next system's step
                return serving.step_of(record)

            def show(name: str, step: Step) -> None:
                progress.advance(task)
                p99 = "-" if step.p99_ms is None else f"{step.p99_ms:7.0f} ms"
                progress.console.print(
                    f"{name:14s} {step.rate:7.2f} req/s  p99 {p99}  "
                    f"failures {100 * step.failure_rate:5.2f}%"
                )

            results = interleave(searches, measure, show)
    finally:
        for system in systems:
            serving.stop(system)
    console.print("in-process batch-1 reference (after) ...")
    after = serving.in_process_batch1(texts)
    finished_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = build_report(systems, slos, results, before, after, args, started_at, finished_at)
    report["step_cpu"] = measured
    write(report, args.out)


def build_report(systems, slos, results, before, after, args, started_at, finished_at) -> dict:
    capacities = {
        s.name: {f"{slo:g}": results[(s.name, slo)].rate for slo in slos} for s in systems
    }
    steps = {}
    for s in systems:
        seen = {}
        for slo in slos:
            for step in results[(s.name, slo)].steps:
                seen[step.rate] = step.__dict__
        steps[s.name] = sorted(seen.values(), key=lambda step: step["rate"])
    in_process = (before["texts_per_s"] + after["texts_per_s"]) / 2
    targets = {}
    if "baseline" in capacities and len(capacities) > 1:
        base = capacities["baseline"].get("250")
        opt = capacities.get("predictor-1w", {}).get("250")
        best = max((c.get("250") or 0 for n, c in capacities.items() if n != "baseline"), default=0)
        targets["optimized_over_baseline_at_250ms"] = {
            "predictor_1w": opt / base if opt and base else None,
            "best_predictor": best / base if best and base else None,
            "target": 20.0,
        }
    if "predictor-1w" in capacities and capacities["predictor-1w"].get("100"):
        targets["optimized_at_100ms_over_in_process_batch1"] = {
            "ratio": capacities["predictor-1w"]["100"] / in_process,
            "target": 0.5,
        }
    return {
        "model": serving.MODEL,
        "predictor_variant": serving.VARIANT,
        "texts": "Sp1786 validation (../shared/data/sp1786/val.csv)",
        "scenario": "steady (Poisson)",
        "step_duration_s": args.step_duration,
        "precision": args.precision,
        "max_failure_rate": 0.01,
        "systems": {s.name: s.description for s in systems},
        "capacity_rps": capacities,
        "steps": steps,
        "in_process_batch1": {"before": before, "after": after, "mean_texts_per_s": in_process},
        "targets": targets,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {_cores()} cores",
        "started": started_at,
        "finished": finished_at,
        "command": " ".join(["uv run python -m benchmarks.capacity", *sys.argv[1:]]),
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def markdown(report: dict) -> str:
    slos = sorted({slo for c in report["capacity_rps"].values() for slo in c}, key=float)
    lines = [
        f"# Capacity, {report['model']} on Sp1786 texts ({report['started']} to "
        f"{report['finished']})",
        "",
        f"Largest open-loop Poisson rate with p99 under the SLO and failures under 1%; "
        f"{report['step_duration_s']:g} s steps, searches interleaved in one run. "
        f"Command: `{report['command']}`. Machine: {report['machine']}.",
        "",
        "| system | " + " | ".join(f"capacity at p99 <= {s} ms" for s in slos) + " |",
        "|---|" + "---:|" * len(slos),
    ]
    for name, description in report["systems"].items():
        cells = [report["capacity_rps"][name].get(s) for s in slos]
        shown = ["none" if c is None else f"{c:.1f} req/s" for c in cells]
        lines.append(f"| {name}: {description} | " + " | ".join(shown) + " |")
    reference = report["in_process_batch1"]
    lines += [
        "",
        f"In-process batch-1 throughput of {report['predictor_variant']} on the same texts: "
        f"{reference['before']['texts_per_s']:.0f} texts/s before the sweeps, "
        f"{reference['after']['texts_per_s']:.0f} after (mean "
        f"{reference['mean_texts_per_s']:.0f}).",
        "",
        "| target | measured | asked | met |",
        "|---|---:|---:|---|",
    ]
    targets = report["targets"]
    if "optimized_over_baseline_at_250ms" in targets:
        t = targets["optimized_over_baseline_at_250ms"]
        for key, label in (("predictor_1w", "1 worker"), ("best_predictor", "best predictor")):
            if t[key] is not None:
                met = "yes" if t[key] >= t["target"] else "no"
                lines.append(
                    f"| optimized ({label}) / baseline capacity at 250 ms | {t[key]:.1f}x | "
                    f"{t['target']:g}x | {met} |"
                )
    if "optimized_at_100ms_over_in_process_batch1" in targets:
        t = targets["optimized_at_100ms_over_in_process_batch1"]
        met = "yes" if t["ratio"] >= t["target"] else "no"
        lines.append(
            f"| predictor 1 worker at 100 ms / in-process batch 1 | {100 * t['ratio']:.0f}% | "
            f"{100 * t['target']:.0f}% | {met} |"
        )
    lines += ["", "Every measured step:", "", "| system | rate (req/s) | p99 (ms) | failures |"]
    lines.append("|---|---:|---:|---:|")
    for name, steps in report["steps"].items():
        for step in steps:
            p99 = "-" if step["p99_ms"] is None else f"{step['p99_ms']:.1f}"
            lines.append(
                f"| {name} | {step['rate']:.2f} | {p99} | {100 * step['failure_rate']:.2f}% |"
            )
    return "\n".join(lines) + "\n\n![p99 against rate](capacity.png)\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, steps in report["steps"].items():
        shown = [s for s in steps if s["p99_ms"] is not None]
        ax.plot([s["rate"] for s in shown], [s["p99_ms"] for s in shown], "o-", label=name)
    slos = sorted({float(s) for c in report["capacity_rps"].values() for s in c})
    for slo, style in zip(slos, ["--", ":", "-."] * len(slos), strict=False):
        ax.axhline(slo, color="red", ls=style, lw=0.8, label=f"SLO p99 {slo:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("open-loop Poisson arrival rate (req/s)")
    ax.set_ylabel("p99 latency from intended send (ms)")
    ax.set_title(f"{report['model']}: p99 against offered rate ({report['started']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "capacity.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (out / "capacity.md").write_text(text)
    plot(report, out / "capacity.png")
    print(text)  # plain: rich would wrap the table and read [..] as markup
    console.print(f"wrote {out}/capacity.{{json,md,png}}")


if __name__ == "__main__":
    main()
