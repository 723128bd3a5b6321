"""One model name in one worker: the copy serving now and how it is replaced.

A new version (repository load, alias move) is pulled, verified, loaded and warmed up while
the current copy keeps answering; then `serving` is switched in one assignment, the old copy
finishes the requests already inside it, and is freed. A request takes the copy to use once
(`acquire`) and counts itself in before any await, so it is answered by exactly one complete
copy, and that copy's version is the one it reports. When two copies do not fit (`swap:
drain`, or too little free memory), the old copy is drained and freed first and the model
answers 503 + Retry-After for that window. A version that fails to load or warm up is never
switched to; the old copy keeps serving and the reason stays visible until the target moves."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from modelserve_metric_names.predictor import MODEL_STATES, SWAP_RESULTS
from modelserve_predictor.errors import LoadRefused, ModelNotFound, NotReady
from modelserve_predictor.memory import available_bytes, fits_beside
from modelserve_predictor.metrics import Metrics
from modelserve_predictor.models import ServedModel, default_variant
from modelserve_predictor.placement import Device
from modelserve_predictor.settings import ModelConfig
from modelserve_runtime.errors import NotFound, RegistryError
from modelserve_runtime.manifest import ModelManifest
from modelserve_runtime.references import ModelReference
from modelserve_runtime.store import Registry

log = logging.getLogger("modelserve.predictor")


@dataclass(frozen=True)
class Placement:
    device: Device  # as the placement plan names it
    local_device: Device  # after CUDA_VISIBLE_DEVICES renumbering
    worker: int
    threads: int


def follows(ref: str) -> bool:
    """Whether a reference can move (an alias or 'latest') rather than pin a version."""
    return ModelReference.parse(ref).version is None


def resolve(registry: Registry, config: ModelConfig) -> ModelManifest:
    """The manifest `config.ref` names now; NotFound becomes a 404 for the API."""
    try:
        return registry.manifest(config.ref)
    except NotFound as exc:
        raise ModelNotFound(str(exc)) from None
    except RegistryError as exc:
        raise LoadRefused(f"registry: {exc}") from None


class ModelSlot:
    def __init__(self, config: ModelConfig, placement: Placement, metrics: Metrics | None) -> None:
        self.name = config.name
        self.config = config  # what this slot should serve (its ref may follow an alias)
        self.placement = placement
        self.metrics = metrics
        self.serving: ServedModel | None = None
        self.state = "LOADING"
        self.wanted = True  # False once unloaded through the repository API
        self.reason: str | None = None  # why the last change failed, or why unavailable
        self.failed: tuple[int, str] | None = None  # (version, variant) not to retry
        self.retiring = 0  # old copies still finishing their requests
        self.replacing = False  # a change is under way (the model may be briefly unavailable)
        self.served_before = False  # some copy was ready once (a drain swap keeps readiness)
        self._lock = asyncio.Lock()  # one change at a time
        self._set_state("LOADING")
        if metrics:  # counters from 0, so that increase() counts a worker's first swap too
            labels = {"model": self.name, "worker": str(placement.worker)}
            for result in SWAP_RESULTS:
                metrics.swaps_total.labels(**labels, result=result)

    # -- the request path ------------------------------------------------------------------

    def acquire(self) -> ServedModel:
        served = self.serving
        if served is None or not served.ready:
            why = self.reason or ("unloaded" if not self.wanted else "loading")
            raise NotReady(f"model {self.name!r} is not ready: {why}")
        return served

    # -- changes -----------------------------------------------------------------------------

    def load_blocking(self, registry: Registry, cache: Path) -> None:
        """The first load, in the worker's constructor (before its event loop serves)."""
        try:
            manifest = resolve(registry, self.config)
            copy = self._new_copy(self.config)
            copy.load(registry, manifest, cache, self.placement.local_device)
        except Exception as exc:
            self.reason = _one_line(exc)
            self._set_state("UNAVAILABLE")
            log.error("model %s failed to load: %s", self.name, self.reason)
            return
        self.serving = copy

    async def warm_up(self) -> None:
        if self.serving is None or self.serving.ready:
            return
        try:
            await self.serving.warm_up()
        except Exception as exc:
            self.reason = f"warm-up failed: {_one_line(exc)}"
            self.serving = None
            self._set_state("UNAVAILABLE")
            return
        self.served_before = True
        self._set_state("READY")

    async def ensure(
        self,
        registry: Registry,
        cache: Path,
        config: ModelConfig | None = None,
        wanted: bool = True,
        retry: bool = False,
    ) -> bool:
        """Bring the slot to `config` (default: its own, re-resolving a moving ref) or to
        unloaded. Returns whether the serving copy changed; raises LoadRefused with the reason
        when the new version cannot be served (the old copy is still serving then)."""
        async with self._lock:
            if not wanted:
                self.wanted = False
                return await self._unload()
            config = config or self.config
            manifest = await asyncio.to_thread(resolve, registry, config)
            variant = config.variant or default_variant(self.placement.device)
            key = (manifest.version, variant.value)
            current = self.serving
            self.config, self.wanted = config, True
            if current is not None and current.ready and _key(current) == key:
                if self.failed and self.failed != key:
                    self.failed, self.reason = None, None  # the target moved back: nothing to retry
                return False
            if self.failed == key and not retry:
                return False  # this exact version already failed; wait for the target to move
            self.replacing = True
            try:
                await self._replace(registry, cache, config, manifest)
            finally:
                self.replacing = False
            return True

    async def _replace(
        self, registry: Registry, cache: Path, config: ModelConfig, manifest: ModelManifest
    ) -> None:
        started = time.perf_counter()
        old = self.serving
        if old is not None and not self._fits_beside(manifest, config):
            # Two copies do not fit: free the old one first (503 + Retry-After meanwhile),
            # and bring it back if the new one fails.
            self.reason = f"swapping to version {manifest.version}: freeing the old copy first"
            self._set_state("UNLOADING")
            self.serving = None
            fallback = (old.config, old.manifest)
            await self._retire(old)
            old = None
            self._set_state("LOADING")
            try:
                await self._switch_to(registry, cache, config, manifest, started)
            except LoadRefused:
                if fallback[1] is not None:
                    with contextlib.suppress(LoadRefused):
                        await self._switch_to(registry, cache, fallback[0], fallback[1], None)
                raise
            return
        await self._switch_to(registry, cache, config, manifest, started)
        if old is not None:
            await self._retire(old)

    async def _switch_to(
        self,
        registry: Registry,
        cache: Path,
        config: ModelConfig,
        manifest: ModelManifest,
        started: float | None,
    ) -> None:
        """Load and warm a copy of `manifest`, then make it the serving one. `started`:
        when the change began (None for a fallback, which is not counted as a swap)."""
        copy = self._new_copy(config)
        try:
            await asyncio.to_thread(
                copy.load, registry, manifest, cache, self.placement.local_device
            )
            await copy.warm_up()
        except Exception as exc:
            await copy.close()
            variant = config.variant or default_variant(self.placement.device)
            self.failed = (manifest.version, variant.value)
            self.reason = f"version {manifest.version} not loaded: {_one_line(exc)}"
            if started is not None:
                self._count("failed", started)
            log.error("model %s: %s", self.name, self.reason)
            self._set_state("READY" if self.serving is not None else "UNAVAILABLE")
            raise LoadRefused(f"model {self.name!r}: {self.reason}") from None
        self.serving = copy  # the switch: every request from here on uses the new copy
        self.served_before = True
        if started is None:  # a fallback: keep saying why the change failed
            self._set_state("READY")
            return
        self.failed, self.reason = None, None
        self._set_state("READY")
        self._count("ok", started)
        log.info(
            "model %s now serving version %s (%s) after %.2f s",
            self.name,
            manifest.version,
            copy.variant.value,
            time.perf_counter() - started,
        )

    async def _unload(self) -> bool:
        old = self.serving
        if old is None:
            self._set_state("UNAVAILABLE")
            self.reason = "unloaded"
            return False
        self._set_state("UNLOADING")
        self.serving = None
        self.reason = "unloaded"
        await self._retire(old)
        self._set_state("UNAVAILABLE")
        return True

    async def _retire(self, old: ServedModel | None) -> None:
        if old is None:
            return
        self.retiring += 1
        try:
            await old.drain()
            await old.close()
        finally:
            self.retiring -= 1
        del old
        gc.collect()
        release_freed_memory()

    async def close(self) -> None:
        if self.serving is not None:
            await self.serving.close()

    # -- helpers -----------------------------------------------------------------------------

    def _new_copy(self, config: ModelConfig) -> ServedModel:
        return ServedModel(
            self.name,
            config,
            self.placement.device,
            self.placement.worker,
            self.placement.threads,
            self.metrics,
        )

    def _fits_beside(self, manifest: ModelManifest, config: ModelConfig) -> bool:
        if config.swap != "auto":
            return config.swap == "beside"
        variant = manifest.variant(config.variant or default_variant(self.placement.device))
        need = sum(f.size for f in variant.files)
        return fits_beside(need, available_bytes(self.placement.local_device))

    def _set_state(self, state: str) -> None:
        self.state = state
        if not self.metrics:
            return
        labels = {"model": self.name, "worker": str(self.placement.worker)}
        for name in MODEL_STATES:
            self.metrics.model_state.labels(**labels, state=name).set(int(name == state))
        version = self.serving.version if self.serving and self.serving.manifest else 0
        self.metrics.model_version.labels(**labels).set(version)

    def _count(self, result: str, started: float) -> None:
        if not self.metrics:
            return
        labels = {"model": self.name, "worker": str(self.placement.worker)}
        self.metrics.swaps_total.labels(**labels, result=result).inc()
        if result == "ok":
            self.metrics.swap_seconds.labels(**labels).observe(time.perf_counter() - started)

    def view(self) -> dict[str, object]:
        served = self.serving
        return {
            "model": self.name,
            "ref": self.config.ref,
            "state": self.state,
            "ready": self.state == "READY",
            "reason": self.reason,
            "version": served.version if served and served.manifest else None,
            "retiring": self.retiring,
        }


def release_freed_memory() -> None:
    """Hand the freed copy's pages back to the OS: glibc keeps freed heap memory for reuse,
    so without this a worker's RSS stays at two copies after a swap (measured: +68 MB after
    two swaps of sentiment-minilm onnx-int8)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _key(served: ServedModel) -> tuple[int, str]:
    return (served.version, served.variant.value)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
