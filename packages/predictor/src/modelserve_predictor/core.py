"""A worker's models, without any web framework: one ModelSlot per model name, the registry
they come from, and the loop that keeps them at what is wanted (the shared control directory
written by the repository API, and the aliases the models follow). dataplane.py answers
requests on top of it; service.py only adapts both to BentoML."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from pathlib import Path
from typing import Any

from modelserve_predictor.control import ControlDir
from modelserve_predictor.errors import BadRequest, LoadRefused, ModelNotFound
from modelserve_predictor.lifecycle import ModelSlot, Placement, follows
from modelserve_predictor.metrics import Metrics, forget_dead_workers
from modelserve_predictor.placement import WorkerPlan
from modelserve_predictor.settings import ModelConfig, PredictorSettings
from modelserve_runtime.errors import RegistryError
from modelserve_runtime.settings import StoreSettings
from modelserve_runtime.store import Registry

log = logging.getLogger("modelserve.predictor")
CONTROL_TICK_S = 0.1


class Predictor:
    def __init__(
        self,
        settings: PredictorSettings,
        plan: WorkerPlan,
        metrics: Metrics | None = None,
        workers: int = 1,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.metrics = metrics
        self.registry: Registry | None = None
        registry_settings = StoreSettings()
        self.registry_uri = settings.registry_uri or registry_settings.uri
        self.s3_endpoint_url = registry_settings.s3_endpoint_url
        self.cache: Path = settings.cache_dir or registry_settings.cache_dir / "pulled"
        self.control = (
            ControlDir(settings.control_dir, plan.worker_index, workers)
            if settings.control_dir
            else None
        )
        self.slots: dict[str, ModelSlot] = {}
        for config in settings.models:
            if config.name in self.slots:
                raise BadRequest(f"model {config.name!r} is configured twice")
            self.slots[config.name] = ModelSlot(config, self.placement(config.name), metrics)
        self.applied_generation = 0
        self._task: asyncio.Task | None = None
        self._behind = False
        self._retry_at: dict[str, float] = {}  # model -> when to try loading it again
        self._backoff: dict[str, float] = {}
        self.started = time.monotonic()
        self.draining = False  # SIGTERM seen: not ready, so that traffic goes elsewhere

    def placement(self, name: str) -> Placement:
        device = self.plan.models.get(name, self.plan.device)
        return Placement(
            device, self.plan.local_device(name), self.plan.worker_index, self.plan.threads
        )

    # -- lifecycle -----------------------------------------------------------------------

    def load(self) -> None:
        """Blocking: pull, verify and load what is wanted (the configuration, or what the
        repository API changed it to before this worker started); a model that fails is
        recorded with its reason and keeps the predictor not ready."""
        try:
            self.registry = Registry.open(self.registry_uri, s3_endpoint_url=self.s3_endpoint_url)
        except RegistryError as exc:
            for slot in self.slots.values():
                slot.reason = f"registry unreachable: {exc}"
                slot.state = "UNAVAILABLE"
            return
        if self.control:
            wanted = self.control.wanted()
            self._adopt(wanted["models"])
            self.applied_generation = wanted["generation"]
        for slot in self.slots.values():
            if slot.wanted:
                slot.load_blocking(self.registry, self.cache)
            else:
                slot.state, slot.reason = "UNAVAILABLE", "unloaded"
        # Loaded weights live long: keep the collector from rescanning them (a full
        # collection in a loaded worker was seen taking ~300 ms, straight into the p99).
        gc.collect()
        gc.freeze()

    async def warm_up(self) -> None:
        for slot in self.slots.values():
            await slot.warm_up()
        self._report()
        if self._task is None:  # also when the registry was unreachable: it retries
            self._task = asyncio.get_running_loop().create_task(self._follow(), name="follow")

    @property
    def ready(self) -> bool:
        """Every wanted model has a serving copy (a swap in progress keeps it ready: the old
        copy serves; `swap: drain` windows answer 503 for that model only)."""
        return not self.draining and all(
            slot.serving is not None or (slot.replacing and slot.served_before) or not slot.wanted
            for slot in self.slots.values()
        )

    def given_up(self) -> list[str]:
        """Wanted models that have not served once in the `load_give_up_s` since this worker
        started: retrying on is pointless; /livez fails so that the pod is restarted."""
        if time.monotonic() - self.started < self.settings.load_give_up_s:
            return []
        return [
            f"{slot.name}: {slot.reason or 'not loaded'}"
            for slot in self.slots.values()
            if slot.wanted and slot.serving is None and not slot.served_before
        ]

    def wait_ahead_s(self) -> float:
        """How long a text arriving now would wait here, summed over the served models (the
        load this worker publishes to its siblings: loadboard.py)."""
        return sum(
            slot.serving.batcher.wait_ahead_s()
            for slot in self.slots.values()
            if slot.serving is not None and slot.serving.batcher is not None
        )

    def problems(self) -> list[str]:
        return [f"{s.name}: {s.reason}" for s in self.slots.values() if s.reason]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(slot.close() for slot in self.slots.values()))

    # -- keeping up with what is wanted ---------------------------------------------------

    def slot(self, name: str) -> ModelSlot:
        if name not in self.slots:
            raise ModelNotFound(f"model {name!r} is not served (serving: {', '.join(self.slots)})")
        return self.slots[name]

    def _wanted(self, overrides: dict[str, Any]) -> dict[str, tuple[ModelConfig, bool]]:
        """What each model should be: the configuration, changed by the repository API's
        entries; a slot neither names is unloaded."""
        wanted = {config.name: (config, True) for config in self.settings.models}
        for name, entry in overrides.items():
            wanted[name] = (ModelConfig.model_validate(entry["config"]), bool(entry["loaded"]))
        for name, slot in self.slots.items():
            wanted.setdefault(name, (slot.config, False))
        return wanted

    def _slot_for(self, name: str, config: ModelConfig) -> ModelSlot:
        if name not in self.slots:  # a model loaded through the repository API
            self.slots[name] = ModelSlot(config, self.placement(name), self.metrics)
        return self.slots[name]

    def _adopt(self, overrides: dict[str, Any]) -> None:
        for name, (config, loaded) in self._wanted(overrides).items():
            slot = self._slot_for(name, config)
            slot.config, slot.wanted = config, loaded

    async def ensure(self, name: str, entry: dict[str, Any]) -> None:
        """Apply one wanted entry here (raises LoadRefused / ModelNotFound with the reason)."""
        assert self.registry is not None
        config = ModelConfig.model_validate(entry["config"])
        slot = self._slot_for(name, config)
        await slot.ensure(self.registry, self.cache, config, entry["loaded"], retry=True)

    async def _follow(self) -> None:
        next_alias_check = time.monotonic() + self.settings.alias_poll_s
        while True:
            await asyncio.sleep(CONTROL_TICK_S)
            try:
                if self.control and (self.control.changed() or self._behind):
                    # _behind: a change seen but not applied yet (an apply that failed is
                    # tried again on the next tick, not only at the next rewrite)
                    self._behind = self.control.wanted()["generation"] > self.applied_generation
                    if self._behind:
                        await self.apply_wanted()
                        self._behind = False
                await self._retry_unavailable()
                if time.monotonic() >= next_alias_check:
                    await self._follow_aliases()
                    next_alias_check = time.monotonic() + self.settings.alias_poll_s
                    if self.metrics:  # a sibling killed since: its live gauges go too
                        forget_dead_workers()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die: log, retry on the next tick
                log.exception("keeping models up to date failed")

    async def apply_wanted(self) -> None:
        assert self.control is not None
        if self.registry is None:
            return  # _retry_unavailable opens it first
        wanted = self.control.wanted()
        for name, (config, loaded) in self._wanted(wanted["models"]).items():
            # retry=True: an explicit change tries again even a version that failed before
            await self._ensure(self._slot_for(name, config), config, loaded, retry=True)
        self.applied_generation = max(self.applied_generation, wanted["generation"])
        self._report()

    async def _retry_unavailable(self) -> None:
        """A wanted model with no serving copy (the registry was down at start, a load
        failed) is tried again with exponential backoff, 1 s doubling to 30 s."""
        now = time.monotonic()
        for slot in list(self.slots.values()):
            if not slot.wanted or slot.serving is not None or slot.replacing:
                continue
            if now < self._retry_at.get(slot.name, 0.0):
                continue
            if self.registry is None:
                try:
                    self.registry = Registry.open(
                        self.registry_uri, s3_endpoint_url=self.s3_endpoint_url
                    )
                except RegistryError as exc:
                    slot.reason = f"registry unreachable: {exc}"
            if self.registry is not None:
                await self._ensure(slot, slot.config, True, retry=True)
            if slot.serving is None:
                backoff = min(30.0, 2 * self._backoff.get(slot.name, 0.5))
                self._backoff[slot.name] = backoff
                self._retry_at[slot.name] = time.monotonic() + backoff
            else:
                self._backoff.pop(slot.name, None)
                self._report()

    async def _follow_aliases(self) -> None:
        if self.registry is None:
            return
        changed = False
        for slot in list(self.slots.values()):
            if slot.wanted and follows(slot.config.ref):
                changed |= await self._ensure(slot, slot.config, True)
        if changed:
            self._report()

    async def _ensure(
        self, slot: ModelSlot, config: ModelConfig, wanted: bool, retry: bool = False
    ) -> bool:
        assert self.registry is not None
        try:
            return await slot.ensure(self.registry, self.cache, config, wanted, retry=retry)
        except (LoadRefused, ModelNotFound) as exc:
            slot.reason = str(exc)
            return False

    def _report(self) -> None:
        if self.control:
            self.control.report(
                self.applied_generation, {name: s.view() for name, s in self.slots.items()}
            )
