"""Accuracy and macro-F1 of every variant of sentiment-minilm on the Sp1786 validation split,
next to the study's figures on the same data set, the loss against the FP32 reference, and the
values the registry stored in each manifest at export time.

Predictions come from the registry's own inference code (`TextModel`, length-sorted batches
of 32, each padded to its longest text, truncated to the model maximum), the code the
predictor serves with.

    uv run python -m benchmarks.accuracy
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from modelserve_registry.validation import accuracy, macro_f1

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "accuracy"
TEXTS = ROOT.parent / "shared" / "data" / "sp1786" / "val.csv"
STUDY = {"accuracy": 0.42, "macro_f1": 0.32, "source": "arXiv 2604.20420, same data set"}
BATCH_CHECK = ("onnx-fp32", "onnx-int8")
MAX_LOSS_PP = 0.5  # the target: no variant loses more than half a percentage point


def evaluate(model: str, texts_path: Path, batch_size: int) -> dict:
    import numpy as np

    from modelserve_predictor.models import fetch
    from modelserve_predictor.placement import Device
    from modelserve_predictor.settings import ModelConfig
    from modelserve_registry.bootstrap import ensure_default_models
    from modelserve_registry.evaldata import read_eval_csv
    from modelserve_registry.settings import RegistrySettings
    from modelserve_runtime.inference import TextModel, predict_sorted
    from modelserve_runtime.store import Registry

    ensure_default_models([model])
    settings = RegistrySettings()
    registry = Registry.open(settings.uri, s3_endpoint_url=settings.s3_endpoint_url)
    manifest = registry.manifest(model)
    data = read_eval_csv(texts_path, manifest.labels)
    rows = []
    alone: list[dict] = []
    for variant, entry in manifest.variants.items():
        if "cpu" not in entry.runtime.devices:
            continue
        folder = fetch(
            registry,
            manifest,
            ModelConfig(ref=f"{manifest.name}:{manifest.version}", variant=variant),
            Device("cpu"),
            settings.cache_dir / "pulled",
        )
        started = time.perf_counter()
        loaded = TextModel(folder, device="cpu")
        logits = predict_sorted(loaded, data.texts, batch_size)
        predicted = [int(i) for i in np.argmax(logits, axis=1)]
        if variant.value in BATCH_CHECK:
            # Dynamic quantization scales activations per tensor, over the whole padded
            # batch: an INT8 answer can depend on the texts it is batched with.
            single = [int(i) for i in np.argmax(predict_sorted(loaded, data.texts, 1), axis=1)]
            alone.append(
                {
                    "variant": variant.value,
                    "accuracy_batch_1": accuracy(data.labels, single),
                    f"accuracy_batch_{batch_size}": accuracy(data.labels, predicted),
                    "agreement_batch_1_vs_batched": accuracy(single, predicted),
                }
            )
        stored = entry.validation
        rows.append(
            {
                "variant": variant.value,
                "accuracy": accuracy(data.labels, predicted),
                "macro_f1": macro_f1(data.labels, predicted, len(manifest.labels)),
                "stored_accuracy": stored.accuracy if stored else None,
                "stored_macro_f1": stored.macro_f1 if stored else None,
                "stored_eval_samples": stored.eval_samples if stored else None,
                "seconds": time.perf_counter() - started,
                "predicted": predicted,
            }
        )
        print(
            f"{variant.value}: accuracy {rows[-1]['accuracy']:.4f} in {rows[-1]['seconds']:.0f} s"
        )
    reference = next(r for r in rows if r["variant"] == "pytorch-fp32")
    fp32_predicted = reference["predicted"]
    for row in rows:
        row["accuracy_loss_pp"] = 100 * (reference["accuracy"] - row["accuracy"])
        row["macro_f1_loss_pp"] = 100 * (reference["macro_f1"] - row["macro_f1"])
        row["agreement_with_fp32"] = accuracy(fp32_predicted, row["predicted"])
        row["meets_target"] = row["accuracy_loss_pp"] <= MAX_LOSS_PP
        row["matches_stored"] = row["stored_accuracy"] is not None and (
            abs(row["stored_accuracy"] - row["accuracy"]) < 1e-9
        )
    for row in rows:
        del row["predicted"]
    counts = [data.labels.count(c) for c in range(len(manifest.labels))]
    return {
        "model": f"{manifest.name}:{manifest.version}",
        "data": "../" + str(texts_path.relative_to(ROOT.parent)),
        "samples": len(data.texts),
        "class_counts": dict(zip(manifest.labels, counts, strict=True)),
        "majority_class_accuracy": max(counts) / len(data.texts),
        "batch_size": batch_size,
        "study": STUDY,
        "target_max_loss_pp": MAX_LOSS_PP,
        "rows": rows,
        "batch_dependence": alone,
    }


def markdown(result: dict) -> str:
    study = result["study"]
    lines = [
        f"# Accuracy of every variant of {result['model']} on Sp1786 validation",
        "",
        f"{result['samples']} texts (`{result['data']}`, classes {result['class_counts']}; "
        f"always answering the majority class scores {result['majority_class_accuracy']:.3f}). "
        f"CPU, `TextModel` in length-sorted batches of {result['batch_size']}. "
        f"{result['date']}; `{result['command']}`.",
        "",
        f"The study ({study['source']}): accuracy {study['accuracy']:.2f}, "
        f"macro-F1 {study['macro_f1']:.2f}. Target: no variant loses more than "
        f"{result['target_max_loss_pp']} percentage points of accuracy against pytorch-fp32.",
        "",
        "| variant | accuracy | macro-F1 | vs study acc. | loss vs FP32 (pp acc. / F1) "
        "| agreement with FP32 | stored in manifest (acc. / F1) | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        stored = (
            f"{row['stored_accuracy']:.4f} / {row['stored_macro_f1']:.4f}"
            if row["stored_accuracy"] is not None
            else "none"
        )
        lines.append(
            f"| {row['variant']} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | "
            f"{row['accuracy'] - study['accuracy']:+.3f} | "
            f"{row['accuracy_loss_pp']:+.2f} / {row['macro_f1_loss_pp']:+.2f} | "
            f"{row['agreement_with_fp32']:.4f} | {stored} | "
            f"{'met' if row['meets_target'] else 'MISSED'} |"
        )
    lines += [
        "",
        "A negative loss is a gain. `stored in manifest` is what `registry export` measured "
        "on the same split when the variant was built; "
        + (
            "every recomputed value matches it exactly."
            if all(r["matches_stored"] for r in result["rows"])
            else "rows where the recomputed value differs are named in the JSON "
            "(`matches_stored`). The registry scored 5,230 texts (this split plus its 25 probe "
            "texts) sorted together, so its batches held other neighbours."
        ),
    ]
    if result["batch_dependence"]:
        key = f"accuracy_batch_{result['batch_size']}"
        lines += [
            "",
            "## Does the answer depend on the batch?",
            "",
            "Dynamic quantization scales each activation tensor by its range over the whole "
            "padded batch, so an INT8 label can change with the texts it is batched with. Each "
            "text alone (batch 1, no padding) against the length-sorted batches above:",
            "",
            f"| variant | accuracy, batch 1 | loss vs FP32, batch 1 (pp) "
            f"| accuracy, batch {result['batch_size']} | same label in both |",
            "|---|---:|---:|---:|---:|",
        ]
        reference = next(r for r in result["rows"] if r["variant"] == "pytorch-fp32")
        for row in result["batch_dependence"]:
            loss = 100 * (reference["accuracy"] - row["accuracy_batch_1"])
            lines.append(
                f"| {row['variant']} | {row['accuracy_batch_1']:.4f} | {loss:+.2f} | "
                f"{row[key]:.4f} | {row['agreement_batch_1_vs_batched']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sentiment-minilm")
    parser.add_argument("--texts", type=Path, default=TEXTS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--report-from", type=Path, default=None, help="rewrite the Markdown of a saved JSON"
    )
    args = parser.parse_args(argv)
    if args.report_from:
        result = json.loads(args.report_from.read_text())
        (args.out / "accuracy.md").write_text(markdown(result))
        print(markdown(result))
        return 0
    if not args.texts.exists():
        print(f"skipped: {args.texts} is absent (the Sp1786 split lives in ../shared/data)")
        return 0
    result = evaluate(args.model, args.texts.resolve(), args.batch_size)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["machine"] = f"{platform.machine()} CPU, python {platform.python_version()}"
    result["command"] = "uv run python -m benchmarks.accuracy " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "accuracy.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
