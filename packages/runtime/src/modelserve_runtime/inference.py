"""Running a pulled variant: tokenizer plus an ONNX Runtime session or a PyTorch module.

Each call pads the batch to its own longest sequence (never to a fixed length) and
truncates to the model's maximum, reporting which texts were truncated. The registry validates
with this same class and the predictor serves with it, so what was validated is what is
served. Serving an ONNX variant imports neither torch nor transformers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from modelserve_runtime.errors import DeviceUnavailable
from modelserve_runtime.manifest import ModelManifest
from modelserve_runtime.store import read_pulled_manifest
from modelserve_runtime.tokenization import Encoded, TextTokenizer

__all__ = ["Encoded", "OnnxRunner", "TextModel", "TorchRunner", "predict_sorted"]

TOKENIZER_DIR = "tokenizer"
ONNX_FILE = "model.onnx"


class Runner(Protocol):
    device: str
    providers: list[str]

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


class OnnxRunner:
    def __init__(
        self,
        path: Path,
        device: str = "cpu",
        threads: int | None = None,
        device_id: int = 0,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers: list = ["CPUExecutionProvider"]
        if device == "cuda":
            if hasattr(ort, "preload_dlls"):
                ort.preload_dlls()
            providers = [
                ("CUDAExecutionProvider", {"device_id": device_id}),
                "CPUExecutionProvider",
            ]
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.providers = self.session.get_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise DeviceUnavailable(
                f"{path}: CUDA execution provider could not start on this machine"
            )
        self.device = device
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.session.run([self.output_name], feeds)[0]


class TorchRunner:
    def __init__(
        self, folder: Path, manifest: ModelManifest, device: str = "cpu", threads: int | None = None
    ) -> None:
        import torch

        from modelserve_runtime.torch_graph import load_torch_variant

        if threads:
            torch.set_num_threads(threads)
        if str(device).startswith("cuda"):
            # cuDNN's attention (torch's pick for FP16 on Hopper) builds a plan per new
            # (batch, length) shape: ~45 ms each on an H200, and per-batch padding makes shapes
            # vary all the time. Without it the first pass is fast and the steady state the
            # same (FP16 batch 32: 0.165 vs 0.162 ms/text; benchmarks/gpu/README.md).
            torch.backends.cuda.enable_cudnn_sdp(False)
        self.torch = torch
        self.device = device
        self.providers = [f"torch:{device}"]
        self.model = load_torch_variant(folder, manifest.graph, device)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            return self.model(ids, mask).float().cpu().numpy()


class TextModel:
    """A pulled variant ready to answer: `predict(texts)` -> logits or embeddings."""

    def __init__(
        self,
        folder: Path,
        device: str = "cpu",
        threads: int | None = None,
        device_id: int = 0,
    ) -> None:
        self.folder = folder
        self.manifest = read_pulled_manifest(folder)
        (self.variant,) = self.manifest.variants
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.max_length = self.manifest.max_sequence_length
        self.tokenizer = TextTokenizer(folder / TOKENIZER_DIR, self.max_length)
        if self.variant.engine == "onnxruntime":
            self.runner: Runner = OnnxRunner(folder / ONNX_FILE, device, threads, device_id)
        else:
            # The index matters when a worker sees several GPUs (a gpu_map plan): "cuda"
            # alone would put every model on the first one (seen on an H200 with device_id=1).
            torch_device = f"cuda:{device_id}" if device == "cuda" else device
            self.runner = TorchRunner(folder, self.manifest, torch_device, threads)

    def encode(self, texts: list[str]) -> Encoded:
        return self.tokenizer.encode(texts)

    def run(self, encoded: Encoded) -> np.ndarray:
        return self.runner(encoded.input_ids, encoded.attention_mask)

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.run(self.encode(texts))


def predict_sorted(model: TextModel, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Predict many texts in length-sorted batches (little padding), in the original order."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[np.ndarray] = [np.empty(0)] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        result = model.predict([texts[i] for i in chunk])
        for row, index in enumerate(chunk):
            outputs[index] = result[row]
    return np.stack(outputs)
