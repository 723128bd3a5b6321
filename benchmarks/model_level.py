"""The study's Tables 1 and 2 on this machine's CPU: every CPU variant of roberta-base-synthetic
and sentiment-minilm at batch sizes 1-32, on real Sp1786 sentence lengths and at a fixed 64
tokens, with size on disk, peak memory and the hardware floor beside each figure.

Timing is `predictor bench`'s own (`modelserve_predictor.bench.run_bench`: variants
interleaved in shuffled order, median of rounds, tokenizer included). Peak memory is measured
in a fresh subprocess per variant (see `memory_probe`). The floor is `floor.py`'s measured
peak matrix-product rate and FLOP count.

    uv run python -m benchmarks.model_level            # full run, about 10 minutes on 2 cores
    uv run python -m benchmarks.model_level --quick    # minutes: fewer texts, rounds, batches
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.floor import EncoderShape, flops_per_sample, measure, shape_from_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "model-level"
TEXTS = ROOT.parent / "shared" / "data" / "sp1786" / "val.csv"
MODELS = ("roberta-base-synthetic", "sentiment-minilm")
# FP16 on a CPU without native FP16 arithmetic only converts back and forth (the registry's
# manifests say "no speed-up on CPU"); measured only on request.
FP16 = ("pytorch-fp16", "onnx-fp16")
STUDY = "arXiv 2604.20420"


def memory_probe(model: str, variant: str, batch: int, tokens: int) -> dict:
    """Runs in a fresh process: RSS after the libraries are imported, then peak RSS (VmHWM)
    after loading the variant and answering one batch of `batch` x `tokens`. The growth is
    the variant's own cost: weights, runtime arenas and activations."""
    import onnxruntime  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from modelserve_predictor.models import fetch
    from modelserve_predictor.placement import Device
    from modelserve_predictor.settings import ModelConfig
    from modelserve_runtime.inference import TextModel
    from modelserve_runtime.settings import StoreSettings
    from modelserve_runtime.store import Registry

    settings = StoreSettings()
    registry = Registry.open(settings.uri, s3_endpoint_url=settings.s3_endpoint_url)
    manifest = registry.manifest(model)
    folder = fetch(
        registry,
        manifest,
        ModelConfig(ref=f"{manifest.name}:{manifest.version}", variant=variant),
        Device("cpu"),
        settings.cache_dir / "pulled",
    )
    before = _status_kb("VmRSS")
    loaded = TextModel(folder, device="cpu")
    loaded.run(loaded.tokenizer.encode_fixed(["x " * tokens] * batch, tokens))
    peak = _status_kb("VmHWM")
    return {
        "rss_before_mb": before / 1024,
        "peak_rss_mb": peak / 1024,
        "growth_mb": (peak - before) / 1024,
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory(model: str, variant: str, batch: int, tokens: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.model_level"]
    command += ["--memory-probe", f"{model}={variant}"]
    command += ["--batch-sizes", str(batch), "--fixed-tokens", str(tokens)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def executed_tokens(folder: Path, texts: list[str], batch: int) -> list[int]:
    """Padded width each text is computed at when `texts` run in consecutive batches of
    `batch` and each batch is padded to its own longest text (as `TextModel.encode` does)."""
    from transformers import AutoTokenizer

    from modelserve_runtime.store import read_pulled_manifest

    limit = read_pulled_manifest(folder).max_sequence_length
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    lengths = [min(limit, len(ids)) for ids in tokenizer(texts, verbose=False)["input_ids"]]
    widths: list[int] = []
    for start in range(0, len(lengths), batch):
        chunk = lengths[start : start + batch]
        widths += [max(chunk)] * len(chunk)
    return widths


def mean_flops(shape: EncoderShape, widths: list[int]) -> float:
    return sum(flops_per_sample(shape, w) for w in widths) / len(widths)


def floor_rate(variant: str, floor: dict) -> tuple[str, float]:
    if "int8" in variant:  # onnx-int8 and onnx-int8-static
        return "int8", floor["int8_floor"]
    return "fp32", floor["fp32_floor"]  # FP16 on this CPU computes in FP32 at best


def apply_floor(results: dict, floor: dict) -> None:
    """Floor time per sample = FLOPs / peak rate; fraction = floor time / measured time."""
    results["floor"] = floor
    for entry in results["models"]:
        for table in entry["tables"].values():
            for row in table["rows"]:
                kind, rate = floor_rate(row["variant"], floor)
                row["floor_kind"] = kind
                row["floor_ms_per_sample"] = 1000 * row["gflops_per_sample"] * 1e9 / rate
                row["floor_fraction"] = row["floor_ms_per_sample"] / row["ms_per_sample"]
                row["achieved_gflops"] = row["gflops_per_sample"] / (row["ms_per_sample"] / 1000)


def bench_model(model: str, args: argparse.Namespace) -> dict:
    from modelserve_predictor.bench import BenchPlan, load_texts, run_bench
    from modelserve_predictor.models import fetch
    from modelserve_predictor.placement import Device
    from modelserve_predictor.settings import ModelConfig
    from modelserve_runtime.settings import StoreSettings
    from modelserve_runtime.store import Registry

    settings = StoreSettings()
    registry = Registry.open(settings.uri, s3_endpoint_url=settings.s3_endpoint_url)
    manifest = registry.manifest(model)
    variants = [v for v, m in manifest.variants.items() if "cpu" in m.runtime.devices]
    skipped = [v.value for v in variants if v.value in FP16 and not args.include_fp16]
    wanted = [v.value for v in variants if v.value not in skipped]
    if args.variants:
        wanted = [v for v in wanted if v in args.variants.split(",")]
    fp32_folder = fetch(
        registry,
        manifest,
        ModelConfig(ref=f"{model}:{manifest.version}", variant="pytorch-fp32"),
        Device("cpu"),
        settings.cache_dir / "pulled",
    )
    config = json.loads((fp32_folder / "config.json").read_text())
    shape = shape_from_config(config, manifest.graph.kind, len(manifest.labels))
    samples = args.samples_small if config["hidden_size"] < 768 else args.samples_large
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    tables: dict[str, dict] = {}
    modes = [m for m in args.modes.split(",") if m]
    if "real" in modes and not args.texts.exists():
        print(f"skipping real sentence lengths: {args.texts} is absent (see ../shared/data)")
        modes.remove("real")
    for mode in modes:
        fixed = args.fixed_tokens if mode == "fixed" else None
        texts_path = str(args.texts) if args.texts.exists() else None
        plan = BenchPlan(
            model=f"{model}:{manifest.version}",
            out=args.out / "raw" / f"{model}-{mode}",
            variants=tuple(wanted),
            batch_sizes=tuple(batch_sizes),
            texts=texts_path,
            fixed_tokens=fixed,
            samples=samples,
            rounds=args.rounds,
            threads=args.threads,
        )
        result = run_bench(plan)
        texts = load_texts(texts_path, samples)
        flops = {
            b: (
                float(flops_per_sample(shape, fixed))
                if fixed
                else mean_flops(shape, executed_tokens(fp32_folder, texts, b))
            )
            for b in batch_sizes
        }
        for row in result["rows"]:
            row["gflops_per_sample"] = flops[row["batch_size"]] / 1e9
        tables[mode] = result
    memory = {}
    if not args.skip_memory:
        for variant in wanted:
            memory[variant] = peak_memory(model, variant, max(batch_sizes), args.fixed_tokens)
            print(f"{model} {variant} memory: {memory[variant]}")
    return {
        "model": model,
        "version": manifest.version,
        "shape": shape.__dict__,
        "samples": samples,
        "skipped_variants": skipped,
        "tables": tables,
        "memory": memory,
    }


def machine() -> dict:
    import onnxruntime
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


MODE_TITLE = {
    "fixed": "Table 1: fixed {tokens} tokens",
    "real": "Table 2: real Sp1786 validation sentence lengths, each batch padded to its longest",
}


def target_lines(results: dict, tokens: int) -> list[str]:
    """The issue's target, per INT8 variant: roberta-base-synthetic at 64 tokens within 1.5x
    of the INT8 floor."""
    rows = [
        r
        for e in results["models"]
        if e["model"] == "roberta-base-synthetic"
        for r in e["tables"].get("fixed", {}).get("rows", [])
        if "int8" in r["variant"]
    ]
    lines = []
    for variant in sorted({r["variant"] for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        best = max(mine, key=lambda r: r["floor_fraction"])
        single = min(mine, key=lambda r: r["batch_size"])
        ratio = 1 / best["floor_fraction"]
        lines += [
            f"**Target** ({variant} roberta-base-synthetic at {tokens} tokens within 1.5x of "
            f"the INT8 floor): best at batch {best['batch_size']}, "
            f"{best['ms_per_sample']:.2f} ms/sample against a floor of "
            f"{best['floor_ms_per_sample']:.2f} ms, {ratio:.2f}x the floor "
            f"({100 * best['floor_fraction']:.0f}%): {'met' if ratio <= 1.5 else 'not met'}. "
            f"Batch {single['batch_size']}: {1 / single['floor_fraction']:.2f}x.",
            "",
        ]
    return lines


def markdown(results: dict, tokens: int) -> str:
    m = results["machine"]
    floor = results["floor"]
    lines = [
        "# Model level on CPU (the study's Tables 1 and 2)",
        "",
        f"{m['cpu']}, {m['logical_cpus']} logical CPUs; torch {m['torch']}, onnxruntime "
        f"{m['onnxruntime']}, python {m['python']}; {m['date']}; {results['runtime_s']:.0f} s.",
        "",
        f"`{results['command']}`",
        "",
        "Hardware floor (`benchmarks/floor.py`, best of repeats, "
        f"{floor['size']}^3 products, threads: {floor['threads']}): "
        f"FP32 {floor['fp32_floor'] / 1e9:.0f} GFLOP/s, "
        f"INT8 {floor['int8_floor'] / 1e9:.0f} GOP/s, the fastest of ("
        + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in floor["peak_flops"].items() if v)
        + " G/s). "
        "Floor ms = FLOPs per sample / floor rate (INT8 rate for the INT8 variants, FP32 "
        "otherwise); "
        "% floor = floor ms / measured ms."
        + (f" ({results['floor_note']}.)" if results.get("floor_note") else ""),
        "",
        *target_lines(results, tokens),
    ]
    for entry in results["models"]:
        shape = entry["shape"]
        lines += [
            f"## {entry['model']}:{entry['version']}",
            "",
            f"{shape['layers']} layers, hidden {shape['hidden']}, FFN {shape['intermediate']}, "
            f"{shape['heads']} heads, head {shape['head']}; {entry['samples']} texts per cell.",
        ]
        if entry["skipped_variants"]:
            lines.append(
                f"Not timed: {', '.join(entry['skipped_variants'])} (FP16 on a CPU without "
                "FP16 arithmetic; `--include-fp16` times them)."
            )
        for mode, table in entry["tables"].items():
            lines += [
                "",
                f"### {MODE_TITLE[mode].format(tokens=tokens)}",
                "",
                f"Median of {table['rows'][0]['rounds']} interleaved rounds, tokenizer "
                "included (`predictor bench`).",
                "",
                "| variant | batch | ms/sample | samples/s | size MB | peak RSS MB (+growth) "
                "| GFLOP/sample | floor ms | % floor |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for row in table["rows"]:
                mem = entry["memory"].get(row["variant"], {})
                peak = (
                    f"{mem['peak_rss_mb']:.0f} (+{mem['growth_mb']:.0f})"
                    if "peak_rss_mb" in mem
                    else "n/a"
                )
                lines.append(
                    f"| {row['variant']} | {row['batch_size']} | {row['ms_per_sample']:.2f} | "
                    f"{row['samples_per_s']:.1f} | {row['size_mb']:.0f} | {peak} | "
                    f"{row['gflops_per_sample']:.2f} | {row['floor_ms_per_sample']:.2f} | "
                    f"{100 * row['floor_fraction']:.0f}% |"
                )
        lines += [
            "",
            "Peak RSS: a fresh subprocess per variant imports torch, onnxruntime and "
            "transformers, loads the variant and answers one batch of "
            f"{max(r['batch_size'] for t in entry['tables'].values() for r in t['rows'])} x "
            f"{tokens} tokens; peak is VmHWM, growth is VmHWM minus VmRSS after the imports.",
            "",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(e, mode) for e in results["models"] for mode in e["tables"]]
    fig, axes = plt.subplots(2, len(panels), figsize=(4.5 * len(panels), 7), squeeze=False)
    for column, (entry, mode) in enumerate(panels):
        rows = entry["tables"][mode]["rows"]
        for variant in dict.fromkeys(r["variant"] for r in rows):
            mine = [r for r in rows if r["variant"] == variant]
            batches = [r["batch_size"] for r in mine]
            axes[0][column].plot(batches, [r["ms_per_sample"] for r in mine], "o-", label=variant)
            axes[1][column].plot(batches, [r["samples_per_s"] for r in mine], "o-", label=variant)
        axes[0][column].set_title(f"{entry['model']}, {mode}", fontsize=9)
        axes[0][column].set_ylabel("ms per sample")
        axes[1][column].set_ylabel("samples/s")
        for ax in (axes[0][column], axes[1][column]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch size")
            ax.grid(alpha=0.3)
        axes[0][column].set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(results: dict, out: Path) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    out.mkdir(parents=True, exist_ok=True)
    tokens = results["models"][0]["tables"].get("fixed", {}).get("fixed_tokens") or 64
    text = markdown(results, tokens)
    (out / "model_level.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "model_level.md").write_text(text)
    plot(results, out / "model_level.png")
    Console().print(Markdown(text))
    print(f"wrote {out / 'model_level.json'}, model_level.md and model_level.png")


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--variants", default=None, help="comma list (default: all CPU ones)")
    parser.add_argument("--include-fp16", action="store_true", help="also time FP16 on CPU")
    parser.add_argument("--modes", default="fixed,real", help="fixed (64 tokens), real (Sp1786)")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    parser.add_argument("--fixed-tokens", type=int, default=64)
    parser.add_argument("--texts", type=Path, default=TEXTS)
    parser.add_argument("--samples-large", type=int, default=64, help="texts per cell, base size")
    parser.add_argument("--samples-small", type=int, default=256, help="texts per cell, MiniLM")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--floor-json", type=Path, default=None, help="reuse a floor.py result")
    parser.add_argument("--quick", action="store_true", help="16/64 texts, 1 round, batches 1,8,16")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--report-from", type=Path, default=None, help="rewrite the report of a saved JSON"
    )
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        model, variant = args.memory_probe.split("=")
        probe = memory_probe(model, variant, int(args.batch_sizes), args.fixed_tokens)
        print(json.dumps(probe))
        return 0
    if args.report_from:
        # Re-reads a finished run; the floor is measured again unless --floor-json is given.
        results = json.loads(args.report_from.read_text())
        new_floor = json.loads(args.floor_json.read_text()) if args.floor_json else measure()
        apply_floor(results, new_floor)
        results["floor_note"] = (
            "floor re-measured after the timing run, "
            + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            + " (`--report-from`)"
        )
        write_report(results, args.out)
        return 0
    if args.quick:
        args.samples_large, args.samples_small, args.rounds = 16, 64, 1
        args.batch_sizes = "1,8,16"
    from modelserve_registry.bootstrap import ensure_default_models

    models = args.models.split(",")
    ensure_default_models(models)  # builds what is missing (roberta: ~10 min, once)
    started = time.perf_counter()
    floor = json.loads(args.floor_json.read_text()) if args.floor_json else measure(args.threads)
    results = {
        "machine": machine(),
        "command": "uv run python -m benchmarks.model_level " + " ".join(sys.argv[1:]),
        "floor": floor,
        "models": [bench_model(m, args) for m in models],
    }
    results["runtime_s"] = time.perf_counter() - started
    apply_floor(results, floor)
    write_report(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
