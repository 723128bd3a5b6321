import pytest

from benchmarks.accuracy import accuracy, macro_f1


def test_accuracy() -> None:
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75


def test_macro_f1_by_hand() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 0, 2]
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fn 1 -> 2/3
    assert macro_f1(labels, predicted, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_macro_f1_counts_a_missing_class_as_zero() -> None:
    assert macro_f1([0, 0, 1], [0, 0, 0], 3) == pytest.approx((0.8 + 0 + 0) / 3)
