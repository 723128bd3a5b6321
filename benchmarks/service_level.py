"""Service level (issue 7, item 2; the study's Tables 3 and 4): the three arrival scenarios
(steady: Poisson; moderate: Gamma k=1.2; extreme: Gamma k=0.8) against the naive baseline and
the optimized predictor (roberta-base-synthetic; onnx-int8, adaptive batching, 1 worker), on
Sp1786 texts, with p50/p95/p99, min/avg/max, RPS, failures and the statistical comparison
(`loadtest compare`: Mann-Whitney U, A12, bootstrap intervals of the percentile differences).

Three load regimes, all in one run, baseline and predictor alternating:
- `study`: the study's 0.5 requests/s, where both are idle;
- `same-rate`: both at `fraction` of the baseline's capacity at p99 <= 250 ms, where the
  baseline is busy and the comparison is like for like;
- `own-capacity`: each at `fraction` of its own capacity at p99 <= 250 ms.
Capacities come from benchmarks/results/capacity/capacity.json (run capacity.py first) or
from --baseline-capacity / --predictor-capacity.

    uv run python -m benchmarks.service_level        # ~25 min on the 2-core machine

Writes benchmarks/results/service-level/{service_level.json,service_level.md,latency.png}."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from benchmarks import serving
from modelserve_loadtest.compare import A12_NOTE, compare, load_variant, pairs_markdown
from modelserve_registry.settings import find_shared_data

console = Console()
RESULTS = Path(__file__).parent / "results" / "service-level"
CAPACITY = Path(__file__).parent / "results" / "capacity" / "capacity.json"
SCENARIOS = {"steady": 1.0, "moderate": 1.2, "extreme": 0.8}  # Gamma shape k, mean 1/rate


def plan_regimes(
    baseline_capacity: float | None,
    predictor_capacity: float | None,
    fraction: float,
    study_rate: float = 0.5,
) -> dict[str, dict[str, float]]:
    """Rate (req/s) for each system in each regime. A regime whose capacity is unknown, or
    not above the study's rate, is left out."""
    regimes = {"study": {"baseline": study_rate, "predictor": study_rate}}
    if baseline_capacity and baseline_capacity * fraction > study_rate:
        same = round(baseline_capacity * fraction, 2)
        regimes["same-rate"] = {"baseline": same, "predictor": same}
        if predictor_capacity and predictor_capacity * fraction > same:
            regimes["own-capacity"] = {
                "baseline": same,
                "predictor": round(predictor_capacity * fraction, 2),
            }
    return regimes


def read_capacities(path: Path, workers: int) -> tuple[float | None, float | None]:
    if not path.exists():
        return None, None
    capacity = json.loads(path.read_text())["capacity_rps"]
    return (
        capacity.get("baseline", {}).get("250"),
        capacity.get(f"predictor-{workers}w", {}).get("250"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study-duration", type=float, default=120.0, help="s at 0.5 req/s")
    parser.add_argument("--busy-duration", type=float, default=45.0, help="s near capacity")
    parser.add_argument("--fraction", type=float, default=0.8, help="of capacity at 250 ms")
    parser.add_argument("--baseline-capacity", type=float, default=None)
    parser.add_argument("--predictor-capacity", type=float, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--regime", action="append", help="default: all planned")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep-runs", type=Path, default=None, help="copy run folders here")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="rewrite the Markdown of a past run"
    )
    args = parser.parse_args()
    if args.from_json:
        (args.out / "service_level.md").write_text(markdown(json.loads(args.from_json.read_text())))
        return
    serving.exit_on_sigterm()
    texts_csv = find_shared_data("sp1786/val.csv")
    if texts_csv is None:
        sys.exit("needs ../shared/data/sp1786/val.csv (real Sp1786 texts); see its README")
    measured = read_capacities(CAPACITY, args.workers)
    baseline_capacity = args.baseline_capacity or measured[0]
    predictor_capacity = args.predictor_capacity or measured[1]
    regimes = plan_regimes(baseline_capacity, predictor_capacity, args.fraction)
    if args.regime:
        regimes = {name: rates for name, rates in regimes.items() if name in args.regime}
    systems = {
        "baseline": serving.baseline(serving.ensure_baseline_model()),
        "predictor": serving.predictor(args.workers),
    }
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    workdir = Path(tempfile.mkdtemp(prefix="service-level-"))
    runs: list[tuple[str, str, str, float, float]] = []
    for regime, rates in regimes.items():
        for index, scenario in enumerate(SCENARIOS):
            duration = args.study_duration if regime == "study" else args.busy_duration
            order = ["baseline", "predictor"] if index % 2 == 0 else ["predictor", "baseline"]
            runs += [(regime, scenario, name, rates[name], duration) for name in order]
    try:
        for system in systems.values():
            console.print(f"starting {system.name}: {system.description}")
            serving.start(system, workdir / "logs")
        with Progress(console=console) as progress:
            task = progress.add_task("runs", total=sum(r[4] for r in runs))
            for seed, (regime, scenario, name, rate, duration) in enumerate(runs, start=1):
                folder = workdir / regime / scenario / name
                summary = serving.load_run(
                    systems[name],
                    folder,
                    scenario=scenario,
                    rate=rate,
                    duration_s=duration,
                    seed=seed,
                    texts=texts_csv,
                    slo_ms=250,
                )
                latency = summary["latency_ms"]
                progress.console.print(
                    f"{regime:12s} {scenario:8s} {name:9s} {rate:6.2f} req/s  "
                    f"p50 {latency['p50'] or 0:6.1f}  p99 {latency['p99'] or 0:7.1f} ms  "
                    f"failed {summary['failures'] + summary['dropped']}"
                )
                progress.advance(task, duration)
                time.sleep(2)
    finally:
        for system in systems.values():
            serving.stop(system)
    report = {
        "model": serving.MODEL,
        "systems": {name: s.description for name, s in systems.items()},
        "capacity_rps_at_250ms": {"baseline": baseline_capacity, "predictor": predictor_capacity},
        "fraction": args.fraction,
        "regimes": {},
        "texts": "Sp1786 validation (../shared/data/sp1786/val.csv)",
        "started": started_at,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["uv run python -m benchmarks.service_level", *sys.argv[1:]]),
    }
    for regime, rates in regimes.items():
        report["regimes"][regime] = {"rates": rates, "scenarios": {}}
        for scenario in SCENARIOS:
            variants = [load_variant(workdir / regime / scenario / n) for n in systems]
            result = compare(variants)
            for row, variant in zip(result["table"], variants, strict=True):
                row["interarrival"] = variant.summaries[0]["interarrival"]
                row["nominal_rate"] = variant.summaries[0]["nominal_rate"]
            report["regimes"][regime]["scenarios"][scenario] = result
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service_level.json").write_text(json.dumps(report, indent=2))
    (args.out / "service_level.md").write_text(markdown(report))
    plot(report, workdir, args.out / "latency.png")
    if args.keep_runs:
        shutil.copytree(workdir, args.keep_runs, dirs_exist_ok=True)
    print(markdown(report))
    console.print(f"wrote {args.out}/service_level.{{json,md}} and latency.png")


def interarrival_cv(gaps: dict) -> tuple[float | None, float | None]:
    """Coefficient of variation of the achieved send gaps, and the Gamma's (1/sqrt(k)): the
    check that "extreme" traffic really was burstier than "steady" at the server."""
    mean, variance = gaps.get("mean"), gaps.get("variance")
    theory_mean, theory_variance = gaps.get("theoretical_mean"), gaps.get("theoretical_variance")
    cv = variance**0.5 / mean if mean and variance is not None else None
    theory = theory_variance**0.5 / theory_mean if theory_mean and theory_variance else None
    return cv, theory


def markdown(report: dict) -> str:
    lines = [
        f"# Service level, {report['model']} on Sp1786 texts ({report['started']} to "
        f"{report['finished']})",
        "",
        f"Command: `{report['command']}`. Baseline: {report['systems']['baseline']}. "
        f"Predictor: {report['systems']['predictor']}. Latency in ms from the intended send "
        "time (open loop), one run per cell.",
        "",
    ]
    for regime, data in report["regimes"].items():
        rates = data["rates"]
        lines += [
            f"## {regime}: baseline at {rates['baseline']:g} req/s, predictor at "
            f"{rates['predictor']:g} req/s",
            "",
            "| scenario | system | requests | p50 | p95 | p99 | min | avg | max | RPS | "
            "failures | inter-arrival CV (theory) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for scenario, result in data["scenarios"].items():
            for row in result["table"]:
                cv, theory = interarrival_cv(row.get("interarrival") or {})
                lines.append(
                    f"| {scenario} | {row['variant']} | {row['requests']} | "
                    + " | ".join(
                        "-" if row[k] is None else f"{row[k]:.1f}"
                        for k in ("p50", "p95", "p99", "min", "avg", "max")
                    )
                    + f" | {row['rps']:.2f} | {100 * row['failure_rate']:.2f}% | "
                    + ("-" if cv is None else f"{cv:.2f}")
                    + ("" if theory is None else f" ({theory:.2f})")
                    + " |"
                )
        lines += ["", "Statistics, baseline -> predictor (negative: the predictor is faster):", ""]
        for scenario, result in data["scenarios"].items():
            lines += [f"{scenario}:", "", pairs_markdown(result["pairs"], note=False)]
    lines += [A12_NOTE, "", "![latency distributions](latency.png)"]
    return "\n".join(lines) + "\n"


def plot(report: dict, workdir: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = list(report["regimes"])
    fig, axes = plt.subplots(
        1, len(regimes), figsize=(5 * len(regimes), 4.5), squeeze=False, sharey=True
    )
    for ax, regime in zip(axes[0], regimes, strict=True):
        data, labels = [], []
        for scenario in SCENARIOS:
            for name in ("baseline", "predictor"):
                variant = load_variant(workdir / regime / scenario / name)
                data.append(variant.pooled)
                labels.append(f"{scenario}\n{name}")
        ax.boxplot(data, whis=(1, 99), showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.set_yscale("log")
        rates = report["regimes"][regime]["rates"]
        ax.set_title(
            f"{regime}: baseline {rates['baseline']:g}, predictor {rates['predictor']:g} req/s",
            fontsize=9,
        )
    axes[0][0].set_ylabel("latency (ms), box p25-p75, whiskers p1-p99")
    fig.suptitle(f"{report['model']}: latency by scenario ({report['started']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
