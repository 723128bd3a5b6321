"""Both storage backends for parametrised tests: a local folder and a real S3-compatible
server (moto in server mode on 127.0.0.1), plus a helper that builds a small version and the
environment that points a subprocess at the same store."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelserve_runtime.manifest import (
    GraphSpec,
    ModelManifest,
    Runtime,
    Variant,
    VariantManifest,
)
from modelserve_runtime.store import Registry
from tests.conftest import free_port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_bucket_counter = iter(range(10**6))


@pytest.fixture(params=["local", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "local":
        return Registry.open(str(tmp_path / "registry"))
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"models-{next(_bucket_counter)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return Registry.open(f"s3://{bucket}/registry", s3_endpoint_url=endpoint)


def small_version(
    registry: Registry, folder: Path, name: str = "demo", payload: bytes = b"onnx-bytes" * 1000
) -> ModelManifest:
    """Store a tokenizer file and one variant file, then publish a manifest naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text('{"vocab": ["a", "b"]}')
    (folder / "model.onnx").write_bytes(payload)
    tokenizer = registry.put_file(folder / "tokenizer.json", "tokenizer/tokenizer.json")
    weights = registry.put_file(folder / "model.onnx", "model.onnx")
    draft = ModelManifest(
        name=name,
        version=0,
        created_at=dt.datetime.now(dt.UTC),
        task="embedding",
        max_sequence_length=16,
        graph=GraphSpec(
            kind="mean-pooling", model_type="bert", num_attention_heads=2, hidden_size=8
        ),
        tokenizer_files=[tokenizer],
        variants={
            Variant.ONNX_INT8: VariantManifest(
                variant=Variant.ONNX_INT8,
                files=[weights],
                runtime=Runtime(engine="onnxruntime", devices=["cpu"]),
            )
        },
    )
    return registry.publish(draft)


def store_env(registry: Registry) -> dict[str, str]:
    """os.environ plus REGISTRY_URI (and the S3 endpoint): a subprocess's Registry.from_settings()
    opens this same store. The AWS_* test credentials are already in os.environ."""
    env = {**os.environ, "REGISTRY_URI": registry.location}
    endpoint = getattr(registry.backend, "endpoint_url", None)
    if endpoint:
        env["REGISTRY_S3_ENDPOINT_URL"] = endpoint
    return env
