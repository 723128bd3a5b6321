"""Numerical parity of a variant against the FP32 PyTorch reference, and task accuracy.
Pure functions over arrays; the tolerances per precision live here and nowhere else."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelserve_runtime.manifest import Task, Tolerance, Validation, Variant

# Logits of a classifier / components of an L2-normalised embedding. FP32 graphs differ only
# by operator order; fused kernels a little more; FP16 keeps ~3 significant digits; INT8
# dynamic quantization moves logits visibly but must keep decisions and accuracy.
CLASSIFIER_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs_diff=1e-3, min_argmax_agreement=0.995, max_accuracy_drop=0.001),
    "fused": Tolerance(max_abs_diff=1e-2, min_argmax_agreement=0.99, max_accuracy_drop=0.002),
    "fp16": Tolerance(max_abs_diff=5e-2, min_argmax_agreement=0.98, max_accuracy_drop=0.005),
    "int8": Tolerance(max_abs_diff=1.0, min_argmax_agreement=0.9, max_accuracy_drop=0.01),
}
EMBEDDING_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs_diff=1e-4, min_cosine=0.99999),
    "fused": Tolerance(max_abs_diff=1e-3, min_cosine=0.9999),
    "fp16": Tolerance(max_abs_diff=5e-3, min_cosine=0.999),
    "int8": Tolerance(max_abs_diff=0.1, min_cosine=0.93),
}


# Dynamic quantization computes activation scales per batch, so a text's INT8 outputs depend
# on what it is batched with: 5% of sentiment-minilm's labels on Sp1786 changed between batches
# of 32 and one text per call (benchmarks/results/accuracy). A server answers single texts at
# low load, so these variants are also checked one text per call.
BATCH_DEPENDENT = frozenset({Variant.ONNX_INT8})


def tolerance_for(variant: Variant, task: Task) -> Tolerance:
    table = CLASSIFIER_TOLERANCES if task == "text-classification" else EMBEDDING_TOLERANCES
    if variant is Variant.ONNX_OPTIMIZED:
        return table["fused"]
    return table[variant.precision]


def accuracy(labels: Sequence[int], predicted: Sequence[int]) -> float:
    labels_array, predicted_array = np.asarray(labels), np.asarray(predicted)
    if labels_array.size == 0:
        raise ValueError("accuracy of an empty set")
    return float((labels_array == predicted_array).mean())


def macro_f1(labels: Sequence[int], predicted: Sequence[int], n_classes: int) -> float:
    """Unweighted mean of per-class F1; a class never predicted nor present scores 0."""
    labels_array, predicted_array = np.asarray(labels), np.asarray(predicted)
    scores = []
    for cls in range(n_classes):
        tp = int(((predicted_array == cls) & (labels_array == cls)).sum())
        fp = int(((predicted_array == cls) & (labels_array != cls)).sum())
        fn = int(((predicted_array != cls) & (labels_array == cls)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def decisive_agreement(reference: np.ndarray, candidate: np.ndarray, noise: float) -> float:
    """Argmax agreement over the rows whose reference decision is clearer than `noise` (top-1
    minus top-2 logit): a flip inside the tolerance band is rounding, not a regression."""
    ordered = np.sort(reference, axis=1)
    margins = (
        ordered[:, -1] - ordered[:, -2]
        if reference.shape[1] > 1
        else np.full(len(reference), np.inf)
    )
    clear = margins > noise
    if not clear.any():
        return 1.0
    return float((reference[clear].argmax(1) == candidate[clear].argmax(1)).mean())


def judge(
    variant: Variant,
    task: Task,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: Sequence[int] | None = None,
    n_classes: int = 0,
) -> Validation:
    """Compare `candidate` with `reference` row by row. With `labels` (the first
    len(labels) rows are the labelled eval set) also score accuracy and macro-F1 for both and
    bound the accuracy drop."""
    if reference.shape != candidate.shape:
        return Validation(
            samples=len(reference),
            max_abs_diff=float("inf"),
            mean_abs_diff=float("inf"),
            tolerance=tolerance_for(variant, task),
            passed=False,
            failures=[f"output shape {candidate.shape} differs from reference {reference.shape}"],
        )
    tolerance = tolerance_for(variant, task)
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    failures: list[str] = []
    max_diff = float(diff.max()) if diff.size else 0.0
    # Tolerances are per unit of output scale: logits of a few units keep them as written,
    # a model whose logits reach 20 may drift 20x as far in absolute terms.
    scale = max(1.0, float(np.abs(reference).max())) if reference.size else 1.0
    allowed = tolerance.max_abs_diff * scale
    if not np.isfinite(candidate).all():
        failures.append("non-finite outputs")
    if max_diff > allowed:
        failures.append(f"max |diff| {max_diff:.3g} > {allowed:.3g}")
    agreement = decisive = cosine = acc = f1 = None
    if task == "text-classification":
        agreement = float((reference.argmax(1) == candidate.argmax(1)).mean())
        decisive = decisive_agreement(reference, candidate, noise=2 * allowed)
        if tolerance.min_argmax_agreement and decisive < tolerance.min_argmax_agreement:
            failures.append(f"argmax agreement {decisive:.4f} < {tolerance.min_argmax_agreement}")
    else:
        cosine = float(cosine_rows(reference, candidate).min())
        if tolerance.min_cosine and cosine < tolerance.min_cosine:
            failures.append(f"min cosine {cosine:.5f} < {tolerance.min_cosine}")
    eval_samples = len(labels) if labels is not None else 0
    if labels is not None and eval_samples and task == "text-classification":
        predicted = candidate[:eval_samples].argmax(1)
        acc = accuracy(labels, predicted)
        f1 = macro_f1(labels, predicted, n_classes)
        reference_acc = accuracy(labels, reference[:eval_samples].argmax(1))
        drop = reference_acc - acc
        if tolerance.max_accuracy_drop is not None and drop > tolerance.max_accuracy_drop:
            failures.append(f"accuracy drop {drop:.4f} > {tolerance.max_accuracy_drop}")
    return Validation(
        samples=len(reference),
        max_abs_diff=max_diff,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        argmax_agreement=agreement,
        decisive_agreement=decisive,
        min_cosine=cosine,
        eval_samples=eval_samples,
        accuracy=acc,
        macro_f1=f1,
        tolerance=tolerance,
        passed=not failures,
        failures=failures,
    )


def with_one_text_per_call(batched: Validation, single: Validation) -> Validation:
    """The batched check, carrying the one-text-per-call check; passing needs both."""
    return batched.model_copy(
        update={
            "one_text_per_call": single,
            "passed": batched.passed and single.passed,
            "failures": [*batched.failures, *(f"one text per call: {f}" for f in single.failures)],
        }
    )
