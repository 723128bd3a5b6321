"""The committed gRPC stubs are what grpcio-tools makes of the committed .proto, and the
service keeps Triton's method names and repository field numbers (tritonclient sends those).

Compared as text: this test process also imports tritonclient's `inference` package, and one
process cannot register both (they define the same protobuf symbols)."""

from __future__ import annotations

from pathlib import Path

from modelserve_predictor.grpc_v2 import compile as stubs

GENERATED = ["grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py"]


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    stubs.compile_to(tmp_path)
    for name in GENERATED:
        fresh = tmp_path / "modelserve_predictor" / "grpc_v2" / name
        assert fresh.read_text() == (stubs.PROTO.parent / name).read_text(), (
            f"{name} is stale: run `uv run python -m modelserve_predictor.grpc_v2.compile`"
        )


def test_the_service_offers_the_oip_and_repository_methods_tritonclient_calls() -> None:
    from tritonclient.grpc import service_pb2

    text = (stubs.PROTO.parent / "grpc_predict_v2_pb2_grpc.py").read_text()
    for method in (
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
        "RepositoryIndex",
        "RepositoryModelLoad",
        "RepositoryModelUnload",
    ):
        assert f"'/inference.GRPCInferenceService/{method}'" in text, method
    proto = stubs.PROTO.read_text()
    for message in ("RepositoryModelLoadRequest", "RepositoryIndexRequest", "ModelInferRequest"):
        for field in service_pb2.DESCRIPTOR.message_types_by_name[message].fields:
            assert f" {field.name} = {field.number};" in proto, (message, field.name)
