"""`bentoml serve` with a supervisor fit for serving: what `predictor serve` runs.

BentoML's process manager (circus) is built with settings that suit development, not a
server that must come back from a killed worker in seconds or stop within a known time:

- it looks for dead workers every 10 s (`check_delay`), so a SIGKILLed worker was replaced
  after 0-10 s of doing nothing (3.4-4.8 s measured here); here every `CHECK_EVERY_S`;
- inside a container it does not respawn dead workers at all (`respawn=not
  running_inside_container()`), so a pod that lost one worker ran on the rest until it was
  deleted; here a dead worker is always replaced;
- on SIGTERM it waits up to 86,400 s for each worker; here `drain_s` (uvicorn's graceful
  shutdown, which finishes admitted requests, then cancels what is left) plus a margin for
  the shutdown hooks, then SIGKILL;
- it kept its listening socket open while the workers drained, so new connections queued
  in the kernel and hung; here the socket is closed first, so they are refused at once and
  a load balancer retries them elsewhere.

Run as `python -m modelserve_predictor.supervisor SERVICE --host H --port P --drain-s S`."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from typing import Any

log = logging.getLogger("modelserve.predictor")
CHECK_EVERY_S = 0.25
HOOKS_MARGIN_S = 5.0  # after the drain: lifespan shutdown, gRPC grace, freeing models


def supervise(create: Any, drain_s: float) -> Any:
    """Wrap BentoML's arbiter factory (`create_standalone_arbiter`) with the settings above."""

    @functools.wraps(create)
    def create_arbiter(watchers: list, **kwargs: Any) -> Any:
        from circus.exc import ConflictError

        for watcher in watchers:
            watcher.respawn = True
            watcher.graceful_timeout = drain_s + HOOKS_MARGIN_S
        kwargs["check_delay"] = CHECK_EVERY_S
        arbiter = create(watchers, **kwargs)
        manage, stop = arbiter.manage_watchers, arbiter.stop

        def manage_watchers() -> Any:
            # BentoML's 10 s check was chosen because a check that lands while the arbiter
            # runs another command (starting the workers) raises ConflictError; that check is
            # simply skipped: the next one comes CHECK_EVERY_S later.
            try:
                return manage()
            except ConflictError:
                return None

        def stop_refusing_new_connections() -> Any:
            log.info("stopping: new connections are refused, admitted requests drain")
            for sock in list(arbiter.sockets.values()):
                sock.close()
            return stop()

        arbiter.manage_watchers = manage_watchers
        arbiter.stop = stop_refusing_new_connections
        return arbiter

    return create_arbiter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m modelserve_predictor.supervisor")
    parser.add_argument("service")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True)
    parser.add_argument("--drain-s", type=float, required=True)
    args = parser.parse_args(argv)

    import bentoml._internal.utils.circus as bentoml_circus
    from bentoml_cli.cli import cli

    # serve_http imports the factory from this module when it runs, so this takes effect.
    bentoml_circus.create_standalone_arbiter = supervise(
        bentoml_circus.create_standalone_arbiter, args.drain_s
    )
    command = ["serve", args.service, "--host", args.host, "--port", args.port]
    # uvicorn's graceful shutdown takes whole seconds; never shorter than asked
    command += ["--timeout-graceful-shutdown", str(max(1, round(args.drain_s + 0.49)))]
    cli(command, prog_name="bentoml")


if __name__ == "__main__":
    sys.exit(main())
