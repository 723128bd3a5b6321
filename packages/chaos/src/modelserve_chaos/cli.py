"""`chaos`: disruption experiments. `list` shows the actions, `validate` checks a file."""

from __future__ import annotations

import argparse
import sys
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


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the actions, by target").set_defaults(handler=cmd_list)
    validate = sub.add_parser("validate", help="check an experiment file")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_validate)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ChaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def main() -> None:
    sys.exit(cli())
