"""`registry export`: export every variant, check each against the FP32 reference, and push
the ones that pass as one new version."""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from modelserve_registry.errors import ValidationFailed
from modelserve_registry.evaldata import PROBE_TEXTS, LabelledTexts
from modelserve_registry.export import ExportResult, export_variants, runtime_for
from modelserve_registry.validation import BATCH_DEPENDENT, judge, with_one_text_per_call
from modelserve_runtime.inference import TOKENIZER_DIR, TextModel, predict_sorted
from modelserve_runtime.manifest import (
    FileEntry,
    ModelManifest,
    Variant,
    VariantManifest,
)
from modelserve_runtime.references import validate_name
from modelserve_runtime.store import PULLED_MANIFEST, Registry, sha256_file
from modelserve_runtime.tokenization import TextTokenizer
from modelserve_runtime.torch_graph import ExportableModel

Step = Callable[[str], None]


class _ReferencePredictor:
    """The in-memory FP32 reference behind the same tokenisation as a pulled variant."""

    def __init__(self, model: ExportableModel, tokenizer: TextTokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer

    def predict(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode(texts)
        with torch.inference_mode():
            ids = torch.from_numpy(encoded.input_ids)
            mask = torch.from_numpy(encoded.attention_mask)
            return self.model(ids, mask).numpy()


def _local_entries(folder: Path, prefix: str = "") -> list[FileEntry]:
    return [
        FileEntry(
            path=prefix + p.relative_to(folder).as_posix(),
            sha256=sha256_file(p),
            size=p.stat().st_size,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != PULLED_MANIFEST
    ]


def _variant_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.name != PULLED_MANIFEST
        and p.relative_to(folder).parts[0] != TOKENIZER_DIR
    )


def _draft(
    name: str,
    result: ExportResult,
    tokenizer: list[FileEntry],
    variants: dict[Variant, VariantManifest],
    source: Path,
) -> ModelManifest:
    spec = result.spec
    return ModelManifest(
        name=name,
        version=0,
        created_at=dt.datetime.now(dt.UTC),
        task=spec.task,
        labels=spec.labels,
        embedding_dim=result.output_dim if spec.task == "embedding" else None,
        max_sequence_length=result.max_sequence_length,
        graph=result.reference.spec,
        tokenizer_files=tokenizer,
        variants=variants,
        synthetic=spec.synthetic,
        description=spec.description,
        source={"folder": source.name},
    )


def stage_variant(
    name: str,
    result: ExportResult,
    variant: Variant,
    tokenizer_entries: list[FileEntry],
    source: Path,
) -> VariantManifest:
    """Make an exported variant's folder loadable by TextModel as if it had been pulled (the
    draft manifest written beside its files); returns its manifest, not yet validated."""
    folder = result.folders[variant]
    entries = [e for e in _local_entries(folder) if not e.path.startswith(TOKENIZER_DIR)]
    runtime = runtime_for(result, variant)
    provisional = VariantManifest(variant=variant, files=entries, runtime=runtime)
    draft = _draft(name, result, tokenizer_entries, {variant: provisional}, source)
    (folder / PULLED_MANIFEST).write_text(draft.model_dump_json())
    return provisional


def export_and_push(
    registry: Registry,
    source: Path,
    name: str,
    variants: list[Variant],
    *,
    eval_data: LabelledTexts | None = None,
    force: bool = False,
    scratch: Path | None = None,
    step: Step = lambda _: None,
) -> ModelManifest:
    validate_name(name)
    if scratch:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-", dir=scratch) as tmp:
        work = Path(tmp)
        # The reference runs in memory; pytorch-fp32 is exported (and checked) only when asked.
        wanted = list(dict.fromkeys(variants))
        calibration = eval_data.texts if eval_data else None
        result = export_variants(source, work, wanted, step, calibration)
        tokenizer_entries = _local_entries(work / TOKENIZER_DIR, f"{TOKENIZER_DIR}/")
        texts = (eval_data.texts if eval_data else []) + PROBE_TEXTS
        labels = (
            eval_data.labels if eval_data and result.spec.task == "text-classification" else None
        )

        step(f"running the FP32 reference on {len(texts)} texts")
        tokenizer = TextTokenizer(work / TOKENIZER_DIR, result.max_sequence_length)
        reference_outputs = predict_sorted(_ReferencePredictor(result.reference, tokenizer), texts)
        manifests: dict[Variant, VariantManifest] = {}
        for variant in wanted:
            folder = result.folders[variant]
            provisional = stage_variant(name, result, variant, tokenizer_entries, source)
            step(f"validating {variant.value} on {len(texts)} texts")
            model = TextModel(folder, device="cpu")
            outputs = predict_sorted(model, texts)

            check = functools.partial(
                judge,
                variant,
                result.spec.task,
                reference_outputs,
                labels=labels,
                n_classes=len(result.spec.labels),
            )
            validation = check(outputs)
            if variant in BATCH_DEPENDENT:
                step(f"validating {variant.value} one text per call")
                single = check(predict_sorted(model, texts, batch_size=1))
                validation = with_one_text_per_call(validation, single)
            manifests[variant] = provisional.model_copy(update={"validation": validation})
            del model

        failed = {
            v: m.validation
            for v, m in manifests.items()
            if m.validation is not None and not m.validation.passed
        }
        if failed and not force:
            detail = "; ".join(f"{v.value}: {', '.join(val.failures)}" for v, val in failed.items())
            raise ValidationFailed(
                f"{name}: refused, outside tolerance: {detail} (--force pushes anyway)"
            )

        step("pushing blobs")
        registry.put_folder(work / TOKENIZER_DIR, f"{TOKENIZER_DIR}/")
        for variant in wanted:
            folder = result.folders[variant]
            for path in _variant_files(folder):
                registry.put_file(path, path.relative_to(folder).as_posix())
        return registry.publish(_draft(name, result, tokenizer_entries, manifests, source))
