"""Predictor settings: flags > PREDICTOR_* environment variables > a YAML/TOML config file
(PREDICTOR_CONFIG_FILE) > defaults. The resolved settings travel to BentoML's workers as
JSON in one environment variable, so every worker sees exactly what the CLI resolved."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from modelserve_predictor.errors import ConfigError
from modelserve_runtime.errors import InvalidReference
from modelserve_runtime.manifest import Variant
from modelserve_runtime.references import ModelReference

RESOLVED_ENV = "PREDICTOR_RESOLVED_SETTINGS"
# The two real models. roberta-base-synthetic (the study's architecture, random weights) is
# for benchmarks: `registry bootstrap --all`, then `--model roberta-base-synthetic`.
DEFAULT_MODELS = [
    "sentiment-minilm@production",
    "minilm-embed@production",
]


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="NAME[:VERSION|@ALIAS] in the registry")
    variant: Variant | None = Field(
        default=None,
        description="None: the best for the device (onnx-int8 on CPU, onnx-fp16 on GPU)",
    )
    max_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="None: 4 on CPU (where a wider batch costs more per text), 32 on GPU",
    )
    max_batch_tokens: int = Field(default=4096, ge=16)
    max_queue: int = Field(default=256, ge=1, description="hard cap on texts waiting (429)")
    max_queue_wait_ms: float | None = Field(
        default=50.0,
        gt=0,
        description="the longest wait ahead of a request that admission accepts (429 past "
        "it, whatever the request's deadline): under overload the admitted keep their "
        "latency; None: the deadline alone decides",
    )
    overload_queue_wait_ms: float | None = Field(
        default=None,
        gt=0,
        description="the wait budget while more than a fifth of the recent requests were "
        "refused (overload, not a bunch of arrivals): tighter, so that under overload the "
        "admitted keep their latency and the rest are refused fast; None: 40% of "
        "max_queue_wait_ms (20 of the default 50)",
    )
    deadline_ms: float = Field(
        default=2000.0,
        gt=0,
        description="a request's default deadline: refused at once (429) when the expected "
        "wait exceeds it, dropped (503) when it passes while queued; clients may ask for less "
        "(OIP `timeout` parameter, gRPC deadline)",
    )
    max_padding_ratio: float | None = Field(
        default=None,
        ge=1.0,
        description="padded/real tokens allowed in a batch; None: 1.25 on CPU (where padding "
        "costs more than batching saves), 4 on GPU",
    )
    compute_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="niceness of the thread that runs this model's batches: the event loop "
        "that reads requests, refuses overload and writes answers runs first, so refusals "
        "stay fast and answers leave when they are ready while compute takes what is left",
    )
    max_latency_ms: float = Field(
        default=0.0, ge=0, description="extra wait for a fuller batch; 0 = run when free"
    )
    inline_when_idle: bool = Field(
        default=True,
        description="a one-text request to an idle model (nothing queued or running) runs on "
        "the event loop, without the hops to the model's thread and back; anything that "
        "arrives meanwhile queues for the thread as usual",
    )
    swap: Literal["auto", "beside", "drain"] = Field(
        default="auto",
        description="how a new version replaces the serving one: beside (load and warm the new "
        "copy next to the old, switch, free the old; no failed request), drain (free the old "
        "first, 503 meanwhile: for models two copies of which do not fit), auto (beside when "
        "the device's free memory holds a second copy)",
    )

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, value: str) -> str:
        try:
            ModelReference.parse(value)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def name(self) -> str:
        return ModelReference.parse(self.ref).name

    @classmethod
    def parse(cls, text: str) -> ModelConfig:
        """`NAME[:VERSION|@ALIAS][=VARIANT]`, the form used by --model and PREDICTOR_MODELS."""
        ref, _, variant = text.partition("=")
        try:
            return cls(ref=ref.strip(), variant=Variant(variant.strip()) if variant else None)
        except ValueError as exc:
            raise ConfigError(f"bad model spec {text!r}: {exc}".splitlines()[0]) from None


# One worker per core with one intra-op thread each beat one worker with every core as its
# threads on 2 cores (issue 14: capacity at p99 <= 50 ms 2x, a third of the CPU at 80 req/s,
# lower p50 at 20 req/s; docs/benchmarks.md). Past 8 cores the cap is a guess, not a
# measurement: each worker holds every model.
MAX_DEFAULT_CPU_WORKERS = 8


class PredictorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREDICTOR_", extra="ignore")

    # NoDecode: PREDICTOR_MODELS is "a@production=onnx-int8,b" or a JSON list; parsed below.
    models: Annotated[list[ModelConfig], NoDecode] = Field(
        default_factory=lambda: [ModelConfig(ref=r) for r in DEFAULT_MODELS]
    )
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    grpc_port: int = Field(
        default=8001, ge=0, le=65535, description="OIP gRPC port in every worker; 0 = off"
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="workers when no GPU is used; None: one per usable core (at most "
        f"{MAX_DEFAULT_CPU_WORKERS}), each with the cores it shares as ONNX Runtime threads",
    )
    workers_per_gpu: int = Field(default=1, ge=1)
    gpus: list[int] | None = Field(default=None, description="None: every visible GPU")
    gpu_map: str = Field(default="", description="model=0,1;other=2")
    max_request_bytes: int = Field(default=1 << 20, ge=1024)
    max_texts_per_request: int = Field(default=64, ge=1)
    max_text_chars: int = Field(default=20_000, ge=1)
    request_timeout_s: float = Field(default=30.0, gt=0)
    body_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="a request body that stops arriving: 408"
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="a connection that does not finish its request line and headers: closed",
    )
    drain_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="on SIGTERM: new connections refused, /readyz 503, admitted requests "
        "finish for at most this long, then the rest is cancelled and the workers exit",
    )
    load_give_up_s: float = Field(
        default=900.0,
        gt=0,
        description="a wanted model that has not loaded this long after the worker started "
        "(registry down, load failing) fails /livez, so the orchestrator restarts the pod",
    )
    access_log: bool = Field(
        default=False, description="BentoML's per-request log lines (cost CPU on small machines)"
    )
    hot_path: bool = Field(
        default=True,
        description="answer /analyze-sentiment and /embed from the HTTP protocol, around "
        "BentoML's middleware stack (same limits, token and HTTP metrics; no access log line "
        "or trace); false sends them through BentoML's stack",
    )
    rebalance: bool = Field(
        default=True,
        description="with several workers, a worker clearly busier than a sibling answers "
        "POSTs with `Connection: close`, so keep-alive clients spread by load (loadboard.py)",
    )
    auth_tokens: list[SecretStr] = Field(default_factory=list)
    auth_token_file: Path | None = None
    registry_uri: str | None = Field(default=None, description="default: REGISTRY_URI")
    cache_dir: Path | None = Field(default=None, description="default: registry cache")
    alias_poll_s: float = Field(
        default=10.0, gt=0, description="how often each worker re-reads the aliases it follows"
    )
    control_dir: Path | None = Field(
        default=None,
        description="where workers share the repository API's wanted state (default: a fresh "
        "directory per `predictor serve`)",
    )
    repository_timeout_s: float = Field(
        default=600.0, gt=0, description="longest a repository load/unload waits for workers"
    )

    @field_validator("models", mode="before")
    @classmethod
    def _models_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [ModelConfig.parse(p).model_dump() for p in value.split(",") if p.strip()]
        return value

    def tokens(self) -> set[str]:
        found = {t.get_secret_value() for t in self.auth_tokens}
        if self.auth_token_file:
            try:
                lines = self.auth_token_file.read_text().splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read auth token file: {exc.strerror}") from None
            found |= {line.strip() for line in lines if line.strip()}
        return found

    def to_env(self) -> str:
        data = self.model_dump(mode="json")
        data["auth_tokens"] = [t.get_secret_value() for t in self.auth_tokens]
        return json.dumps(data)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return data


def load_settings(overrides: dict[str, Any] | None = None) -> PredictorSettings:
    """In a worker: the CLI's resolved settings. Elsewhere: file < env < overrides."""
    from pydantic import ValidationError

    try:
        if RESOLVED_ENV in os.environ:
            return PredictorSettings.model_validate_json(os.environ[RESOLVED_ENV])
        file_data: dict[str, Any] = {}
        if config_file := os.environ.get("PREDICTOR_CONFIG_FILE"):
            file_data = read_config_file(Path(config_file))
        env_only = PredictorSettings()
        explicit_env = {k: getattr(env_only, k) for k in env_only.model_fields_set}
        return PredictorSettings(**{**file_data, **explicit_env, **(overrides or {})})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
