"""ServedModel's compute thread: it runs at the model's `compute_nice`, below the event loop."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from modelserve_predictor.lifecycle import resolve
from modelserve_predictor.models import CPU_MAX_BATCH_SIZE, CPU_PADDING_RATIO, ServedModel
from modelserve_predictor.placement import Device
from modelserve_predictor.settings import ModelConfig
from modelserve_runtime.store import Registry


def _nice_of_compute_thread(config: ModelConfig) -> int:
    served = ServedModel("m", config, Device("cpu"), worker=1, threads=1, metrics=None)
    try:
        job = served._executor.submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        return job.result(timeout=30)
    finally:
        served._executor.shutdown(wait=True)


def test_the_compute_thread_runs_at_compute_nice_and_the_caller_keeps_its_own() -> None:
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert _nice_of_compute_thread(ModelConfig(ref="m", compute_nice=max(own, 7))) == max(own, 7)
    assert _nice_of_compute_thread(ModelConfig(ref="m")) == max(own, 10)  # the default
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own


def test_batching_left_unset_takes_the_devices_measured_defaults(
    e2e_registry: Path, tmp_path: Path
) -> None:
    """A real model loaded on CPU: batches of at most 4 texts within a 1.25 padding ratio
    unless the model's config says otherwise."""
    registry = Registry.open(str(e2e_registry))
    for config, size, ratio in (
        (ModelConfig(ref="tiny-sentiment"), CPU_MAX_BATCH_SIZE, CPU_PADDING_RATIO),
        (ModelConfig(ref="tiny-sentiment", max_batch_size=16, max_padding_ratio=3), 16, 3),
    ):
        served = ServedModel("tiny-sentiment", config, Device("cpu"), 1, threads=1, metrics=None)
        served.load(registry, resolve(registry, config), tmp_path / "cache", Device("cpu"))
        assert served.batcher is not None
        assert (served.batcher.max_batch_size, served.batcher.max_padding_ratio) == (size, ratio)
        served._executor.shutdown(wait=True)
