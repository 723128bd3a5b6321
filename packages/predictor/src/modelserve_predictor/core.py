"""The predictor without any web framework: loads this worker's models, validates requests,
shapes answers (the study's /analyze-sentiment, /embed, and the Open Inference Protocol).
service.py only adapts it to BentoML."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelserve_predictor.errors import BadRequest, ModelNotFound, NotReady, PayloadTooLarge
from modelserve_predictor.metrics import Metrics
from modelserve_predictor.models import ServedModel, softmax
from modelserve_predictor.placement import WorkerPlan
from modelserve_predictor.settings import PredictorSettings
from modelserve_runtime.errors import RegistryError
from modelserve_runtime.settings import StoreSettings
from modelserve_runtime.store import Registry

log = logging.getLogger("modelserve.predictor")


class Predictor:
    def __init__(
        self, settings: PredictorSettings, plan: WorkerPlan, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.models: dict[str, ServedModel] = {}
        for config in settings.models:
            if config.name in self.models:
                raise BadRequest(f"model {config.name!r} is configured twice")
            self.models[config.name] = ServedModel(
                config.name,
                config,
                plan.models[config.name],
                plan.worker_index,
                plan.threads,
                metrics,
            )

    # -- lifecycle -----------------------------------------------------------------------

    def load(self) -> None:
        """Blocking: pull, verify and load every model; a failure is recorded per model and
        keeps the predictor not ready (it never serves what it could not verify)."""
        registry_settings = StoreSettings()
        uri = self.settings.registry_uri or registry_settings.uri
        cache = self.settings.cache_dir or registry_settings.cache_dir / "pulled"
        try:
            registry = Registry.open(uri, s3_endpoint_url=registry_settings.s3_endpoint_url)
        except RegistryError as exc:
            for model in self.models.values():
                model.error = f"registry unreachable: {exc}"
            return
        for model in self.models.values():
            try:
                model.load(registry, cache, self.plan.local_device(model.name))
            except Exception as exc:  # any failure: refuse readiness, say why in one line
                model.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.error("model %s failed to load: %s", model.name, model.error)
        # Loaded weights live forever: keep the collector from rescanning them (a full
        # collection in a loaded worker was seen taking ~300 ms, straight into the p99).
        gc.collect()
        gc.freeze()

    async def warm_up(self) -> None:
        for model in self.models.values():
            if model.batcher is not None and not model.ready:
                try:
                    await model.warm_up()
                except Exception as exc:
                    model.error = f"warm-up failed: {exc}"

    @property
    def ready(self) -> bool:
        return all(m.ready for m in self.models.values())

    def problems(self) -> list[str]:
        return [f"{m.name}: {m.error}" for m in self.models.values() if m.error]

    async def close(self) -> None:
        await asyncio.gather(*(m.close() for m in self.models.values()))

    # -- request handling ----------------------------------------------------------------

    def model(self, name: str | None, task: str) -> ServedModel:
        if name is None:  # the first configured model of that task
            name = next(
                (
                    m.name
                    for m in self.models.values()
                    if m.manifest is not None and m.manifest.task == task
                ),
                None,
            )
            if name is None:
                raise ModelNotFound(f"no {task} model is served")
        if name not in self.models:
            raise ModelNotFound(f"model {name!r} is not served (serving: {', '.join(self.models)})")
        model = self.models[name]
        if not model.ready or model.manifest is None:
            raise NotReady(f"model {name!r} is not ready: {model.error or 'loading'}")
        if model.manifest.task != task:
            raise BadRequest(f"model {name!r} is a {model.manifest.task} model, not {task}")
        return model

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
            if len(item) > self.settings.max_text_chars:
                raise PayloadTooLarge(
                    f"text {index} has {len(item)} characters; the limit is "
                    f"{self.settings.max_text_chars}"
                )
        return items

    def _identity(self, model: ServedModel) -> dict[str, Any]:
        assert model.manifest is not None
        return {
            "model": model.name,
            "version": model.manifest.version,
            "variant": model.variant.value,
            "synthetic": model.manifest.synthetic,
        }

    async def analyze(
        self, text: Any = None, texts: Any = None, model: str | None = None
    ) -> dict[str, Any]:
        items = self.check_texts(text, texts)
        served = self.model(model, "text-classification")
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
            "worker": self.plan.worker_index,
            "results": results,
        }

    async def embed(
        self, text: Any = None, texts: Any = None, model: str | None = None
    ) -> dict[str, Any]:
        items = self.check_texts(text, texts)
        served = self.model(model, "embedding")
        rows = await served.infer(items)
        return {
            **self._identity(served),
            "device": str(served.device),
            "worker": self.plan.worker_index,
            "dimension": int(rows[0].output.shape[-1]),
            "embeddings": [r.output.astype(float).round(7).tolist() for r in rows],
            "truncated": [r.truncated for r in rows],
        }

    # -- Open Inference Protocol v2 --------------------------------------------------------

    def oip_metadata(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise ModelNotFound(f"model {name!r} is not served")
        model = self.models[name]
        manifest = model.manifest
        if manifest is None:
            raise NotReady(f"model {name!r} is not loaded: {model.error or 'loading'}")
        outputs: list[dict[str, Any]] = []
        dim = (
            len(manifest.labels)
            if manifest.task == "text-classification"
            else manifest.embedding_dim
        )
        if manifest.task == "text-classification":
            outputs = [
                {"name": "logits", "datatype": "FP32", "shape": [-1, dim]},
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
            ]
        else:
            outputs = [{"name": "embeddings", "datatype": "FP32", "shape": [-1, dim]}]
        return {
            "name": name,
            "versions": [str(manifest.version)],
            "platform": "onnxruntime_onnx" if model.variant.engine == "onnxruntime" else "pytorch",
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": outputs,
            "parameters": {
                "task": manifest.task,
                "variant": model.variant.value,
                "device": str(model.device),
                "labels": manifest.labels,
                "synthetic": manifest.synthetic,
            },
        }

    async def oip_infer(self, name: str, body: Any, version: str | None = None) -> dict[str, Any]:
        if name not in self.models:
            raise ModelNotFound(f"model {name!r} is not served")
        model = self.models[name]
        if not model.ready or model.manifest is None:
            raise NotReady(f"model {name!r} is not ready: {model.error or 'loading'}")
        if version is not None and version != str(model.manifest.version):
            raise ModelNotFound(
                f"model {name!r} version {version} is not served (serving {model.manifest.version})"
            )
        texts = self._oip_texts(body)
        rows = await model.infer(texts)
        matrix = np.stack([r.output for r in rows]).astype(np.float32)
        outputs: list[dict[str, Any]] = []
        if model.manifest.task == "text-classification":
            outputs.append(self._tensor("logits", matrix))
            labels = [model.manifest.labels[int(i)] for i in matrix.argmax(axis=1)]
            outputs.append(
                {"name": "label", "datatype": "BYTES", "shape": [len(labels)], "data": labels}
            )
        else:
            outputs.append(self._tensor("embeddings", matrix))
        wanted = {o.get("name") for o in body.get("outputs") or [] if isinstance(o, dict)}
        if wanted:
            outputs = [o for o in outputs if o["name"] in wanted]
        response = {
            "model_name": name,
            "model_version": str(model.manifest.version),
            "outputs": outputs,
            "parameters": {"truncated": [r.truncated for r in rows]},
        }
        if isinstance(body.get("id"), str):
            response["id"] = body["id"]
        return response

    @staticmethod
    def _tensor(name: str, matrix: np.ndarray) -> dict[str, Any]:
        return {
            "name": name,
            "datatype": "FP32",
            "shape": list(matrix.shape),
            "data": matrix.reshape(-1).round(6).tolist(),
        }

    def _oip_texts(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object with 'inputs'")
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise BadRequest("'inputs' must hold exactly one tensor, named 'text'")
        tensor = inputs[0]
        if tensor.get("datatype") != "BYTES":
            raise BadRequest(f"input datatype must be BYTES, got {tensor.get('datatype')!r}")
        data = tensor.get("data")
        shape = tensor.get("shape")
        if not isinstance(data, list):
            raise BadRequest("input 'data' must be a list of strings")
        flat = _flatten(data)
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) for d in shape)
            or int(np.prod(shape or [0])) != len(flat)
        ):
            raise BadRequest(f"input shape {shape!r} does not match {len(flat)} data elements")
        return self.check_texts(None, flat)


def _flatten(data: Sequence[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat
