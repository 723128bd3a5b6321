"""ServedModel's compute thread: it runs at the model's `compute_nice`, below the event loop."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

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


def test_a_worker_sharing_the_cores_runs_a_lone_text_on_all_of_them(
    e2e_registry: Path, tmp_path: Path
) -> None:
    """A real ONNX model on a CPU worker with one of two cores: batches run on one thread, a
    text inline on an idle worker on two, in a second session over the same file; with the
    inline path off there is no second session."""
    registry = Registry.open(str(e2e_registry))
    for inline, alone_threads in ((True, 2), (False, 1)):
        config = ModelConfig(ref="tiny-sentiment", variant="onnx-int8", inline_when_idle=inline)
        served = ServedModel(
            "tiny-sentiment", config, Device("cpu"), 1, threads=1, metrics=None, idle_threads=2
        )
        served.load(registry, resolve(registry, config), tmp_path / "cache", Device("cpu"))
        runner = served.text_model.runner
        assert runner.session.get_session_options().intra_op_num_threads == 1
        alone = runner.alone_session.get_session_options().intra_op_num_threads
        assert alone == alone_threads
        assert (runner.alone_session is runner.session) == (not inline)
        # the same answer on either session (dynamic INT8 differs between batch shapes, so
        # both run the text alone)
        (on_one,) = served._run_batch(["great"])
        (on_all,) = served._run_batch(["great"], alone=True)
        np.testing.assert_allclose(on_all.output, on_one.output, rtol=1e-4, atol=1e-5)
        served._executor.shutdown(wait=True)
