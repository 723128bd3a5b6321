"""The one request core, as KServe's DataPlane: the study's /analyze-sentiment and /embed, the
Open Inference Protocol's health, metadata and infer, and Triton's model repository
extension. The REST adapter (rest.py) and the gRPC adapter (grpc_server.py) only translate
their wire formats to these calls and map PredictorError to their statuses."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from modelserve_predictor.core import Predictor
from modelserve_predictor.errors import (
    BadRequest,
    LoadRefused,
    ModelNotFound,
    PayloadTooLarge,
    PredictorError,
)
from modelserve_predictor.lifecycle import ModelSlot, resolve
from modelserve_predictor.models import ServedModel, default_variant, softmax
from modelserve_predictor.protocol import (
    INPUT_NAME,
    InferRequest,
    InferResponse,
    OutputTensor,
    check_outputs,
    select_outputs,
)
from modelserve_predictor.settings import ModelConfig
from modelserve_runtime.errors import InvalidReference
from modelserve_runtime.manifest import Variant
from modelserve_runtime.references import ModelReference

SERVER_NAME = "modelserve-predictor"
SERVER_VERSION = "0.1.0"
# What server metadata lists: exactly what this server implements.
EXTENSIONS = ["binary_tensor_data", "model_repository", "placement"]


def output_names(task: str) -> list[str]:
    if task == "text-classification":
        return ["logits", "label", "truncated"]
    return ["embeddings", "truncated"]


class DataPlane:
    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.settings = predictor.settings

    # -- health and metadata ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.predictor.ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": EXTENSIONS}

    def _serving(self, name: str, version: str | None = None) -> ServedModel:
        served = self.predictor.slot(name).acquire()
        if version not in (None, "", str(served.version)):
            raise ModelNotFound(
                f"model {name!r} version {version} is not served (serving {served.version})"
            )
        return served

    def model_ready(self, name: str, version: str | None = None) -> bool:
        slot = self.predictor.slot(name)  # 404 for unknown models
        served = slot.serving
        return served is not None and served.ready and version in (None, "", str(served.version))

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        served = self._serving(name, version)
        manifest = served.manifest
        assert manifest is not None
        classifier = manifest.task == "text-classification"
        width = len(manifest.labels) if classifier else manifest.embedding_dim
        shapes = {
            "logits": ("FP32", [-1, width]),
            "label": ("BYTES", [-1]),
            "embeddings": ("FP32", [-1, width]),
            "truncated": ("BOOL", [-1]),
        }
        return {
            "name": name,
            "versions": [str(manifest.version)],
            "platform": "onnxruntime_onnx" if served.variant.engine == "onnxruntime" else "pytorch",
            "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": o, "datatype": shapes[o][0], "shape": shapes[o][1]}
                for o in output_names(manifest.task)
            ],
            "parameters": {
                "state": self.predictor.slot(name).state,
                "reason": self.predictor.slot(name).reason or "",
                "task": manifest.task,
                "variant": served.variant.value,
                "device": str(served.device),
                "labels": manifest.labels,
                "synthetic": manifest.synthetic,
            },
        }

    # -- inference -----------------------------------------------------------------------------

    def check_texts(self, text: Any, texts: Any) -> list[str]:
        if (text is None) == (texts is None):
            raise BadRequest("send exactly one of 'text' (a string) or 'texts' (a list of strings)")
        items = [text] if texts is None else texts
        if not isinstance(items, list) or not items:
            raise BadRequest("'texts' must be a non-empty list of strings")
        if len(items) > self.settings.max_texts_per_request:
            raise PayloadTooLarge(
                f"{len(items)} texts in one request; the limit is "
                f"{self.settings.max_texts_per_request}"
            )
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise BadRequest(f"text {index} is {type(item).__name__}, not a string")
            if not item.strip():
                raise BadRequest(f"text {index} is empty")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:  # JSON can carry lone surrogates ("\ud800")
                raise BadRequest(
                    f"text {index} is not valid Unicode: a lone surrogate at character {exc.start}"
                ) from None
            if len(item) > self.settings.max_text_chars:
                raise PayloadTooLarge(
                    f"text {index} has {len(item)} characters; the limit is "
                    f"{self.settings.max_text_chars}"
                )
        return items

    def _by_task(self, name: str | None, task: str) -> ServedModel:
        if name is None:  # the first model of that task
            name = next(
                (
                    slot.name
                    for slot in self.predictor.slots.values()
                    if slot.serving and slot.serving.manifest.task == task  # type: ignore[union-attr]
                ),
                None,
            )
            if name is None:
                raise ModelNotFound(f"no {task} model is served")
        served = self._serving(name)
        if served.manifest.task != task:  # type: ignore[union-attr]
            raise BadRequest(f"model {name!r} is a {served.manifest.task} model, not {task}")  # type: ignore[union-attr]
        return served

    def shed_early(self, path: str) -> tuple[float, str] | None:
        """Before a request is read: (Retry-After seconds, reason) when the model its route
        names (a route's default model for /analyze-sentiment and /embed) has just refused
        for a queue over its budget, which it will still be. Under 3x overload a refusal
        that went through the whole HTTP stack cost about what an answer costs, and the
        refusals took the CPU from the admitted."""
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            name: str | None = path.split("/")[3]
            task = None
        elif path in ("/analyze-sentiment", "/embed"):
            name, task = (
                None,
                "text-classification" if path == "/analyze-sentiment" else "embedding",
            )
        else:
            return None
        try:
            served = self._by_task(name, task) if task else self._serving(name)  # type: ignore[arg-type]
        except PredictorError:
            return None  # the request itself will say what is wrong
        batcher = served.batcher
        left = batcher.refusing() if batcher is not None else None
        if left is None:
            return None
        served.record_reject("queue_wait")
        return max(
            1.0, left
        ), f"model {served.name!r} is overloaded: its queue is over its wait budget"

    def _identity(self, served: ServedModel) -> dict[str, Any]:
        assert served.manifest is not None
        return {
            "model": served.name,
            "version": served.manifest.version,
            "variant": served.variant.value,
            "synthetic": served.manifest.synthetic,
        }

    async def analyze(self, text: Any = None, texts: Any = None, model: Any = None) -> dict:
        items = self.check_texts(text, texts)
        served = self._by_task(model, "text-classification")
        rows = await served.infer(items)
        labels = served.manifest.labels  # type: ignore[union-attr]
        scores = softmax(np.stack([r.output for r in rows]))
        identity = self._identity(served)
        results = [
            {
                "label": labels[int(s.argmax())],
                "scores": {label: round(float(v), 6) for label, v in zip(labels, s, strict=True)},
                "truncated": row.truncated,
                **identity,
            }
            for s, row in zip(scores, rows, strict=True)
        ]
        return {
            **identity,
            "device": str(served.device),
            "worker": served.worker,
            "results": results,
        }

    async def embed(self, text: Any = None, texts: Any = None, model: Any = None) -> dict:
        items = self.check_texts(text, texts)
        served = self._by_task(model, "embedding")
        rows = await served.infer(items)
        return {
            **self._identity(served),
            "device": str(served.device),
            "worker": served.worker,
            "dimension": int(rows[0].output.shape[-1]),
            "embeddings": [r.output.astype(float).round(7).tolist() for r in rows],
            "truncated": [r.truncated for r in rows],
        }

    async def infer(self, request: InferRequest) -> InferResponse:
        served = self._serving(request.model, request.version)
        manifest = served.manifest
        assert manifest is not None
        check_outputs(request.outputs, output_names(manifest.task), request.model)
        texts = self.check_texts(None, request.texts)
        timeout_s = request.timeout_s
        if timeout_s is not None:  # a client may ask for any deadline up to the server's own
            timeout_s = min(timeout_s, self.settings.request_timeout_s)
        rows = await served.infer(texts, timeout_s=timeout_s)
        matrix = np.stack([r.output for r in rows]).astype(np.float32)
        truncated = np.array([r.truncated for r in rows], dtype=bool)
        if manifest.task == "text-classification":
            labels = np.array(
                [manifest.labels[int(i)] for i in matrix.argmax(axis=1)], dtype=object
            )
            produced = [
                OutputTensor("logits", "FP32", matrix),
                OutputTensor("label", "BYTES", labels),
            ]
        else:
            produced = [OutputTensor("embeddings", "FP32", matrix)]
        produced.append(OutputTensor("truncated", "BOOL", truncated))
        return InferResponse(
            model=request.model,
            version=str(manifest.version),
            outputs=select_outputs(request, produced),
            id=request.id,
            parameters={"variant": served.variant.value, "worker": served.worker},
        )

    # -- model repository (Triton's extension) -------------------------------------------

    async def repository_index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """Every model this predictor may serve: its own, then the registry's others."""
        index = [self._index_entry(slot) for slot in self.predictor.slots.values()]
        registry = self.predictor.registry
        if registry is not None:
            try:
                names = await asyncio.to_thread(registry.models)
            except Exception:  # the index still lists what is served
                names = []
            index += [
                {"name": n, "version": "", "state": "UNAVAILABLE", "reason": "not loaded"}
                for n in names
                if n not in self.predictor.slots
            ]
        return [e for e in index if e["state"] == "READY"] if ready_only else index

    @staticmethod
    def _index_entry(slot: ModelSlot) -> dict[str, str]:
        served = slot.serving
        return {
            "name": slot.name,
            "version": str(served.version) if served and served.manifest else "",
            "state": slot.state,
            "reason": slot.reason or "",
        }

    def _load_config(self, name: str, parameters: dict[str, Any]) -> ModelConfig:
        unknown = set(parameters) - {"version", "alias", "variant"}
        if unknown:
            raise BadRequest(
                f"unknown load parameters {sorted(unknown)}; use version, alias or variant"
            )
        version, alias = parameters.get("version"), parameters.get("alias")
        if version is not None and alias is not None:
            raise BadRequest("give a version or an alias, not both")
        slot = self.predictor.slots.get(name)
        try:
            base = slot.config if slot else ModelConfig(ref=name)
        except ValueError as exc:  # pydantic's ValidationError: not a model name
            raise BadRequest(f"{name!r} is not a model name: {_first_error(exc)}") from None
        try:
            reference = ModelReference.parse(base.ref)
            if version is not None:
                if isinstance(version, bool) or not isinstance(version, int | str):
                    raise BadRequest(f"version must be an integer, got {version!r}")
                reference = ModelReference.parse(f"{name}:{version}")
            elif alias is not None:
                reference = ModelReference.parse(f"{name}@{alias}")
            elif reference.name != name:
                reference = ModelReference.parse(name)
        except InvalidReference as exc:
            raise BadRequest(str(exc)) from None
        variant = base.variant
        if "variant" in parameters:
            try:
                variant = Variant(parameters["variant"])
            except ValueError:
                choices = ", ".join(v.value for v in Variant)
                raise BadRequest(f"unknown variant {parameters['variant']!r} ({choices})") from None
        return base.model_copy(update={"ref": str(reference), "variant": variant})

    async def load(self, name: str, parameters: dict[str, Any]) -> None:
        """Load (or reload, or move to another version/alias/variant) in every worker; the
        answer comes when all are done. Refused with the reason, and nothing changes, when
        the registry lacks it or any worker cannot load it."""
        config = self._load_config(name, parameters)
        registry = self.predictor.registry
        if registry is None:
            raise LoadRefused("the registry is unreachable")
        manifest = await asyncio.to_thread(resolve, registry, config)
        device = self.predictor.placement(name).device
        variant = config.variant or default_variant(device)
        if variant not in manifest.variants:
            have = ", ".join(sorted(v.value for v in manifest.variants))
            raise LoadRefused(f"{manifest.name}:{manifest.version} has no {variant.value} ({have})")
        entry = {"config": config.model_dump(mode="json"), "loaded": True}
        previous, reports = await self._change(name, entry)
        failures = [
            f"worker {worker}: {view.get('reason') or view.get('state')}"
            for worker, view in sorted(reports.items())
            if view.get("version") != manifest.version or view.get("state") != "READY"
        ]
        if failures:
            # put back what was wanted before, so that no worker (nor a restarted one) keeps
            # trying it; the workers that did switch go back to the previous version
            await self._change(name, previous)
            raise LoadRefused(
                f"model {name!r} version {manifest.version} not loaded: {'; '.join(failures)}"
            )

    async def unload(self, name: str) -> None:
        slot = self.predictor.slot(name)
        await self._change(name, {"config": slot.config.model_dump(mode="json"), "loaded": False})

    async def _change(
        self, name: str, entry: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
        """Make `entry` the wanted state of `name` in every worker (None: back to the
        configuration); returns the previous entry and each worker's view of the model."""
        predictor = self.predictor
        control = predictor.control
        if control is None:  # one worker without a shared directory: apply here only
            slot = predictor.slots.get(name)
            previous = (
                {"config": slot.config.model_dump(mode="json"), "loaded": slot.wanted}
                if slot
                else None
            )
            if entry is not None:
                await predictor.ensure(name, entry)
            view = predictor.slots[name].view() if name in predictor.slots else {}
            return previous, {predictor.plan.worker_index: view}
        previous = control.wanted()["models"].get(name)

        def update(models: dict[str, Any]) -> None:
            if entry is None:
                models.pop(name, None)
            else:
                models[name] = entry

        generation = control.change(update)
        await predictor.apply_wanted()
        reports = await control.wait_for(generation, self.settings.repository_timeout_s)
        return previous, {w: r["models"].get(name, {}) for w, r in reports.items()}


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors) and errors():
        return str(errors()[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc).splitlines()[0]
