"""`predictor bench`: the study's Tables 1 and 2 for any registry model, in-process (no HTTP):
per variant and batch size, latency per sample and throughput, plus size on disk.

Variants are measured interleaved, in shuffled order, over several rounds, and the median is
reported: this machine's speed drifts between minutes, and interleaving spreads the drift
over every variant alike."""

from __future__ import annotations

import csv
import json
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from modelserve_predictor.models import fetch
from modelserve_predictor.placement import Device
from modelserve_predictor.settings import ModelConfig
from modelserve_runtime.inference import TextModel
from modelserve_runtime.manifest import Variant
from modelserve_runtime.probes import PROBE_TEXTS
from modelserve_runtime.settings import StoreSettings
from modelserve_runtime.store import Registry

console = Console()


def load_texts(path: str | None, count: int, seed: int = 0) -> list[str]:
    if path is None:
        pool = [t for t in PROBE_TEXTS if len(t) < 400]
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            pool = [row["text"].strip() for row in csv.DictReader(handle) if row["text"].strip()]
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(count)]


def time_batches(
    model: TextModel, texts: list[str], batch_size: int, fixed_tokens: int | None
) -> float:
    """Seconds to run `texts` in consecutive batches (tokenizer included)."""
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        if fixed_tokens:
            model.run(model.tokenizer.encode_fixed(chunk, fixed_tokens))
        else:
            model.predict(chunk)
    return time.perf_counter() - started


@dataclass(frozen=True)
class BenchPlan:
    """What `predictor bench` measures (its CLI flags, and what benchmarks/model_level.py
    asks for per model and mode)."""

    model: str  # NAME[:VERSION|@ALIAS]
    out: Path
    variants: tuple[str, ...] = ()  # empty: every variant that runs on `device`
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    texts: str | None = None  # CSV with a `text` column (real lengths); None: probe texts
    fixed_tokens: int | None = None  # pad every text to this many tokens
    samples: int = 256
    rounds: int = 3
    threads: int | None = None
    device: str = "cpu"
    registry_uri: str | None = None


def run_bench(plan: BenchPlan) -> dict:
    settings = StoreSettings()
    registry = Registry.open(
        plan.registry_uri or settings.uri, s3_endpoint_url=settings.s3_endpoint_url
    )
    manifest = registry.manifest(plan.model)
    device = Device(plan.device)
    wanted = (
        [Variant(v) for v in plan.variants]
        if plan.variants
        else [v for v, m in manifest.variants.items() if plan.device in m.runtime.devices]
    )
    batch_sizes = list(plan.batch_sizes)
    texts = load_texts(plan.texts, plan.samples)
    models: dict[Variant, TextModel] = {}
    sizes: dict[Variant, int] = {}
    for variant in wanted:
        config = ModelConfig(ref=f"{manifest.name}:{manifest.version}", variant=variant)
        folder = fetch(registry, manifest, config, device, settings.cache_dir / "pulled")
        models[variant] = TextModel(folder, device=plan.device, threads=plan.threads)
        models[variant].predict(texts[:2])  # warm-up
        sizes[variant] = manifest.variant(variant).size_bytes
    timings: dict[tuple[Variant, int], list[float]] = {
        k: [] for k in ((v, b) for v in wanted for b in batch_sizes)
    }
    cells = list(timings)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=len(cells) * plan.rounds)
        for round_index in range(plan.rounds):
            random.Random(round_index).shuffle(cells)
            for variant, batch in cells:
                progress.update(
                    task, description=f"round {round_index + 1}: {variant.value} b{batch}"
                )
                timings[(variant, batch)].append(
                    time_batches(models[variant], texts, batch, plan.fixed_tokens)
                )
                progress.advance(task)
    rows = []
    for (variant, batch), seconds in sorted(
        timings.items(), key=lambda kv: (wanted.index(kv[0][0]), kv[0][1])
    ):
        median = statistics.median(seconds)
        rows.append(
            {
                "variant": variant.value,
                "batch_size": batch,
                "ms_per_sample": 1000 * median / len(texts),
                "samples_per_s": len(texts) / median,
                "size_mb": sizes[variant] / 1e6,
                "rounds": len(seconds),
            }
        )
    result = {
        "model": manifest.name,
        "version": manifest.version,
        "device": plan.device,
        "samples": len(texts),
        "texts": plan.texts or "built-in probe texts",
        "fixed_tokens": plan.fixed_tokens,
        "threads": plan.threads,
        "rows": rows,
    }
    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    (out / "bench.md").write_text(markdown(result))
    table = Table(title=f"{manifest.name}:{manifest.version} on {plan.device}")
    for column in ("variant", "batch", "ms/sample", "samples/s", "size MB"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["variant"],
            str(row["batch_size"]),
            f"{row['ms_per_sample']:.2f}",
            f"{row['samples_per_s']:.1f}",
            f"{row['size_mb']:.1f}",
        )
    console.print(table)
    console.print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return result


def markdown(result: dict) -> str:
    fixed = result["fixed_tokens"]
    padding = f"padded to {fixed} tokens" if fixed else "padded per batch"
    lines = [
        f"# {result['model']}:{result['version']} on {result['device']}",
        "",
        f"{result['samples']} texts ({result['texts']}), "
        f"{padding}"
        f"; median of {result['rows'][0]['rounds']} interleaved rounds.",
        "",
        "| variant | batch | ms/sample | samples/s | size (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['variant']} | {row['batch_size']} | {row['ms_per_sample']:.2f} | "
            f"{row['samples_per_s']:.1f} | {row['size_mb']:.1f} |"
        )
    return "\n".join(lines) + "\n"
