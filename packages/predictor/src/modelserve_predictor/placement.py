"""Which worker runs which model on which device: a pure function of the configuration.

Every worker serves every model (BentoML's workers share one listening socket, so any worker
may receive any request); the map decides where each model's copy lives. A model limited to
some GPUs is placed round-robin over those GPUs; without GPUs the CPU cores are divided
between workers as intra-op threads instead of every worker spawning one thread per core."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from modelserve_predictor.errors import ConfigError


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" | "cuda"
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


@dataclass(frozen=True)
class WorkerPlan:
    worker_index: int  # 1-based, as bentoml.server_context.worker_index counts
    device: Device
    threads: int
    models: Mapping[str, Device] = field(default_factory=dict)

    @property
    def cuda_visible_devices(self) -> str | None:
        """The value to set before any CUDA context exists; None on CPU."""
        gpus = sorted({d.index for d in self.models.values() if d.kind == "cuda"})
        if self.device.kind == "cuda" and self.device.index not in gpus:
            gpus.insert(0, self.device.index)
        return ",".join(map(str, gpus)) if gpus else None

    def local_device(self, model: str) -> Device:
        """The model's device as seen after CUDA_VISIBLE_DEVICES renumbers the GPUs (a model
        the plan does not place, loaded later through the repository API, goes on the
        worker's own device)."""
        device = self.models.get(model, self.device)
        if device.kind == "cpu":
            return device
        visible = [int(i) for i in (self.cuda_visible_devices or "").split(",") if i]
        return Device("cuda", visible.index(device.index))


def plan_workers(
    models: Sequence[str],
    *,
    gpus: Sequence[int] = (),
    workers_per_gpu: int = 1,
    cpu_workers: int = 1,
    cpu_count: int = 1,
    model_gpus: Mapping[str, Sequence[int]] | None = None,
) -> list[WorkerPlan]:
    """Plan the workers.

    gpus: GPU indices to use (empty: CPU only). workers_per_gpu: workers started per GPU.
    cpu_workers: workers when there is no GPU. model_gpus: optional model -> allowed GPUs
    (e.g. {"a": [0, 1], "b": [2]}); models not named may use any GPU in `gpus`."""
    model_gpus = dict(model_gpus or {})
    unknown = set(model_gpus) - set(models)
    if unknown:
        raise ConfigError(f"GPU map names models that are not served: {sorted(unknown)}")
    if not gpus:
        if model_gpus:
            raise ConfigError("a GPU map was given but no GPU is available")
        if cpu_workers < 1:
            raise ConfigError("workers must be at least 1")
        threads = max(1, cpu_count // cpu_workers)
        return [
            WorkerPlan(i + 1, Device("cpu"), threads, {m: Device("cpu") for m in models})
            for i in range(cpu_workers)
        ]
    if workers_per_gpu < 1:
        raise ConfigError("workers per GPU must be at least 1")
    if len(set(gpus)) != len(gpus):
        raise ConfigError(f"GPU list has duplicates: {list(gpus)}")
    for model, allowed in model_gpus.items():
        if not allowed or not set(allowed) <= set(gpus):
            raise ConfigError(
                f"model {model!r} is mapped to GPUs {list(allowed)}, "
                f"not a non-empty subset of the available {list(gpus)}"
            )
    total = len(gpus) * workers_per_gpu
    threads = max(1, cpu_count // total)
    plans = []
    for slot in range(total):
        home = gpus[slot // workers_per_gpu]
        placed = {}
        for model in models:
            allowed = list(model_gpus.get(model, gpus))
            placed[model] = Device(
                "cuda", home if home in allowed else allowed[slot % len(allowed)]
            )
        plans.append(WorkerPlan(slot + 1, Device("cuda", home), threads, placed))
    return plans


def parse_gpu_map(text: str) -> dict[str, list[int]]:
    """`"sentiment-minilm=0,1;minilm-embed=2"` -> {"sentiment-minilm": [0, 1], ...}."""
    result: dict[str, list[int]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, ids = part.partition("=")
        try:
            result[name.strip()] = [int(i) for i in ids.split(",") if i.strip()]
        except ValueError:
            raise ConfigError(f"bad GPU map entry {part!r}: expected NAME=0,1") from None
        if not result[name.strip()]:
            raise ConfigError(f"bad GPU map entry {part!r}: no GPU listed")
    return result
