"""The shared control directory: generations, atomic reports, waiting for every worker."""

from __future__ import annotations

import asyncio
import json

import pytest

from modelserve_predictor.control import ControlDir
from modelserve_predictor.errors import NotReady


def test_changes_bump_the_generation_and_keep_other_models(tmp_path) -> None:
    first = ControlDir(tmp_path, worker=1, workers=2)
    assert first.wanted() == {"generation": 0, "models": {}}
    assert first.change(lambda m: m.__setitem__("a", {"loaded": True})) == 1
    second = ControlDir(tmp_path, worker=2, workers=2)  # another process, same directory
    assert second.change(lambda m: m.__setitem__("b", {"loaded": False})) == 2
    assert first.wanted()["models"] == {"a": {"loaded": True}, "b": {"loaded": False}}
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no leftovers


def test_waiting_ends_when_every_worker_reports_the_generation(tmp_path) -> None:
    workers = [ControlDir(tmp_path, worker=i, workers=2) for i in (1, 2)]
    generation = workers[0].change(lambda m: None)

    async def scenario() -> dict:
        waiting = asyncio.ensure_future(workers[0].wait_for(generation, timeout_s=30))
        workers[0].report(generation, {"a": {"state": "READY"}})
        await asyncio.sleep(0.2)
        assert not waiting.done()  # worker 2 has not applied it yet
        workers[1].report(generation, {"a": {"state": "UNAVAILABLE"}})
        return await waiting

    reports = asyncio.run(scenario())
    assert reports[2]["models"]["a"]["state"] == "UNAVAILABLE"
    assert json.loads((tmp_path / "worker-1.json").read_text())["generation"] == generation


def test_a_worker_that_never_applies_names_itself_in_the_timeout(tmp_path) -> None:
    control = ControlDir(tmp_path, worker=1, workers=2)
    generation = control.change(lambda m: None)
    control.report(generation, {})
    with pytest.raises(NotReady, match="workers 2 did not apply"):
        asyncio.run(control.wait_for(generation, timeout_s=0.3))


def test_changed_says_yes_once_per_rewrite_of_the_wanted_file(tmp_path) -> None:
    reader = ControlDir(tmp_path, worker=1, workers=2)
    writer = ControlDir(tmp_path, worker=2, workers=2)
    assert not reader.changed()  # nothing written yet
    writer.change(lambda m: m.__setitem__("a", {"loaded": True}))
    assert reader.changed() and not reader.changed()
    writer.change(lambda m: m.__setitem__("a", {"loaded": False}))
    assert reader.changed()  # a new file (atomic replace): a new inode
