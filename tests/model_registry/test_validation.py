import numpy as np
import pytest

from modelserve_registry.validation import (
    accuracy,
    judge,
    macro_f1,
    tolerance_for,
    with_one_text_per_call,
)
from modelserve_runtime.manifest import Variant


def test_macro_f1_matches_a_hand_computed_value() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 2, 0]
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: tp1 fp0 fn1 -> 2/3
    assert macro_f1(labels, predicted, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert accuracy(labels, predicted) == pytest.approx(4 / 6)


def test_macro_f1_counts_a_never_predicted_class_as_zero() -> None:
    assert macro_f1([0, 1, 2], [0, 1, 1], 3) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_tolerances_get_looser_with_precision() -> None:
    task = "text-classification"
    fp32 = tolerance_for(Variant.ONNX_FP32, task).max_abs_diff
    fused = tolerance_for(Variant.ONNX_OPTIMIZED, task).max_abs_diff
    fp16 = tolerance_for(Variant.ONNX_FP16, task).max_abs_diff
    int8 = tolerance_for(Variant.ONNX_INT8, task).max_abs_diff
    assert fp32 < fused < fp16 < int8
    assert tolerance_for(Variant.PYTORCH_FP16, task) == tolerance_for(Variant.ONNX_FP16, task)


def test_judge_passes_close_outputs_and_reports_figures() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50, 3)) * 3
    candidate = reference + 1e-5
    result = judge(
        Variant.ONNX_FP32,
        "text-classification",
        reference,
        candidate,
        labels=list(reference[:20].argmax(1)),
        n_classes=3,
    )
    assert result.passed, result.failures
    assert result.max_abs_diff == pytest.approx(1e-5)
    assert result.argmax_agreement == 1.0
    assert result.accuracy == 1.0 and result.eval_samples == 20


def test_judge_refuses_drift_flips_and_accuracy_loss() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(100, 3))
    candidate = reference.copy()
    candidate[:30] = candidate[:30, ::-1]  # flips decisions on 30 rows
    labels = list(reference[:50].argmax(1))
    result = judge(Variant.ONNX_FP16, "text-classification", reference, candidate, labels, 3)
    assert not result.passed
    assert any("max |diff|" in f for f in result.failures)
    assert any("argmax agreement" in f for f in result.failures)
    assert any("accuracy drop" in f for f in result.failures)


def test_judge_embeddings_by_cosine() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(10, 8))
    rotated = reference.copy()
    rotated[0] = -rotated[0]
    assert judge(Variant.ONNX_INT8, "embedding", reference, reference + 1e-3).passed
    failed = judge(Variant.ONNX_INT8, "embedding", reference, rotated)
    assert not failed.passed and failed.min_cosine == pytest.approx(-1.0)


def test_judge_refuses_non_finite_and_misshapen_outputs() -> None:
    reference = np.ones((4, 3))
    broken = reference.copy()
    broken[0, 0] = np.nan
    assert (
        "non-finite outputs"
        in judge(Variant.ONNX_FP32, "text-classification", reference, broken).failures
    )
    assert not judge(Variant.ONNX_FP32, "text-classification", reference, np.ones((4, 2))).passed


def test_flips_inside_the_tolerance_band_are_rounding_not_regressions() -> None:
    reference = np.array([[1.0, 1.01, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    candidate = np.array([[1.01, 1.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    result = judge(Variant.ONNX_FP16, "text-classification", reference, candidate)
    assert result.argmax_agreement == pytest.approx(2 / 3)
    assert result.decisive_agreement == 1.0 and result.passed


def test_the_diff_tolerance_scales_with_large_logits() -> None:
    reference = np.array([[20.0, -20.0, 0.0]])
    assert judge(Variant.ONNX_FP16, "text-classification", reference, reference + 0.5).passed
    assert not judge(Variant.ONNX_FP16, "text-classification", reference, reference + 1.5).passed


def test_a_failure_one_text_per_call_fails_the_variant() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(60, 3)) * 3
    batched = judge(Variant.ONNX_INT8, "text-classification", reference, reference + 0.01)
    flipped = reference.copy()
    flipped[:20] = flipped[:20, ::-1]
    single = judge(Variant.ONNX_INT8, "text-classification", reference, flipped)
    assert batched.passed and not single.passed
    merged = with_one_text_per_call(batched, single)
    assert not merged.passed
    assert merged.one_text_per_call == single
    assert merged.failures and all(f.startswith("one text per call: ") for f in merged.failures)
    assert with_one_text_per_call(batched, batched).passed
