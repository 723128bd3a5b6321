"""The hardware floor beside the model-level table: this machine's peak matrix-product rate
(FP32 and INT8) and a transformer encoder's FLOPs per sample, so that a measured latency can be
read as a fraction of what the arithmetic alone would cost.

FP32 rate: `torch.matmul` (oneDNN/MKL), numpy and ONNX Runtime's `MatMul` (MLAS) on large
square matrices; the floor is the fastest of the three.
INT8 rate: ONNX Runtime's `MatMulInteger` with u8 activations x s8 weights, the same MLAS
QGEMM kernel that the registry's `onnx-int8` variant (dynamic quantization) runs, and
`torch._int_mm` (s8 x s8) where this torch build has it on CPU; the floor is the faster.
Each rate is the best of several timed repeats (a peak, not a typical), at the number of
threads the benchmark itself uses.

    uv run python -m benchmarks.floor            # prints the rates, writes floor.json
    uv run python -m benchmarks.floor --op-profile PULLED/model.onnx --out op_profile.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnx import GraphProto
    from onnxruntime import InferenceSession

RESULTS = Path(__file__).parent / "results" / "model-level"


@dataclass(frozen=True)
class EncoderShape:
    """What the FLOP count needs from a BERT/RoBERTa config.

    `head` is the classifier after the encoder: "cls-dense" (RoBERTa's sequence
    classification head: dense H x H then H x labels on the first token), "linear" (one
    H x labels layer after pooling), or "none" (embeddings only)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    labels: int = 0
    head: str = "none"


def shape_from_config(config: dict, graph_kind: str, labels: int) -> EncoderShape:
    if graph_kind == "sequence-classification":
        head = "cls-dense"
    else:
        head = "linear" if labels else "none"
    return EncoderShape(
        layers=int(config["num_hidden_layers"]),
        hidden=int(config["hidden_size"]),
        intermediate=int(config["intermediate_size"]),
        heads=int(config["num_attention_heads"]),
        labels=labels,
        head=head,
    )


def matmul_params_per_layer(shape: EncoderShape) -> int:
    """Weights that take part in matrix products in one layer: Q, K, V, attention output
    (4 H^2) and the two feed-forward matrices (2 H I). Biases, layer norms and the embedding
    lookup are not matrix products."""
    return 4 * shape.hidden * shape.hidden + 2 * shape.hidden * shape.intermediate


def flops_breakdown(shape: EncoderShape, seq_len: int) -> dict[str, int]:
    """Multiply-adds x 2 for one sample of `seq_len` tokens (padding included: it is computed)."""
    h, s = shape.hidden, seq_len
    weights = 2 * matmul_params_per_layer(shape) * s * shape.layers
    # QK^T and softmax(QK^T)V: per head s x s x d twice, d x heads = h.
    attention = 2 * (2 * s * s * h) * shape.layers
    if shape.head == "cls-dense":
        head = 2 * (h * h + h * shape.labels)
    elif shape.head == "linear":
        head = 2 * h * shape.labels
    else:
        head = 0
    return {"weights": weights, "attention": attention, "head": head}


def flops_per_sample(shape: EncoderShape, seq_len: int) -> int:
    return sum(flops_breakdown(shape, seq_len).values())


def _best_seconds(run: Callable[[], object], repeats: int, min_time: float = 0.2) -> float:
    run()  # warm-up (allocations, kernel selection)
    best = float("inf")
    for _ in range(repeats):
        calls, started = 0, time.perf_counter()
        while True:
            run()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def fp32_torch(n: int, threads: int | None, repeats: int) -> float:
    import torch

    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        seconds = _best_seconds(lambda: torch.matmul(a, b), repeats)
    return 2 * n**3 / seconds


def fp32_torch_shape(m: int, k: int, n: int, threads: int | None, repeats: int) -> float:
    import torch

    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(m, k), torch.randn(k, n)
    with torch.inference_mode():
        seconds = _best_seconds(lambda: torch.matmul(a, b), repeats)
    return 2 * m * k * n / seconds


def fp32_numpy(n: int, repeats: int) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / _best_seconds(lambda: a @ b, repeats)


def _ort_session(graph: GraphProto, threads: int | None) -> InferenceSession:
    import onnxruntime as ort
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def fp32_onnxruntime(m: int, k: int, n: int, threads: int | None, repeats: int) -> float:
    """FP32 `MatMul` with constant weights: MLAS's SGEMM, the kernel of the ONNX FP32 variants
    (on AMD CPUs it can beat torch's MKL/oneDNN path)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "fp32-floor",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        initializer=[numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "w")],
    )
    session = _ort_session(graph, threads)
    feeds = {"a": rng.standard_normal((m, k), dtype=np.float32)}
    return 2 * m * k * n / _best_seconds(lambda: session.run(None, feeds), repeats)


def int8_onnxruntime(m: int, k: int, n: int, threads: int | None, repeats: int) -> float:
    """u8 x s8 -> s32 `MatMulInteger` with constant weights, as dynamic quantization emits."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.integers(-128, 127, (k, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "a_zero", "w_zero"], ["y"])],
        "int8-floor",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        initializer=[
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
        ],
    )
    session = _ort_session(graph, threads)
    feeds = {"a": rng.integers(0, 255, (m, k), dtype=np.uint8)}
    return 2 * m * k * n / _best_seconds(lambda: session.run(None, feeds), repeats)


def int8_torch(n: int, threads: int | None, repeats: int) -> float | None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    try:
        torch._int_mm(a, b)
    except (AttributeError, RuntimeError):
        return None
    return 2 * n**3 / _best_seconds(lambda: torch._int_mm(a, b), repeats)


def measure(threads: int | None = None, n: int = 2048, repeats: int = 5) -> dict:
    """Peak rates in FLOP/s (an INT8 "FLOP" is one multiply or one add, as for FP32).

    `int8_model_shapes` times the INT8 kernel at RoBERTa-base's own shapes (64 tokens x batch 8
    rows; 768 x 768 and 768 x 3072 weights): the rate a perfect implementation of the model
    could reach, lower than the square peak when the matrices are small."""
    rates: dict[str, float | None] = {
        "fp32_torch": fp32_torch(n, threads, repeats),
        "fp32_numpy": fp32_numpy(n, repeats),
        "fp32_onnxruntime": fp32_onnxruntime(n, n, n, threads, repeats),
        "int8_onnxruntime": int8_onnxruntime(n, n, n, threads, repeats),
        "int8_torch_int_mm": int8_torch(n, threads, repeats),
    }
    shapes = {
        f"{m}x{k}x{o}": int8_onnxruntime(m, k, o, threads, repeats)
        for m, k, o in ((64, 768, 768), (512, 768, 768), (512, 768, 3072), (512, 3072, 768))
    }
    fp32_shapes = {
        f"{m}x{k}x{o}": fp32_torch_shape(m, k, o, threads, repeats)
        for m, k, o in ((64, 768, 768), (512, 768, 768), (512, 768, 3072), (512, 3072, 768))
    }
    return {
        "method": (
            f"best of {repeats} timed repeats (each at least 0.2 s of back-to-back calls) of a "
            f"{n}x{n}x{n} product; FP32 with torch.matmul, numpy and ONNX Runtime MatMul, "
            "INT8 with ONNX Runtime MatMulInteger (u8 x s8 -> s32, the kernel of dynamically "
            "quantized models) and torch._int_mm (s8 x s8)"
        ),
        "threads": threads or "library default",
        "size": n,
        "peak_flops": rates,
        "fp32_torch_at_model_shapes": fp32_shapes,
        "fp32_onnxruntime_at_model_shapes": {
            f"{m}x{k}x{o}": fp32_onnxruntime(m, k, o, threads, repeats)
            for m, k, o in ((64, 768, 768), (512, 768, 768), (512, 768, 3072), (512, 3072, 768))
        },
        "int8_onnxruntime_at_model_shapes": shapes,
        "fp32_floor": max(r for k, r in rates.items() if k.startswith("fp32") and r),
        "int8_floor": max(r for k, r in rates.items() if k.startswith("int8") and r),
    }


def op_profile(onnx_path: Path, batch: int, tokens: int, runs: int = 5) -> dict:
    """Where an ONNX variant's time goes, by operator (ONNX Runtime's own profiler), at
    `batch` x `tokens`: how much is matrix products and how much is everything else."""
    import collections

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = "/tmp/floor-op-profile"
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(5, 1000, (batch, tokens)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    for _ in range(2):
        session.run(None, feeds)
    started = time.perf_counter()
    for _ in range(runs):
        session.run(None, feeds)
    ms_per_sample = 1000 * (time.perf_counter() - started) / runs / batch
    trace = Path(session.end_profiling())
    by_op: collections.Counter[str] = collections.Counter()
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    trace.unlink()
    total = sum(by_op.values())
    return {
        "model": "/".join(onnx_path.parts[-4:]),  # name/version/variant/model.onnx
        "batch": batch,
        "tokens": tokens,
        "ms_per_sample": ms_per_sample,
        "share_by_op": {op: us / total for op, us in by_op.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "floor.json")
    parser.add_argument("--op-profile", type=Path, default=None, help="an ONNX file to profile")
    parser.add_argument("--batch", type=int, default=16, help="with --op-profile")
    parser.add_argument("--tokens", type=int, default=64, help="with --op-profile")
    args = parser.parse_args(argv)
    if args.op_profile:
        profile = op_profile(args.op_profile, args.batch, args.tokens)
        print(json.dumps(profile, indent=2))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(profile, indent=2) + "\n")
        return 0
    result = measure(args.threads, args.size, args.repeats)
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
