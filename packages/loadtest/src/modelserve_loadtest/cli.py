"""`loadtest`: open-loop runs with the study's reports, and comparisons of runs."""

# Locust's gevent patching must precede every import of ssl/urllib3 in this process.
import locust  # noqa: F401, I001

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelserve_loadtest.arrivals import GammaArrivals, read_trace, scenario, trace_schedule
from modelserve_loadtest.errors import BadArguments, LoadtestError
from modelserve_loadtest.payloads import ENDPOINTS
from modelserve_loadtest.runner import RunPlan
from modelserve_loadtest.settings import LoadtestSettings


def cmd_run(args: argparse.Namespace) -> int:
    from modelserve_loadtest.report import save_run, summarize
    from modelserve_loadtest.runner import run

    process: GammaArrivals | None
    if args.trace:  # replay recorded arrival times instead of drawing them
        try:
            offsets = trace_schedule(read_trace(Path(args.trace)), args.time_scale)
        except (OSError, ValueError) as exc:
            raise BadArguments(f"cannot replay {args.trace}: {exc}") from None
        process, duration = None, float(offsets[-1]) + 1.0
        title = f"trace {Path(args.trace).name} x{args.time_scale:g}"
    else:
        try:
            process = scenario(args.scenario, rate=args.rate, shape=args.shape)
        except ValueError as exc:
            raise BadArguments(str(exc)) from None
        if args.duration <= 0:
            raise BadArguments("--duration must be positive")
        offsets, duration = process.schedule(args.duration, args.seed), args.duration
        title = f"{args.scenario}: Gamma k={process.shape:g}, {process.rate:g} req/s"
    plan = _plan(args, offsets)
    plan.started_file = args.started_file
    exporter = _export_metrics(args, plan, process, title)
    try:
        records = run(args.host, plan, progress=not args.quiet)
    finally:
        if exporter is not None:
            # Stay scrapeable a little longer, so Prometheus sees the run's last seconds.
            time.sleep(args.metrics_linger)
            exporter.shutdown()
    summary = summarize(records, duration, process, args.slo_ms)
    summary["scenario"] = {
        "name": "trace" if args.trace else args.scenario,
        "shape": process.shape if process else None,
        "rate": process.rate if process else None,
        "trace": args.trace,
        "seed": args.seed,
        "host": args.host,
        "path": plan.path,
    }
    save_run(
        records,
        summary,
        process,
        Path(args.out),
        f"{title}, {duration:g} s against {args.host}{plan.path}",
    )
    latency = summary["latency_ms"]
    print(
        json.dumps(
            {
                "requests": summary["requests"],
                "failures": summary["failures"],
                "dropped": summary["dropped"],
                "p50": latency["p50"],
                "p99": latency["p99"],
                "out": args.out,
            }
        )
    )
    return 0


def _export_metrics(
    args: argparse.Namespace, plan: RunPlan, process: GammaArrivals | None, title: str
):
    """Serve the run's live metrics on --metrics-port (none without it)."""
    if args.metrics_port is None:
        return None
    from modelserve_loadtest.metrics import LoadMetrics

    nominal = process.rate if process else len(plan.offsets) / max(float(plan.offsets[-1]), 1e-9)
    name = "trace" if args.trace else args.scenario
    plan.metrics = LoadMetrics.create(name, nominal, args.slo_ms / 1000 if args.slo_ms else None)
    try:
        server = plan.metrics.serve(args.metrics_port, args.metrics_host)
    except OSError as exc:
        raise BadArguments(
            f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc}"
        ) from None
    print(
        f"metrics for {title}: http://{args.metrics_host}:{args.metrics_port}/metrics",
        file=sys.stderr,
    )
    return server


def _plan(args: argparse.Namespace, offsets: np.ndarray) -> RunPlan:
    from modelserve_loadtest.payloads import bodies, read_texts, route

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    return RunPlan(
        offsets=offsets,
        path=route(args.endpoint, args.model),
        bodies=bodies(read_texts(args.texts, args.column), args.endpoint, args.model),
        max_in_flight=args.max_in_flight,
        headers=headers,
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    from modelserve_loadtest.report import summarize
    from modelserve_loadtest.runner import run
    from modelserve_loadtest.sweep import Step, search_capacity

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def measure(rate: float) -> Step:
        process = scenario(args.scenario, rate=rate, shape=args.shape)
        records = run(
            args.host, _plan(args, process.schedule(args.step_duration, args.seed)), progress=False
        )
        summary = summarize(records, args.step_duration, process)
        failed = summary["failures"] + summary["dropped"]
        step = Step(
            rate=rate,
            p99_ms=summary["latency_ms"]["p99"],
            failure_rate=failed / max(1, summary["requests"]),
            requests=summary["requests"],
        )
        p99 = "-" if step.p99_ms is None else f"{step.p99_ms:.0f} ms"
        print(
            f"rate {rate:8.2f}/s  p99 {p99:>9}  failures {100 * step.failure_rate:5.2f}%  "
            f"{'ok' if step.passes(args.slo_p99_ms, 0.01) else 'over'}",
            file=sys.stderr,
        )
        return step

    try:
        scenario(args.scenario, shape=args.shape)
    except ValueError as exc:
        raise BadArguments(str(exc)) from None
    capacity = search_capacity(
        measure,
        args.slo_p99_ms,
        start_rate=args.start_rate,
        max_rate=args.max_rate,
        precision=args.precision,
    )
    print("| rate (req/s) | p99 (ms) | failures | within SLO |\n|---:|---:|---:|---|")
    for step in sorted(capacity.steps, key=lambda s: s.rate):
        p99 = "-" if step.p99_ms is None else f"{step.p99_ms:.1f}"
        print(
            f"| {step.rate:.2f} | {p99} | {100 * step.failure_rate:.2f}% | "
            f"{'yes' if step.passes(args.slo_p99_ms, 0.01) else 'no'} |"
        )
    result = {
        **capacity.as_dict(),
        "slo_p99_ms": args.slo_p99_ms,
        "scenario": args.scenario,
        "step_duration_s": args.step_duration,
        "host": args.host,
    }
    (out / "sweep.json").write_text(json.dumps(result, indent=2))
    _plot_sweep(capacity, args.slo_p99_ms, out / "sweep.png")
    print(json.dumps({"capacity_rps": capacity.rate, "out": str(out)}))
    return 0


def _plot_sweep(capacity, slo_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted((s for s in capacity.steps if s.p99_ms is not None), key=lambda s: s.rate)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s.rate for s in steps], [s.p99_ms for s in steps], "o-", label="p99")
    ax.axhline(slo_ms, color="red", ls="--", label=f"SLO {slo_ms:g} ms")
    if capacity.rate:
        ax.axvline(capacity.rate, color="green", ls=":", label=f"capacity {capacity.rate:.1f}/s")
    ax.set_xlabel("arrival rate (req/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_compare(args: argparse.Namespace) -> int:
    from modelserve_loadtest.compare import compare, load_variant, markdown

    if len(args.runs) < 1:
        raise BadArguments("give at least one run folder")
    result = compare([load_variant(Path(folder)) for folder in args.runs], resamples=args.resamples)
    text = markdown(result)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=2))
    print(text)
    return 0


def build_parser(settings: LoadtestSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def traffic_flags(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--host", default=settings.host)
        cmd.add_argument(
            "--scenario",
            default=settings.scenario,
            help="steady (k=1), moderate (k=1.2), extreme (k=0.8), or any --shape",
        )
        cmd.add_argument("--shape", type=float, default=settings.shape)
        cmd.add_argument("--seed", type=int, default=settings.seed)
        cmd.add_argument("--endpoint", default=settings.endpoint, choices=ENDPOINTS)
        cmd.add_argument("--model", default=settings.model)
        cmd.add_argument("--texts", default=settings.texts, help="CSV with a text column")
        cmd.add_argument("--column", default=settings.column)
        cmd.add_argument("--max-in-flight", type=int, default=settings.max_in_flight)
        cmd.add_argument("--token", default=settings.token, help="bearer token (LOADTEST_TOKEN)")
        cmd.add_argument("--out", required=True)

    run = sub.add_parser("run", help="one open-loop run (flags also read LOADTEST_<FLAG>)")
    traffic_flags(run)
    run.add_argument("--rate", type=float, default=settings.rate, help="req/s (default 0.5)")
    run.add_argument("--duration", type=float, default=settings.duration)
    run.add_argument("--slo-ms", type=float, default=settings.slo_ms)
    run.add_argument(
        "--trace", default=None, help="CSV with a 'timestamp' column (seconds) to replay instead"
    )
    run.add_argument(
        "--time-scale", type=float, default=1.0, help="with --trace: 0.5 replays twice as fast"
    )
    run.add_argument("--quiet", action="store_true")
    run.add_argument(
        "--started-file",
        default=None,
        help="write the load's start time (epoch s) here when the first arrival "
        "is due (the chaos runner aligns its actions to it)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=settings.metrics_port,
        help="serve the run's live Prometheus metrics on this port (loadtest_* series)",
    )
    run.add_argument(
        "--metrics-host", default=settings.metrics_host, help="0.0.0.0 inside a container"
    )
    run.add_argument(
        "--metrics-linger",
        type=float,
        default=settings.metrics_linger_s,
        help="seconds to keep /metrics up after the run, for a last scrape",
    )
    run.set_defaults(handler=cmd_run)
    sweep = sub.add_parser("sweep", help="largest rate with p99 under the SLO, failures < 1%%")
    traffic_flags(sweep)
    sweep.add_argument("--slo-p99-ms", type=float, required=True)
    sweep.add_argument("--start-rate", type=float, default=1.0)
    sweep.add_argument("--max-rate", type=float, default=1000.0)
    sweep.add_argument("--step-duration", type=float, default=30.0)
    sweep.add_argument("--precision", type=float, default=0.1)
    sweep.set_defaults(handler=cmd_sweep)
    comparison = sub.add_parser("compare", help="Tables 3/4 and pairwise statistics of runs")
    comparison.add_argument("runs", nargs="+", help="run folders (or folders of repeated runs)")
    comparison.add_argument("--out", default=None, help="Markdown file (JSON written beside)")
    comparison.add_argument("--resamples", type=int, default=2000)
    comparison.set_defaults(handler=cmd_compare)
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    args = build_parser(LoadtestSettings()).parse_args(argv)
    try:
        return args.handler(args)
    except LoadtestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def main() -> None:
    sys.exit(cli())
