"""`dashboards`: build the Grafana dashboards from code, check them against a real
Prometheus, and draw them.

  dashboards build            regenerate dashboards/grafana/*.json and the K3s ConfigMap
  dashboards build --check    exit 3 if the committed files are stale
  dashboards queries          every panel's PromQL
  dashboards check --since 15m [--prometheus URL]   run every query; table of panels
  dashboards live --out DIR   real Prometheus + predictor + load + chaos, then check and draw"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from modelserve_dashboards.errors import BadArguments, DashboardsError, StaleDashboards
from modelserve_dashboards.settings import DashboardsSettings


def cmd_build(args: argparse.Namespace, settings: DashboardsSettings) -> int:
    from modelserve_dashboards.build import stale, write

    if args.check:
        outdated = stale(settings.root)
        if outdated:
            raise StaleDashboards(
                "stale generated dashboards (run `uv run dashboards build`): "
                + ", ".join(map(str, outdated))
            )
        print("dashboards are up to date")
        return 0
    written = write(settings.root)
    print("\n".join(f"wrote {p}" for p in written) or "nothing changed")
    return 0


def cmd_queries(args: argparse.Namespace, settings: DashboardsSettings) -> int:
    from modelserve_dashboards.build import DASHBOARDS, load
    from modelserve_dashboards.promql import queries

    for name in DASHBOARDS:
        for query in queries(name, load(name)):
            print(f"{name:9s} {query.panel} [{query.ref}]\n    {query.expr}")
    return 0


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", text)
    if not match:
        raise BadArguments(f"--since {text!r}: use e.g. 90s, 15m, 2h")
    return float(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def cmd_check(args: argparse.Namespace, settings: DashboardsSettings) -> int:
    from modelserve_dashboards.check import check_all, markdown
    from modelserve_dashboards.live import UNAVAILABLE_HERE
    from modelserve_dashboards.prometheus import Client

    end = time.time()
    results = check_all(
        Client(args.prometheus or settings.prometheus_url),
        end - _seconds(args.since),
        end,
        step=args.step,
        scrape_s=args.scrape_interval,
    )
    print(markdown(results, UNAVAILABLE_HERE))
    broken = [r for r in results if r.error]
    for result in broken:
        print(
            f"error: {result.query.dashboard} / {result.query.panel}: {result.error}",
            file=sys.stderr,
        )
    return 1 if broken else 0


def cmd_live(args: argparse.Namespace, settings: DashboardsSettings) -> int:
    from modelserve_dashboards.live import live_run

    predictor_args = ["--workers", str(args.workers)]
    for model in args.model or []:
        predictor_args += ["--model", model]
    run = live_run(
        Path(args.out),
        predictor_args,
        rate=args.rate,
        duration_s=args.duration,
        slo_ms=args.slo_ms,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print((run.out / "panels.md").read_text())
    print(json.dumps({"out": str(run.out), "pictures": [str(p) for p in run.pictures]}))
    return 1 if any(r.error for r in run.results) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dashboards", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="regenerate the dashboard JSON and the ConfigMap")
    build.add_argument("--check", action="store_true", help="fail if the files are stale")
    build.set_defaults(handler=cmd_build)
    sub.add_parser("queries", help="list every PromQL query").set_defaults(handler=cmd_queries)
    check = sub.add_parser("check", help="run every query against a Prometheus")
    check.add_argument("--prometheus", default=None, help="default DASHBOARDS_PROMETHEUS_URL")
    check.add_argument("--since", default="15m")
    check.add_argument("--step", type=float, default=15.0)
    check.add_argument("--scrape-interval", type=float, default=15.0)
    check.set_defaults(handler=cmd_check)
    live = sub.add_parser("live", help="a real run on 127.0.0.1, checked and drawn")
    live.add_argument("--out", required=True)
    live.add_argument("--model", action="append", help="NAME[=VARIANT]; default: predictor's")
    live.add_argument("--workers", type=int, default=2)
    live.add_argument("--rate", type=float, default=30.0)
    live.add_argument("--duration", type=float, default=60.0)
    live.add_argument("--slo-ms", type=float, default=250.0)
    live.set_defaults(handler=cmd_live)
    return parser


def cli(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, DashboardsSettings())
    except DashboardsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def main() -> None:
    sys.exit(cli())
