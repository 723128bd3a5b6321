"""Tiny real models (random weights, real MiniLM WordPiece tokenizer) so that every export
path runs for real in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification, BertModel

from modelserve_registry.head import LABELS, minilm_folder
from modelserve_runtime.store import Registry

TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
]


TINY_SHAPE = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}


def _tiny_config(**overrides) -> BertConfig:
    return BertConfig(vocab_size=30522, **{**TINY_SHAPE, **overrides})


def copy_tokenizer(folder: Path) -> None:
    for name in TOKENIZER_FILES:
        shutil.copyfile(minilm_folder() / name, folder / name)


def make_classifier(folder: Path, seed: int = 0, **shape) -> Path:
    """A random BERT classifier; `shape` overrides TINY_SHAPE (hidden_size=...)."""
    torch.manual_seed(seed)
    config = _tiny_config(
        **shape,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)  # logits of a few units, like a trained head
    model.save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


def make_embedder(folder: Path, seed: int = 1) -> Path:
    torch.manual_seed(seed)
    BertModel(_tiny_config()).save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


def make_head_classifier(folder: Path, seed: int = 2) -> Path:
    """Encoder + mean pooling + a linear head file: the recipe of sentiment-minilm."""
    make_embedder(folder, seed)
    torch.manual_seed(seed)
    save_file(
        {"weight": torch.randn(3, 32) * 3, "bias": torch.zeros(3)}, folder / "head.safetensors"
    )
    (folder / "modelserve.json").write_text(
        json.dumps(
            {
                "task": "text-classification",
                "labels": LABELS,
                "normalize": True,
                "head": "head.safetensors",
                "max_sequence_length": 64,
            }
        )
    )
    return folder


@pytest.fixture(scope="session")
def classifier_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_classifier(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="session")
def embedder_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_embedder(tmp_path_factory.mktemp("tiny-embedder"))


@pytest.fixture(scope="session")
def head_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_head_classifier(tmp_path_factory.mktemp("tiny-head"))


@pytest.fixture(scope="session")
def exported_store(tmp_path_factory: pytest.TempPathFactory, classifier_source: Path) -> Path:
    """A registry holding one real export of every variant; tests copy it before changing it."""
    from modelserve_registry.pipeline import export_and_push
    from modelserve_runtime.manifest import Variant

    root = tmp_path_factory.mktemp("exported") / "registry"
    export_and_push(Registry.open(str(root)), classifier_source, "tiny", list(Variant))
    return root


@pytest.fixture
def store_copy(exported_store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "registry"
    shutil.copytree(exported_store, target)
    return target
