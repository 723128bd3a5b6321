import json

import numpy as np
from safetensors.numpy import load_file

from modelserve_registry.head import HEAD_CARD, HEAD_FILE, fit_logistic
from modelserve_registry.validation import accuracy


def test_fit_logistic_separates_separable_classes_deterministically() -> None:
    rng = np.random.default_rng(0)
    centers = np.eye(3, 8) * 4
    labels = rng.integers(0, 3, size=300)
    features = centers[labels] + rng.normal(scale=0.5, size=(300, 8))
    weight, bias = fit_logistic(features, labels, 3)
    assert weight.shape == (3, 8) and bias.shape == (3,)
    assert accuracy(labels, (features @ weight.T + bias).argmax(1)) > 0.99
    again, _ = fit_logistic(features, labels, 3)
    np.testing.assert_allclose(weight, again, rtol=1e-5, atol=1e-6)


def test_the_committed_head_is_small_and_documented() -> None:
    tensors = load_file(HEAD_FILE)
    assert tensors["weight"].shape == (3, 384) and tensors["bias"].shape == (3,)
    assert HEAD_FILE.stat().st_size < 10_000
    card = json.loads(HEAD_CARD.read_text())
    assert card["labels"] == ["negative", "neutral", "positive"]
    assert card["accuracy"] > 0.6  # the study's RoBERTa scored 0.42 on the same split
