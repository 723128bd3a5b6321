"""`loadtest`: open-loop runs with the study's reports, and comparisons of runs."""

# Locust's gevent patching must precede every import of ssl/urllib3 in this process.
import locust  # noqa: F401, I001

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from modelserve_loadtest.arrivals import scenario
from modelserve_loadtest.errors import BadArguments, LoadtestError
from modelserve_loadtest.settings import LoadtestSettings


def cmd_run(args: argparse.Namespace) -> int:
    from modelserve_loadtest.payloads import bodies, read_texts, route
    from modelserve_loadtest.report import save_run, summarize
    from modelserve_loadtest.runner import RunPlan, run

    try:
        process = scenario(args.scenario, rate=args.rate, shape=args.shape)
    except ValueError as exc:
        raise BadArguments(str(exc)) from None
    if args.duration <= 0:
        raise BadArguments("--duration must be positive")
    offsets = process.schedule(args.duration, args.seed)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    plan = RunPlan(
        offsets=offsets,
        path=route(args.endpoint, args.model),
        bodies=bodies(read_texts(args.texts, args.column), args.endpoint, args.model),
        max_in_flight=args.max_in_flight,
        headers=headers,
    )
    records = run(args.host, plan, progress=not args.quiet)
    summary = summarize(records, args.duration, process, args.slo_ms)
    summary["scenario"] = {
        "name": args.scenario,
        "shape": process.shape,
        "rate": process.rate,
        "seed": args.seed,
        "host": args.host,
        "path": plan.path,
    }
    save_run(
        records,
        summary,
        process,
        Path(args.out),
        f"{args.scenario}: Gamma k={process.shape:g}, {process.rate:g} req/s, "
        f"{args.duration:g} s against {args.host}{plan.path}",
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
    run = sub.add_parser("run", help="one open-loop run (flags also read LOADTEST_<FLAG>)")
    run.add_argument("--host", default=settings.host)
    run.add_argument(
        "--scenario",
        default=settings.scenario,
        help="steady (k=1), moderate (k=1.2), extreme (k=0.8), or any with --shape",
    )
    run.add_argument("--rate", type=float, default=settings.rate, help="req/s (default 0.5)")
    run.add_argument("--shape", type=float, default=settings.shape)
    run.add_argument("--duration", type=float, default=settings.duration)
    run.add_argument("--seed", type=int, default=settings.seed)
    run.add_argument("--endpoint", default=settings.endpoint, choices=["analyze", "oip"])
    run.add_argument("--model", default=settings.model)
    run.add_argument("--texts", default=settings.texts, help="CSV with a text column")
    run.add_argument("--column", default=settings.column)
    run.add_argument("--max-in-flight", type=int, default=settings.max_in_flight)
    run.add_argument("--slo-ms", type=float, default=settings.slo_ms)
    run.add_argument("--token", default=settings.token, help="bearer token (LOADTEST_TOKEN)")
    run.add_argument("--out", required=True)
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(handler=cmd_run)
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
