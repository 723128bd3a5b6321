"""`chaos`: disruption experiments. `list` shows the actions, `validate` checks a file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from modelserve_chaos.actions import ACTIONS
from modelserve_chaos.errors import ChaosError
from modelserve_chaos.experiment import load_experiment


def cmd_list(args: argparse.Namespace) -> int:
    for kind, actions in ACTIONS.items():
        for name, description in sorted(actions.items()):
            print(f"{kind:10s} {name:24s} {description}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    experiment = load_experiment(Path(args.file))
    print(
        f"ok: {experiment.title!r}: {len(experiment.method)} actions against "
        f"{experiment.target.kind}, {len(experiment.steady_state_hypothesis.probes)} probes"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import shlex

    from modelserve_chaos.runner import Executor, run_experiment, wait_ready

    experiment = load_experiment(Path(args.file))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    supervisor = clients = None
    if experiment.target.kind == "local":
        from modelserve_chaos.local_target.supervisor import Supervisor

        port = experiment.target.url.rsplit(":", 1)[-1].split("/")[0]
        command = (
            shlex.split(args.predictor_command)
            if args.predictor_command
            else [str(Path(sys.executable).parent / "predictor"), "serve", "--port", port]
        )
        supervisor = Supervisor(command, log=out / "server.log")
        supervisor.start()
    else:
        from modelserve_chaos.kubernetes_target.actions import Clients

        clients = Clients.connect(args.kubeconfig)
    metrics = exporter = None
    if args.metrics_port is not None:
        from modelserve_chaos.metrics import ChaosMetrics

        metrics = ChaosMetrics.create(experiment.title, [s.action for s in experiment.method])
        try:
            exporter = metrics.serve(args.metrics_port, args.metrics_host)
        except OSError as exc:
            if supervisor is not None:
                supervisor.stop()
            raise ChaosError(f"cannot serve metrics on port {args.metrics_port}: {exc}") from None
    try:
        if not wait_ready(experiment.target.url, args.ready_timeout):
            raise ChaosError(f"{experiment.target.url} did not become ready")
        journal = run_experiment(
            experiment,
            out,
            Executor(experiment, supervisor, clients),
            grafana_url=args.grafana_url,
            metrics=metrics,
            load_metrics_port=args.load_metrics_port,
        )
    finally:
        if supervisor is not None:
            supervisor.stop()
        if exporter is not None:
            time.sleep(args.metrics_linger)  # one last scrape sees the recovery times
            exporter.shutdown()
    totals = journal["totals"]
    for event in journal["events"]:
        cost = event.get("impact") or {}
        print(
            f"{event['action']:22s} failed {cost.get('failed_requests', '-'):>5} "
            f"recovered in {cost.get('time_to_recovery_s')} s"
            + (f"  ERROR {event['error']}" if "error" in event else "")
        )
    print(
        f"availability {100 * totals['availability']:.2f}%, lost {totals['requests_lost']}, "
        f"deviated: {journal['deviated']}; journal: {out / 'journal.json'}"
    )
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the actions, by target").set_defaults(handler=cmd_list)
    validate = sub.add_parser("validate", help="check an experiment file")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_validate)
    run = sub.add_parser("run", help="run an experiment: load and disruptions together")
    run.add_argument("file")
    run.add_argument("--out", required=True)
    run.add_argument("--grafana-url", default=None, help="post each disruption as an annotation")
    run.add_argument(
        "--predictor-command",
        default=None,
        help="local target: how to start the predictor (default: predictor serve)",
    )
    run.add_argument("--kubeconfig", default=None)
    run.add_argument("--ready-timeout", type=float, default=600)
    run.add_argument(
        "--metrics-port", type=int, default=None, help="serve chaos_* metrics for Prometheus"
    )
    run.add_argument("--metrics-host", default="127.0.0.1", help="0.0.0.0 inside a pod")
    run.add_argument(
        "--metrics-linger", type=float, default=10.0, help="seconds /metrics stays up at the end"
    )
    run.add_argument(
        "--load-metrics-port",
        type=int,
        default=None,
        help="have the load generator serve its loadtest_* metrics on this port",
    )
    run.set_defaults(handler=cmd_run)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ChaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def main() -> None:
    sys.exit(cli())
