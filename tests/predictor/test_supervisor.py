"""The supervisor's changes to BentoML's process manager, on the real circus objects that
`bentoml serve` builds (the behaviour they cause, replacing a killed worker fast and a
bounded drain on SIGTERM, is exercised on a live server in tests/e2e)."""

from __future__ import annotations

import bentoml._internal.utils.circus as bentoml_circus
from bentoml.serving import create_watcher

from modelserve_predictor.supervisor import CHECK_EVERY_S, HOOKS_MARGIN_S, supervise


def test_the_arbiter_checks_often_always_respawns_and_bounds_the_stop() -> None:
    watcher = create_watcher(name="predictor", args=["-c", "pass"], numprocesses=1)
    watcher.respawn = False  # what BentoML sets inside a container
    assert watcher.graceful_timeout == 86400  # BentoML's own: a day before SIGKILL
    arbiter = supervise(bentoml_circus.create_standalone_arbiter, drain_s=7.0)([watcher])
    assert arbiter.check_delay == CHECK_EVERY_S  # seconds (circus' controller takes ms)
    assert watcher.respawn is True
    assert watcher.graceful_timeout == 7.0 + HOOKS_MARGIN_S


def test_a_check_that_lands_during_another_command_is_skipped() -> None:
    watcher = create_watcher(name="predictor", args=["-c", "pass"], numprocesses=1)
    arbiter = supervise(bentoml_circus.create_standalone_arbiter, drain_s=1.0)([watcher])
    arbiter._exclusive_running_command = "start"  # circus' own marker of a running command
    assert arbiter.manage_watchers() is None  # circus alone raises ConflictError here
