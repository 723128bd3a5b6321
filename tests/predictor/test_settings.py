from pathlib import Path

import pytest

from modelserve_predictor.errors import ConfigError
from modelserve_predictor.settings import RESOLVED_ENV, ModelConfig, load_settings
from modelserve_runtime.manifest import Variant


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "PREDICTOR_CONFIG_FILE",
        "PREDICTOR_PORT",
        "PREDICTOR_MODELS",
        RESOLVED_ENV,
        "PREDICTOR_WORKERS",
    ):
        monkeypatch.delenv(key, raising=False)


def test_defaults_serve_the_two_real_models() -> None:
    settings = load_settings()
    assert [m.name for m in settings.models] == ["sentiment-minilm", "minilm-embed"]
    assert settings.port == 3000 and settings.host == "127.0.0.1" and settings.auth_tokens == []


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "predictor.yaml"
    config.write_text(
        "port: 4000\nworkers: 3\nmodels:\n  - ref: a@staging\n"
        "    variant: onnx-fp32\n    max_batch_size: 8\n"
    )
    monkeypatch.setenv("PREDICTOR_CONFIG_FILE", str(config))
    from_file = load_settings()
    assert from_file.port == 4000 and from_file.workers == 3
    assert from_file.models == [
        ModelConfig(ref="a@staging", variant=Variant.ONNX_FP32, max_batch_size=8)
    ]
    monkeypatch.setenv("PREDICTOR_PORT", "5000")
    monkeypatch.setenv("PREDICTOR_MODELS", "b:2=onnx-int8,c")
    from_env = load_settings()
    assert from_env.port == 5000 and from_env.workers == 3
    assert [(m.ref, m.variant) for m in from_env.models] == [
        ("b:2", Variant.ONNX_INT8),
        ("c", None),
    ]
    assert load_settings({"port": 6000}).port == 6000


def test_toml_config_and_resolved_settings_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "predictor.toml"
    config.write_text('auth_tokens = ["t0p"]\n[[models]]\nref = "x"\nmax_queue = 4\n')
    monkeypatch.setenv("PREDICTOR_CONFIG_FILE", str(config))
    settings = load_settings()
    assert settings.models[0].max_queue == 4 and settings.tokens() == {"t0p"}
    assert "t0p" not in repr(settings)  # secrets never show up in logs
    monkeypatch.setenv(RESOLVED_ENV, settings.to_env())
    monkeypatch.setenv("PREDICTOR_PORT", "1")  # ignored: workers use what the CLI resolved
    assert load_settings() == settings


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("port: [1", "not valid"),
        ("- a\n- b\n", "mapping"),
        ("port: 0\n", "invalid setting port"),
        ("models:\n  - ref: ../x\n", "invalid setting models"),
        ("models:\n  - ref: a\n    variant: onnx-int4\n", "invalid setting models"),
    ],
)
def test_bad_config_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    monkeypatch.setenv("PREDICTOR_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_model_spec_parsing() -> None:
    assert ModelConfig.parse("m@production=onnx-fp16").variant is Variant.ONNX_FP16
    with pytest.raises(ConfigError, match="bad model spec"):
        ModelConfig.parse("m=onnx-int4")
    with pytest.raises(ConfigError):
        ModelConfig.parse("Bad Name")
