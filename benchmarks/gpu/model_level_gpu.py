"""GPU checks and the model-level table for roberta-base-synthetic (the study's architecture,
arXiv 2604.20420: RoBERTa-base, FP32 vs FP16, batch sizes 1-32).

Written for the device machine's own python3 (torch, transformers, onnxruntime CPU build),
with the two workspace packages on PYTHONPATH and pydantic(-settings) carried as wheels; see
benchmarks/gpu/README.md for the exact command. Every section records its own error and the
run goes on, and results.json is rewritten after each section, so a time-out still leaves
what finished. On CPU (`--device cpu --quick`) it checks that everything imports and runs.

Sections: environment; build the model folder (bootstrap.build_roberta_synthetic); the
fixed-length table (inputs resident on the device, CUDA-event timing; plus an end-to-end
figure with host->device copies and logits back, as TorchRunner does); worker pinning
(plan.visible_gpus, placement.plan_workers, a child per planned CUDA_VISIBLE_DEVICES); the
CUDA execution provider check (onnxruntime here has none); real Sp1786 texts with per-batch
padding; the registry's own path (export -> push -> pull -> TextModel on the device)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NAME = "roberta-base-synthetic"
VOCAB = 50265
MIB = 1 << 20


class Run:
    """The results document, written to `out/results.json` after every section."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.t0 = time.perf_counter()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        (self.out / "results.json").write_text(json.dumps(self.data, indent=2, default=str))

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {}
        self.data[name] = record
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            yield record
            record["ok"] = True
        except Exception as exc:
            record["ok"] = False
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()
            print(record["traceback"], flush=True)
        record["seconds"] = round(time.perf_counter() - started, 2)
        print(f"   {name}: ok={record['ok']} in {record['seconds']} s", flush=True)
        self.save()


# -- timing --------------------------------------------------------------------------------


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], device: str, warmup: int, iters: int) -> list[float]:
    """Milliseconds per call: CUDA events on a GPU (device time), perf_counter on CPU."""
    import torch

    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        if device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            began = time.perf_counter()
            fn()
            times.append((time.perf_counter() - began) * 1e3)
    return times


def time_wall(fn: Callable[[], Any], device: str, warmup: int, iters: int) -> list[float]:
    """Milliseconds per call by perf_counter, synchronised: what a caller waits."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        began = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - began) * 1e3)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": statistics.median(ordered),
        "min_ms": ordered[0],
        "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "n": len(ordered),
    }


def agreement(reference: Any, other: Any) -> dict[str, float]:
    ref, oth = reference.float().cpu(), other.float().cpu()
    return {
        "max_abs_diff": float((ref - oth).abs().max()),
        "mean_abs_diff": float((ref - oth).abs().mean()),
        "argmax_agreement": float((ref.argmax(-1) == oth.argmax(-1)).float().mean()),
        "max_abs_reference": float(ref.abs().max()),
    }


def reset_peak(device: str) -> int:
    import torch

    if not device.startswith("cuda"):
        return 0
    sync(device)
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def peak_mib(device: str, before: int) -> dict[str, float] | None:
    import torch

    if not device.startswith("cuda"):
        return None
    peak = torch.cuda.max_memory_allocated()
    return {"peak_allocated_mib": peak / MIB, "peak_above_weights_mib": (peak - before) / MIB}


# -- sections ------------------------------------------------------------------------------


def environment(record: dict[str, Any], device: str) -> None:
    import torch
    import transformers

    record.update(
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        transformers=transformers.__version__,
        cpu_count=os.cpu_count(),
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        cuda_available=torch.cuda.is_available(),
        matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
        sdp_enabled={
            "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
        },
    )
    try:
        import onnxruntime as ort

        record["onnxruntime"] = ort.__version__
        record["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError as exc:
        record["onnxruntime"] = f"missing: {exc}"
    if shutil.which("nvidia-smi"):
        query = "name,driver_version,memory.total,compute_cap"
        listed = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        record["nvidia_smi"] = listed.stdout.strip() or listed.stderr.strip()
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        record.update(
            device_name=torch.cuda.get_device_name(0),
            capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            multiprocessors=props.multi_processor_count,
            total_memory_mib=props.total_memory / MIB,
            cudnn=torch.backends.cudnn.version(),
        )


def build(record: dict[str, Any], folder: Path) -> None:
    from modelserve_registry.bootstrap import build_roberta_synthetic

    build_roberta_synthetic(folder)
    record["files"] = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def load_plain(folder: Path, device: str) -> tuple[Any, Any, str]:
    """transformers' own classes, FP32 and a .half() copy: the study's PyTorch variants."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    fp32 = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    fp32 = fp32.to(device).eval()
    fp16 = copy.deepcopy(fp32).half().eval()
    return fp32, fp16, str(fp32.config._attn_implementation)


def fixed_table(record: dict[str, Any], models: dict[str, Any], args: argparse.Namespace) -> None:
    """Batch sizes at a fixed token count, random ids (compute does not depend on them)."""
    import torch

    device, length = args.device, args.seq_len
    generator = torch.Generator().manual_seed(0)
    rows = []
    for batch in args.batch_sizes:
        ids = torch.randint(3, VOCAB, (batch, length), generator=generator)
        ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>
        mask = torch.ones_like(ids)
        ids_dev, mask_dev = ids.to(device), mask.to(device)
        logits = {}
        for precision, model in models.items():
            with torch.inference_mode():
                before = reset_peak(device)

                def forward(m=model, i=ids_dev, k=mask_dev) -> Any:
                    return m(input_ids=i, attention_mask=k).logits

                gpu = time_calls(forward, device, args.warmup, args.iters)
                memory = peak_mib(device, before)

                def end_to_end(m=model, i=ids, k=mask) -> Any:  # as TorchRunner does
                    return (
                        m(input_ids=i.to(device), attention_mask=k.to(device)).logits.float().cpu()
                    )

                e2e = time_wall(end_to_end, device, 1, max(3, args.iters // 2))
                logits[precision] = forward()
            row = {
                "precision": precision,
                "batch": batch,
                "tokens": length,
                "forward": summary(gpu),
                "end_to_end": summary(e2e),
                "ms_per_sample": statistics.median(gpu) / batch,
                "samples_per_s": batch / (statistics.median(gpu) / 1e3),
                "memory": memory,
            }
            rows.append(row)
            print(
                f"   {precision} b={batch:<3} fwd p50 {row['forward']['p50_ms']:8.3f} ms"
                f"  e2e p50 {row['end_to_end']['p50_ms']:8.3f} ms"
                f"  {row['samples_per_s']:9.1f} samples/s"
                + (f"  peak {memory['peak_allocated_mib']:.0f} MiB" if memory else ""),
                flush=True,
            )
        if "fp32" in logits and "fp16" in logits:
            rows[-1]["fp16_vs_fp32"] = agreement(logits["fp32"], logits["fp16"])
    record["rows"] = rows


def read_texts(path: Path, limit: int) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row["text"].strip()][:limit]


def real_texts(
    record: dict[str, Any], models: dict[str, Any], folder: Path, args: argparse.Namespace
) -> None:
    """Sp1786 validation texts in file order, each batch padded to its own longest text."""
    import torch
    from transformers import AutoTokenizer

    if args.texts is None or not args.texts.exists():
        raise FileNotFoundError(f"no texts file ({args.texts})")
    texts = read_texts(args.texts, args.real_texts)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    lengths = sorted(
        len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]
    )
    record.update(
        texts=len(texts),
        source=str(args.texts.name),
        tokens_median=statistics.median(lengths),
        tokens_p95=lengths[int(0.95 * (len(lengths) - 1))],
        tokens_max=lengths[-1],
    )
    device, rows = args.device, []
    collected: dict[str, list[Any]] = {p: [] for p in models}
    for batch in args.batch_sizes:
        encoded = [
            tokenizer(
                texts[i : i + batch],
                padding=True,
                truncation=True,
                max_length=512,
                return_tensors="pt",
            )
            for i in range(0, len(texts), batch)
        ]
        on_device = [(e["input_ids"].to(device), e["attention_mask"].to(device)) for e in encoded]
        padded = sum(int(ids.numel()) for ids, _ in on_device)
        for precision, model in models.items():
            for repeat in range(1, args.real_passes + 1):
                with torch.inference_mode():
                    for ids, mask in on_device[:3]:  # warm-up on the first batches
                        model(input_ids=ids, attention_mask=mask)
                    before = reset_peak(device)
                    per_batch = []
                    for ids, mask in on_device:
                        per_batch += time_calls(
                            lambda i=ids, m=mask, mod=model: (
                                mod(input_ids=i, attention_mask=m).logits
                            ),
                            device,
                            0,
                            1,
                        )
                    memory = peak_mib(device, before)
                    if batch == max(args.batch_sizes):
                        collected[precision] = [
                            model(input_ids=i, attention_mask=m).logits.float().cpu()
                            for i, m in on_device
                        ]
                total = sum(per_batch)
                rows.append(
                    {
                        "precision": precision,
                        "batch": batch,
                        "pass": repeat,
                        "padded_tokens_per_text": padded / len(texts),
                        "batch_p50_ms": statistics.median(per_batch),
                        "batch_max_ms": max(per_batch),
                        "ms_per_sample": total / len(texts),
                        "samples_per_s": len(texts) / (total / 1e3),
                        "memory": memory,
                    }
                )
                row = rows[-1]
                print(
                    f"   {precision} b={batch:<3} pass {repeat} "
                    f"batch p50 {row['batch_p50_ms']:8.3f} ms  {row['ms_per_sample']:7.3f} ms/text"
                    f"  {row['samples_per_s']:9.1f} texts/s",
                    flush=True,
                )
    record["rows"] = rows
    if all(collected.get(p) for p in ("fp32", "fp16")):
        record["fp16_vs_fp32"] = agreement(
            torch.cat(collected["fp32"]), torch.cat(collected["fp16"])
        )


CHILD = """
import json, os, torch
found = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
         "device_count": torch.cuda.device_count()}
if found["device_count"]:
    found["name"] = torch.cuda.get_device_name(0)
    found["allocated_on"] = str(torch.ones(4, device="cuda:0").device)
print(json.dumps(found))
"""


def child_view(visible: str) -> dict[str, Any]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return {"cuda_visible_devices": visible, "error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def pinning(record: dict[str, Any]) -> None:
    """What service.py does per worker, minus BentoML (not installed on the device)."""
    from modelserve_predictor.placement import plan_workers
    from modelserve_predictor.plan import visible_gpus, worker_plans
    from modelserve_predictor.settings import PredictorSettings

    saved = os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        gpus = visible_gpus()  # the nvidia-smi path
        os.environ["CUDA_VISIBLE_DEVICES"] = "0"
        record["visible_gpus_with_cvd_0"] = visible_gpus()
    finally:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        if saved is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved
    record["visible_gpus"] = gpus
    if shutil.which("nvidia-smi"):
        record["nvidia_smi_L"] = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    models = [NAME, "sentiment-minilm"]
    plans = plan_workers(models, gpus=gpus, workers_per_gpu=2, cpu_count=os.cpu_count() or 1)
    record["plans"] = [
        {
            "worker": p.worker_index,
            "device": str(p.device),
            "threads": p.threads,
            "cuda_visible_devices": p.cuda_visible_devices,
            "local_devices": {m: str(p.local_device(m)) for m in models},
        }
        for p in plans
    ]
    settings = PredictorSettings(workers_per_gpu=2)
    record["worker_plans_from_settings"] = [
        (p.worker_index, str(p.device), p.cuda_visible_devices) for p in worker_plans(settings)
    ]
    children = []
    for plan in plans[:2]:
        visible = plan.cuda_visible_devices
        children.append(child_view("" if visible is None else visible))
    children.append(child_view(""))  # a CPU worker: service.py sets "" so it never touches a GPU
    record["children"] = children
    expected = [1 if p.cuda_visible_devices else 0 for p in plans[:2]] + [0]
    record["each_child_sees_expected_gpus"] = [
        c.get("device_count") == e for c, e in zip(children, expected, strict=True)
    ]


def cuda_provider(record: dict[str, Any], work: Path) -> None:
    """OnnxRunner(device="cuda") where onnxruntime has no CUDA provider must fail clearly."""
    import onnx
    from onnx import TensorProto, helper

    from modelserve_registry.errors import ExportError
    from modelserve_runtime.inference import OnnxRunner

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s"])
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["input_ids", "attention_mask"], ["sum"]),
            helper.make_node("Cast", ["sum"], ["logits"], to=TensorProto.FLOAT),
        ],
        "tiny",
        [ids, mask],
        [out],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = work / "tiny.onnx"
    onnx.save(model, str(path))
    try:
        runner = OnnxRunner(path, device="cuda")
        record["result"] = f"started with providers {runner.providers}"
    except ExportError as exc:
        record["result"] = f"ExportError: {exc}"


def registry_path(
    record: dict[str, Any], folder: Path, work: Path, reference: Any, args: argparse.Namespace
) -> None:
    """The registry's PyTorch variants through TextModel/TorchRunner on the device, compared
    with plain transformers FP32 on the same encodings. Each variant folder is laid out as
    pipeline.export_and_push lays it out before validating (pipeline.stage_variant);
    the push itself is skipped: its validation runs on CPU, and FP16 on CPU took minutes."""
    import numpy as np
    import torch

    from modelserve_registry.export import export_variants
    from modelserve_registry.pipeline import _local_entries, stage_variant
    from modelserve_runtime.inference import TOKENIZER_DIR, TextModel
    from modelserve_runtime.manifest import Variant
    from modelserve_runtime.probes import PROBE_TEXTS

    began = time.perf_counter()
    variants = [Variant.PYTORCH_FP32, Variant.PYTORCH_FP16]
    result = export_variants(folder, work / "export", variants)
    tokenizer = _local_entries(work / "export" / TOKENIZER_DIR, f"{TOKENIZER_DIR}/")
    for variant in variants:
        stage_variant(NAME, result, variant, tokenizer, folder)
    record["export_s"] = round(time.perf_counter() - began, 1)
    texts = list(PROBE_TEXTS[:4] if args.quick else PROBE_TEXTS)
    if args.texts and args.texts.exists():
        texts += read_texts(args.texts, 4 if args.quick else 64)
    results = {}
    for variant in variants:
        dest = result.folders[variant]
        model = TextModel(dest, device=args.device)
        params = next(model.runner.model.parameters())  # type: ignore[attr-defined]
        encoded = model.encode(texts)
        outputs = model.run(encoded)
        with torch.inference_mode():
            expected = (
                reference(
                    input_ids=torch.from_numpy(encoded.input_ids).to(args.device),
                    attention_mask=torch.from_numpy(encoded.attention_mask).to(args.device),
                )
                .logits.float()
                .cpu()
            )
        batch_times = time_wall(
            lambda m=model: m.predict(texts[:32]), args.device, 2, args.iters // 2 or 3
        )
        results[variant.value] = {
            "providers": model.runner.providers,
            "parameters_on": str(params.device),
            "parameters_dtype": str(params.dtype),
            "output_dtype": str(outputs.dtype),
            "vs_plain_transformers_fp32": agreement(
                expected, torch.from_numpy(np.asarray(outputs))
            ),
            "predict_32_texts_incl_tokenizer": summary(batch_times),
        }
        if args.device.startswith("cuda"):
            # A TextModel asked for a GPU this process cannot see must not load quietly.
            count = torch.cuda.device_count()
            try:
                stray = TextModel(dest, device="cuda", device_id=count)
                where = str(next(stray.runner.model.parameters()).device)  # type: ignore[attr-defined]
                results[variant.value]["device_id_beyond_visible"] = (
                    f"device_id={count} with {count} GPU(s) visible loaded on {where}"
                )
                del stray
            except Exception as exc:
                results[variant.value]["device_id_beyond_visible"] = f"refused: {exc}"
        del model
    record["variants"] = results


# -- outputs -------------------------------------------------------------------------------


def write_table(run: Run) -> None:
    data = run.data
    env = data.get("environment", {})
    lines = [
        f"# {NAME} model-level table on {env.get('device_name', env.get('platform'))}",
        "",
        f"torch {env.get('torch')}, transformers {env.get('transformers')}, "
        f"attention `{data.get('load', {}).get('attention')}`, driver/GPU: "
        f"{env.get('nvidia_smi', 'n/a')}",
        "",
    ]
    fixed = data.get("fixed", {}).get("rows", [])
    if fixed:
        lines += [
            f"## Fixed {fixed[0]['tokens']} tokens (inputs on the device; forward timed with "
            "CUDA events, p50; end-to-end adds host->device ids and logits back)",
            "",
            "| precision | batch | forward ms/batch | ms/sample | samples/s | end-to-end ms/batch "
            "| peak MiB | FP16 vs FP32 max abs diff | argmax agreement |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in fixed:
            mem = r["memory"]["peak_allocated_mib"] if r["memory"] else None
            agree = r.get("fp16_vs_fp32")
            lines.append(
                f"| {r['precision']} | {r['batch']} | {r['forward']['p50_ms']:.3f} | "
                f"{r['ms_per_sample']:.3f} | {r['samples_per_s']:.1f} | "
                f"{r['end_to_end']['p50_ms']:.3f} | {'' if mem is None else f'{mem:.0f}'} | "
                f"{'' if not agree else format(agree['max_abs_diff'], '.4f')} | "
                f"{'' if not agree else format(agree['argmax_agreement'], '.3f')} |"
            )
        lines.append("")
    real = data.get("real_texts", {})
    if real.get("rows"):
        lines += [
            f"## {real['texts']} Sp1786 validation texts in file order, per-batch padding "
            f"(tokens: median {real['tokens_median']}, p95 {real['tokens_p95']}, max "
            f"{real['tokens_max']})",
            "",
            "| precision | batch | pass | padded tokens/text | batch p50 ms | batch max ms "
            "| ms/text | texts/s | peak MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in real["rows"]:
            mem = r["memory"]["peak_allocated_mib"] if r["memory"] else None
            lines.append(
                f"| {r['precision']} | {r['batch']} | {r['pass']} | "
                f"{r['padded_tokens_per_text']:.1f} | "
                f"{r['batch_p50_ms']:.3f} | {r['batch_max_ms']:.1f} | {r['ms_per_sample']:.3f} | "
                f"{r['samples_per_s']:.1f} | "
                f"{'' if mem is None else f'{mem:.0f}'} |"
            )
        if real.get("fp16_vs_fp32"):
            a = real["fp16_vs_fp32"]
            lines += [
                "",
                f"FP16 vs FP32 on these texts: max abs diff {a['max_abs_diff']:.4f} "
                f"(logits up to {a['max_abs_reference']:.2f}), argmax agreement "
                f"{a['argmax_agreement']:.4f}.",
            ]
        lines.append("")
    (run.out / "table.md").write_text("\n".join(lines))


def plot(run: Run) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed = run.data.get("fixed", {}).get("rows", [])
    real = run.data.get("real_texts", {}).get("rows", [])
    real = [r for r in real if r["pass"] == max(x["pass"] for x in real)]  # shapes seen before
    if not fixed and not real:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for rows, style, label in (
        (fixed, "-o", "fixed 64 tokens"),
        (real, "--s", "Sp1786 texts, last pass"),
    ):
        for precision in ("fp32", "fp16"):
            mine = [r for r in rows if r["precision"] == precision]
            if not mine:
                continue
            batches = [r["batch"] for r in mine]
            left.plot(
                batches, [r["ms_per_sample"] for r in mine], style, label=f"{precision}, {label}"
            )
            right.plot(
                batches, [r["samples_per_s"] for r in mine], style, label=f"{precision}, {label}"
            )
    for axis, title in ((left, "latency per sample (ms)"), (right, "throughput (samples/s)")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    name = run.data.get("environment", {}).get("device_name", "cpu")
    figure.suptitle(f"{NAME}, PyTorch eager, {name}")
    figure.tight_layout()
    figure.savefig(run.out / "model_level.png", dpi=120)


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_texts = next(
        (
            p
            for p in (ROOT / ".gpu-carry" / "val.csv", ROOT.parent / "shared/data/sp1786/val.csv")
            if p.exists()
        ),
        None,
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda or cpu")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/gpu")))
    parser.add_argument("--work", type=Path, default=None, help="scratch (default: a temp dir)")
    parser.add_argument("--texts", type=Path, default=default_texts)
    parser.add_argument(
        "--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32]
    )
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--real-texts", type=int, default=512)
    parser.add_argument("--real-passes", type=int, default=1, help="passes over the real texts")
    parser.add_argument("--no-cudnn-sdp", action="store_true", help="disable cuDNN attention")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a CPU smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.warmup, args.iters, args.real_texts = [1, 4], 1, 3, 8
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    run = Run(args.out)
    run.data["args"] = {k: str(v) for k, v in vars(args).items()}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    folder = work / "source"

    with run.section("environment") as record:
        if args.no_cudnn_sdp:
            import torch

            torch.backends.cuda.enable_cudnn_sdp(False)
        environment(record, args.device)
    with run.section("build") as record:
        from modelserve_registry.export import quiet_third_party

        quiet_third_party()
        build(record, folder)
    models: dict[str, Any] = {}
    with run.section("load") as record:
        fp32, fp16, record["attention"] = load_plain(folder, args.device)
        models = {"fp32": fp32, "fp16": fp16}
        record["parameters"] = sum(p.numel() for p in fp32.parameters())
    if models and "fixed" not in skip:
        with run.section("fixed") as record:
            fixed_table(record, models, args)
        write_table(run)
    if "pinning" not in skip:
        with run.section("pinning") as record:
            pinning(record)
    if "cuda_provider" not in skip:
        with run.section("cuda_provider") as record:
            cuda_provider(record, work)
    if models and "real_texts" not in skip:
        with run.section("real_texts") as record:
            real_texts(record, models, folder, args)
    with run.section("outputs"):  # before the slowest section, in case the run is cut off
        write_table(run)
        plot(run)
    if models and "registry" not in skip:
        with run.section("registry") as record:
            del models["fp16"]
            registry_path(record, folder, work, models["fp32"], args)
        with run.section("outputs"):
            write_table(run)
            plot(run)
    failed = [k for k, v in run.data.items() if isinstance(v, dict) and v.get("ok") is False]
    print(f"done in {run.data['elapsed_s']} s; failed sections: {failed or 'none'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
