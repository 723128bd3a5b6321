"""ServedModel's compute thread: it runs at the model's `compute_nice`, below the event loop."""

from __future__ import annotations

import os
import threading

from modelserve_predictor.models import ServedModel
from modelserve_predictor.placement import Device
from modelserve_predictor.settings import ModelConfig


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
