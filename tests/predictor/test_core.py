"""The worker's model manager in process: a model that is not there at start (a registry
blip, a bootstrap still running) is retried with backoff and served once it appears."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from modelserve_predictor.core import Predictor
from modelserve_predictor.plan import worker_plans
from modelserve_predictor.settings import ModelConfig, PredictorSettings


def test_a_model_missing_at_start_is_served_once_it_appears(
    tmp_path: Path, e2e_registry: Path
) -> None:
    later = tmp_path / "registry"
    settings = PredictorSettings(
        models=[ModelConfig(ref="tiny-sentiment")],
        registry_uri=str(later),
        cache_dir=tmp_path / "cache",
        workers=1,
        gpus=[],
    )
    predictor = Predictor(settings, worker_plans(settings)[0])
    predictor.load()
    slot = predictor.slots["tiny-sentiment"]
    assert not predictor.ready and slot.state == "UNAVAILABLE" and slot.reason

    async def scenario() -> float:
        await predictor.warm_up()  # starts the loop that retries
        await asyncio.sleep(1.5)  # a retry or two finds nothing yet
        assert not predictor.ready
        shutil.copytree(e2e_registry, later, dirs_exist_ok=True)
        appeared = time.monotonic()
        while not predictor.ready:
            assert time.monotonic() - appeared < 90, slot.reason
            await asyncio.sleep(0.1)
        waited = time.monotonic() - appeared
        served = slot.acquire()
        assert (await served.infer(["it works now"]))[0].output.shape == (3,)
        await predictor.close()
        return waited

    waited = asyncio.run(scenario())
    assert slot.state == "READY" and slot.reason is None
    assert waited < 60  # the backoff is capped at 30 s


def test_a_model_that_never_loads_is_given_up_after_load_give_up_s(tmp_path: Path) -> None:
    settings = PredictorSettings(
        models=[ModelConfig(ref="tiny-sentiment")],
        registry_uri=str(tmp_path / "never-filled"),
        cache_dir=tmp_path / "cache",
        workers=1,
        gpus=[],
        load_give_up_s=3.0,
    )
    predictor = Predictor(settings, worker_plans(settings)[0])
    predictor.load()
    assert predictor.given_up() == []  # retrying, not yet given up: /livez stays 200
    deadline = time.monotonic() + 60
    while not (given_up := predictor.given_up()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert given_up[0].startswith("tiny-sentiment: ") and "registry" in given_up[0]
    predictor.draining = True  # SIGTERM: not ready whatever the models
    assert not predictor.ready
