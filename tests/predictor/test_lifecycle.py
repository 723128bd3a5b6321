"""ModelSlot in process with real tiny ONNX models: a version change beside the serving copy
fails no request, a drain swap answers only 503 meanwhile, and a broken version never
serves (after a drain the previous version comes back)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from modelserve_predictor.errors import LoadRefused, NotReady
from modelserve_predictor.lifecycle import ModelSlot, Placement
from modelserve_predictor.placement import Device
from modelserve_predictor.settings import ModelConfig
from modelserve_runtime.store import Registry, _blob_key
from tests.runtime.stores import s3_endpoint

__all__ = ["s3_endpoint"]  # a fixture used below

CPU = Placement(Device("cpu"), Device("cpu"), worker=1, threads=1)


@pytest.fixture
def registry(tmp_path: Path, e2e_registry: Path) -> Registry:
    """tiny-sentiment 1, 2 (the same artifacts republished) and 3 (a corrupt blob of its own)."""
    shutil.copytree(e2e_registry, tmp_path / "registry")
    registry = Registry.open(str(tmp_path / "registry"))
    first = registry.manifest("tiny-sentiment:1")
    registry.publish(first)
    big = registry.manifest("big-batch")  # other weights, so its blob can be broken alone
    broken = registry.publish(big.model_copy(update={"name": "tiny-sentiment"}))
    blob = tmp_path / "registry" / _blob_key(broken.variant("onnx-int8").files[0].sha256)
    blob.write_bytes(blob.read_bytes()[:-32])
    registry.tag("tiny-sentiment", 1, "production")
    return registry


def _config(**fields) -> ModelConfig:
    # These tests are about swaps, not admission: four clients back to back while a second
    # copy loads on a busy machine can exceed the 50 ms queue-wait budget and be refused.
    return ModelConfig(ref="tiny-sentiment@production", max_queue_wait_ms=None, **fields)


async def _load(slot: ModelSlot, registry: Registry, cache: Path) -> None:
    await asyncio.to_thread(slot.load_blocking, registry, cache)
    await slot.warm_up()
    assert slot.state == "READY" and slot.serving is not None


async def _traffic(slot: ModelSlot, stop: asyncio.Event) -> list[object]:
    """Requests back to back until `stop`: each outcome is a version or the exception."""
    outcomes: list[object] = []
    while not stop.is_set():
        try:
            served = slot.acquire()
            await served.infer(["a steady stream of requests"])
            outcomes.append(served.version)
        except Exception as exc:  # recorded, judged by the test
            outcomes.append(exc)
        await asyncio.sleep(0)
    return outcomes


async def _change_under_traffic(slot, registry, cache, config) -> tuple[list[object], object]:
    stop = asyncio.Event()
    clients = [asyncio.create_task(_traffic(slot, stop)) for _ in range(4)]
    await asyncio.sleep(0.2)
    try:
        result: object = await slot.ensure(registry, cache, config, retry=True)
    except LoadRefused as exc:
        result = exc
    await asyncio.sleep(0.2)
    stop.set()
    outcomes = [o for client in clients for o in await client]
    return outcomes, result


def test_a_swap_beside_the_serving_copy_fails_no_request(registry: Registry, tmp_path) -> None:
    config = _config(swap="beside")
    slot = ModelSlot(config, CPU, None)

    async def scenario() -> list[object]:
        await _load(slot, registry, tmp_path / "cache")
        old = slot.serving
        registry.tag("tiny-sentiment", 2, "production")
        outcomes, changed = await _change_under_traffic(slot, registry, tmp_path / "cache", config)
        assert changed is True and slot.serving.version == 2
        assert old.text_model is None and slot.retiring == 0  # the old copy is freed
        return outcomes

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, int) for o in outcomes), [
        o for o in outcomes if not isinstance(o, int)
    ]
    switched = outcomes.index(2) if 2 in outcomes else len(outcomes)
    assert set(outcomes) == {1, 2} and switched > 0


def test_a_drain_swap_answers_only_503_while_no_copy_serves(registry: Registry, tmp_path) -> None:
    config = _config(swap="drain")
    slot = ModelSlot(config, CPU, None)

    async def scenario() -> list[object]:
        await _load(slot, registry, tmp_path / "cache")
        registry.tag("tiny-sentiment", 2, "production")
        outcomes, changed = await _change_under_traffic(slot, registry, tmp_path / "cache", config)
        assert changed is True and slot.serving.version == 2 and slot.state == "READY"
        return outcomes

    outcomes = asyncio.run(scenario())
    errors = [o for o in outcomes if not isinstance(o, int)]
    assert errors and all(isinstance(e, NotReady) for e in errors)
    assert "freeing the old copy first" in str(errors[0])
    assert {o for o in outcomes if isinstance(o, int)} == {1, 2}


@pytest.mark.parametrize("swap", ["beside", "drain"])
def test_a_broken_version_never_serves(registry: Registry, tmp_path, swap: str) -> None:
    config = _config(swap=swap)
    slot = ModelSlot(config, CPU, None)

    async def scenario() -> tuple[list[object], object]:
        await _load(slot, registry, tmp_path / "cache")
        registry.tag("tiny-sentiment", 3, "production")
        outcomes, refused = await _change_under_traffic(slot, registry, tmp_path / "cache", config)
        assert slot.serving.version == 1 and slot.state == "READY"  # back, or never left
        # the same broken target is not retried on every poll, only when it moves
        assert await slot.ensure(registry, tmp_path / "cache", config) is False
        return outcomes, refused

    outcomes, refused = asyncio.run(scenario())
    assert isinstance(refused, LoadRefused) and "version 3 not loaded" in str(refused)
    assert "version 3 not loaded" in slot.reason
    assert 3 not in outcomes
    if swap == "beside":
        assert all(o == 1 for o in outcomes)


def test_an_alias_move_in_an_s3_registry_is_followed(
    registry: Registry, tmp_path, s3_endpoint: str
) -> None:
    """The same registry layout in a real S3-compatible server (moto on 127.0.0.1)."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="releases")
    root = tmp_path / "registry"
    for path in root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "releases", f"registry/{path.relative_to(root)}")
    remote = Registry.open("s3://releases/registry", s3_endpoint_url=s3_endpoint)
    config = _config()
    slot = ModelSlot(config, CPU, None)

    async def scenario() -> None:
        await _load(slot, remote, tmp_path / "cache")
        assert await slot.ensure(remote, tmp_path / "cache") is False  # nothing moved
        remote.tag("tiny-sentiment", 2, "production")
        assert await slot.ensure(remote, tmp_path / "cache") is True
        assert slot.serving.version == 2

    asyncio.run(scenario())
