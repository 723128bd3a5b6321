"""The workers' shared load board: real files mapped by several boards, as the workers of one
server map theirs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelserve_predictor.loadboard import (
    HANDOFF_MARGIN_S,
    NOT_SERVING,
    LoadBoard,
    should_hand_off,
)


def test_a_worker_hands_off_only_when_clearly_busier_than_its_least_busy_sibling() -> None:
    assert should_hand_off(0.05, 0.0)  # texts wait here, a sibling idles
    assert not should_hand_off(HANDOFF_MARGIN_S / 2, 0.0)  # a text or less: not worth it
    assert not should_hand_off(0.0, 0.0)
    assert not should_hand_off(0.045, 0.030)  # even overload: connections stay put
    assert should_hand_off(0.100, 0.030)


def test_workers_see_each_others_wait_and_none_hands_off_to_a_stopped_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "load"
    one, two, three = (LoadBoard(path, worker, 3) for worker in (1, 2, 3))
    assert path.stat().st_size == 3 * 8
    assert one.least_other() == NOT_SERVING  # siblings still loading take nothing
    assert not one.hand_off(10.0)
    one.publish(0.2)
    two.publish(0.05)
    three.publish(0.01)
    assert one.least_other() == pytest.approx(0.01)
    assert three.least_other() == pytest.approx(0.05)
    assert one.hand_off(0.2)  # 0.2 > 2 * 0.01 + margin
    assert not three.hand_off(0.01)
    three.close()  # stopping: it accepts no new connection, so none is handed to it
    assert one.least_other() == pytest.approx(0.05)
    assert not two.hand_off(0.05)


def test_an_idle_worker_keeps_publishing_without_requests(tmp_path: Path) -> None:
    asyncio.run(_idle_worker_publishes(tmp_path))


async def _idle_worker_publishes(tmp_path: Path) -> None:
    path = tmp_path / "load"
    busy, idle = LoadBoard(path, 1, 2), LoadBoard(path, 2, 2)
    waits = iter([0.3, 0.0])
    current = {"wait": next(waits)}
    idle.keep_published(lambda: current["wait"])
    assert busy.least_other() == pytest.approx(0.3)
    current["wait"] = next(waits)  # its queue drained; no request arrives to say so
    deadline = asyncio.get_running_loop().time() + 10
    while busy.least_other() != 0.0:
        assert asyncio.get_running_loop().time() < deadline, "the drained worker looks busy"
        await asyncio.sleep(0.005)
    idle.close()
