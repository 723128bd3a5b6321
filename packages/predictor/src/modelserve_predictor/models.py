"""A model as served by one worker: pulled and verified from the registry, loaded on its
device, warmed up, behind its own batcher. Plain classes, testable without BentoML."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from modelserve_metric_names.predictor import REJECT_REASONS
from modelserve_predictor.batcher import Batcher
from modelserve_predictor.batching import BatchReport, estimate_tokens
from modelserve_predictor.errors import ConfigError, DeadlineExceeded, NotReady, Overloaded
from modelserve_predictor.metrics import OUTCOMES, Metrics
from modelserve_predictor.placement import Device
from modelserve_predictor.settings import ModelConfig
from modelserve_runtime.cache import pull_cached
from modelserve_runtime.inference import TextModel
from modelserve_runtime.manifest import ModelManifest, Variant
from modelserve_runtime.store import Registry

T = TypeVar("T")
# On 2 CPU cores INT8 is compute-bound at batch 1 (measured: 274 texts/s at batch 1, 89 at
# batch 32 of random Sp1786 texts): batch only texts of nearly equal length. GPUs gain from
# width and tolerate padding.
CPU_PADDING_RATIO = 1.25
# Past a few texts a CPU batch costs more per text, not less, and holds every text in it for
# the whole batch (one ONNX Runtime thread, length-grouped Sp1786 texts, 2026-12-04):
# sentiment-minilm 391 texts/s at batch 1, 349 at 4, 270 at 32 (118 ms a batch);
# roberta-base 54 at 1, 59 at 4, 40 at 32 (809 ms a batch). So 4 on CPU: the batcher still
# amortizes its hops under load, and a burst's admitted texts never wait behind a long batch.
CPU_MAX_BATCH_SIZE = 4
GPU_MAX_BATCH_SIZE = 32
# Characters kept per token of the model's maximum before tokenizing: English averages about
# 4 per WordPiece token; 12 leaves room for long words and spacing while bounding the work.
CHARS_PER_TOKEN_BOUND = 12
GPU_PADDING_RATIO = 4.0


def default_variant(device: Device) -> Variant:
    return Variant.ONNX_FP16 if device.kind == "cuda" else Variant.ONNX_INT8


def fetch(
    registry: Registry, manifest: ModelManifest, config: ModelConfig, device: Device, cache: Path
) -> Path:
    """Check the variant suits the device, and pull it into the cache (verified)."""
    variant = manifest.variant(config.variant or default_variant(device))
    if device.kind not in variant.runtime.devices:
        raise ConfigError(
            f"{manifest.name}:{manifest.version} {variant.variant.value} cannot "
            f"run on {device.kind} (it targets {', '.join(variant.runtime.devices)})"
        )
    return pull_cached(registry, manifest, variant.variant, cache)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class Row:
    """One text's answer: its output vector and whether it was truncated."""

    output: np.ndarray
    truncated: bool


def lower_priority(nice: int) -> None:
    """Make the calling thread `nice` (Linux: per thread; raising it needs no privilege)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class ServedModel:
    def __init__(
        self,
        name: str,
        config: ModelConfig,
        device: Device,
        worker: int,
        threads: int,
        metrics: Metrics | None,
    ) -> None:
        self.name = name
        self.config = config
        self.device = device
        self.worker = worker
        self.threads = threads
        self.metrics = metrics
        self.manifest: ModelManifest | None = None
        self.text_model: TextModel | None = None
        self.batcher: Batcher | None = None
        self.error: str | None = None
        self.ready = False
        self.load_seconds = 0.0
        # Requests inside this copy (queued or running): a retired copy is freed at 0.
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(
            1,
            thread_name_prefix=f"model-{name}",
            initializer=lower_priority,
            initargs=(config.compute_nice,),
        )

    @property
    def variant(self) -> Variant:
        assert self.text_model is not None
        return self.text_model.variant

    def labels(self) -> dict[str, str]:
        return {
            "model": self.name,
            "variant": self.variant.value,
            "device": str(self.device),
            "worker": str(self.worker),
        }

    @property
    def version(self) -> int:
        assert self.manifest is not None
        return self.manifest.version

    def load(
        self, registry: Registry, manifest: ModelManifest, cache: Path, local_device: Device
    ) -> None:
        """Blocking: pull, verify and load this exact version. `local_device` is the index
        after CUDA_VISIBLE_DEVICES renumbering."""
        started = time.perf_counter()
        folder = fetch(registry, manifest, self.config, self.device, cache)
        self.manifest = manifest
        self.text_model = TextModel(
            folder,
            device=local_device.kind,
            threads=self.threads,
            device_id=local_device.index,
        )
        self.batcher = Batcher(
            self.name,
            self._run_batch,
            self._executor,
            max_batch_size=self._for_device(
                self.config.max_batch_size, CPU_MAX_BATCH_SIZE, GPU_MAX_BATCH_SIZE
            ),
            max_batch_tokens=self.config.max_batch_tokens,
            max_queue=self.config.max_queue,
            max_queue_wait_ms=self.config.max_queue_wait_ms,
            overload_queue_wait_ms=self.config.overload_queue_wait_ms,
            max_latency_ms=self.config.max_latency_ms,
            max_tokens_per_text=self.manifest.max_sequence_length,
            max_padding_ratio=self._for_device(
                self.config.max_padding_ratio, CPU_PADDING_RATIO, GPU_PADDING_RATIO
            ),
            on_batch=self._record_batch,
            on_reject=self.record_reject,
            # a configured wait for fuller batches means the operator wants the batching
            inline_when_idle=self.config.inline_when_idle and not self.config.max_latency_ms,
        )
        self.load_seconds = time.perf_counter() - started

    def _for_device(self, configured: T | None, on_cpu: T, on_gpu: T) -> T:
        """A batching setting left at None: its measured default for this copy's device."""
        if configured is not None:
            return configured
        return on_cpu if self.device.kind == "cpu" else on_gpu

    def _run_batch(self, texts: list[str]) -> list[Row]:
        assert self.text_model is not None
        started = time.perf_counter()
        # Tokenizers reads a text whole before truncating it: cut it first, so that no legal
        # request costs more than its truncated tokens (4,000 words x 50 texts took 5.1 s).
        limit = self.manifest.max_sequence_length * CHARS_PER_TOKEN_BOUND  # type: ignore[union-attr]
        cut = [len(t) > limit for t in texts]
        encoded = self.text_model.encode([t[:limit] for t in texts])
        encoded.truncated = [a or b for a, b in zip(encoded.truncated, cut, strict=True)]
        outputs = self.text_model.run(encoded)
        if self.metrics:
            labels = self.labels()
            self.metrics.inference_seconds.labels(**labels).observe(time.perf_counter() - started)
            self.metrics.batch_tokens.labels(**labels).observe(encoded.input_ids.size)
            if truncated := sum(encoded.truncated):
                self.metrics.truncated_total.labels(**labels).inc(truncated)
        return [Row(outputs[i], encoded.truncated[i]) for i in range(len(texts))]

    def _record_batch(self, report: BatchReport) -> None:
        if not self.metrics:
            return
        labels = self.labels()
        self.metrics.batch_size.labels(**labels).observe(report.size)
        for wait in report.waits:
            self.metrics.queue_wait_seconds.labels(**labels).observe(wait)
        assert self.batcher is not None
        self.metrics.queue_depth.labels(**labels).set(self.batcher.depth)

    def record_reject(self, reason: str) -> None:
        if self.metrics:
            self.metrics.rejected_total.labels(**self.labels(), reason=reason).inc()

    async def warm_up(self) -> None:
        await self.infer(["warm-up request"], record=False)
        await self._calibrate()
        self.ready = True
        if self.metrics and self.manifest:
            labels = self.labels()
            self.metrics.model_load_seconds.labels(**labels).set(self.load_seconds)
            # Counters exist from the start at 0, so rates and ratios read 0 rather than
            # "no data" until the first rejection, truncation or failure.
            for reason in REJECT_REASONS:
                self.metrics.rejected_total.labels(**labels, reason=reason)
            self.metrics.truncated_total.labels(**labels)
            for outcome in OUTCOMES:
                self.metrics.requests_total.labels(**labels, outcome=outcome)
            sha = self.manifest.variant(self.variant).files[0].sha256
            self.metrics.model_info.labels(
                **labels, version=str(self.manifest.version), sha256=sha
            ).set(1)

    async def _calibrate(self) -> None:
        """Time a short and a longest text alone on the batches' thread (each twice, the
        faster counts), so that admission knows the time per token and the fixed part per
        text from the first request (a short warm-up text alone had made a long one look
        ten times its cost)."""
        assert self.batcher is not None
        loop = asyncio.get_running_loop()
        limit = self.batcher.max_tokens_per_text
        samples = []
        for text in ("warm-up request", "warm " * limit):
            best = float("inf")
            for _ in range(2):
                started = time.perf_counter()
                await loop.run_in_executor(self._executor, self._run_batch, [text])
                best = min(best, time.perf_counter() - started)
            samples.append((estimate_tokens(text, limit), best))
        self.batcher.calibrate(*samples)

    async def infer(
        self, texts: list[str], record: bool = True, timeout_s: float | None = None
    ) -> list[Row]:
        """The rows for `texts`; each call is one request in the per-model RED metrics
        (warm-up passes record=False so it does not count as traffic). `timeout_s`: the
        request's deadline (default: the model's `deadline_ms`)."""
        if timeout_s is None:
            timeout_s = self.config.deadline_ms / 1000
        if self.batcher is None:
            raise NotReady(f"model {self.name!r} is not loaded: {self.error or 'loading'}")
        self.active += 1  # before any await: a swap can never free a copy a request holds
        self._idle.clear()
        try:
            return await self._infer(texts, record, timeout_s)
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()

    async def _infer(self, texts: list[str], record: bool, timeout_s: float) -> list[Row]:
        assert self.batcher is not None
        if not (record and self.metrics):
            return await self.batcher.submit(texts)
        labels = self.labels()
        in_progress = self.metrics.requests_in_progress.labels(**labels)
        in_progress.inc()
        started = time.perf_counter()
        outcome = "error"
        try:
            rows = await self.batcher.submit(texts, timeout_s)
            outcome = "ok"
            return rows
        except (Overloaded, DeadlineExceeded):
            outcome = "rejected"
            raise
        except asyncio.CancelledError:  # the client went away or the request timed out
            outcome = "cancelled"
            raise
        finally:
            in_progress.dec()
            self.metrics.requests_total.labels(**labels, outcome=outcome).inc()
            if outcome == "ok":
                self.metrics.request_seconds.labels(**labels).observe(time.perf_counter() - started)

    async def drain(self) -> None:
        """Wait for the requests already inside this copy (queued and running batches)."""
        await self._idle.wait()

    async def close(self) -> None:
        if self.batcher:
            await self.batcher.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.metrics and self.manifest and self.text_model and self.ready:
            sha = self.manifest.variant(self.variant).files[0].sha256
            self.metrics.model_info.labels(
                **self.labels(), version=str(self.manifest.version), sha256=sha
            ).set(0)  # multiprocess gauges cannot be removed: 0 says "no longer served"
        self.ready = False
        self.text_model = None  # the session's memory goes with the last reference
        self.batcher = None
