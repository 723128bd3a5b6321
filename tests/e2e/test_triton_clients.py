"""Stock Triton clients (tritonclient.http and tritonclient.grpc, default options: binary
tensors on) against the live predictor, every OIP call, errors included, and REST vs gRPC
answers compared bit for bit.

This process imports tritonclient's own `inference` protobuf package, never the server's
stubs (both define the same package; one process cannot hold both)."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.e2e.conftest import Server

TEXTS = ["I love this film", "an utterly dreadful meal", "fine, I suppose", "ok"]


@pytest.fixture(scope="module")
def http(server: Server) -> httpclient.InferenceServerClient:
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_client(server: Server) -> grpcclient.InferenceServerClient:
    client = grpcclient.InferenceServerClient(server.grpc_address)
    yield client
    client.close()


def text_input(module, texts: list[str], shape: list[int] | None = None):
    tensor = module.InferInput("text", shape or [len(texts)], "BYTES")
    tensor.set_data_from_numpy(
        np.array([t.encode() for t in texts], dtype=object).reshape(shape or [len(texts)])
    )
    return tensor


def test_health_and_server_metadata_over_http(http: httpclient.InferenceServerClient) -> None:
    assert http.is_server_live() and http.is_server_ready()
    meta = http.get_server_metadata()  # GET /v2, no redirect
    assert meta["name"] == "modelserve-predictor"
    assert {"binary_tensor_data", "model_repository"} <= set(meta["extensions"])
    assert http.is_model_ready("tiny-sentiment") and http.is_model_ready("tiny-sentiment", "1")
    assert not http.is_model_ready("tiny-sentiment", "7")
    model = http.get_model_metadata("tiny-sentiment", "1")
    assert model["versions"] == ["1"] and model["inputs"][0]["name"] == "text"
    assert [o["name"] for o in model["outputs"]] == ["logits", "label", "truncated"]


def test_health_and_metadata_over_grpc(grpc_client: grpcclient.InferenceServerClient) -> None:
    assert grpc_client.is_server_live() and grpc_client.is_server_ready()
    meta = grpc_client.get_server_metadata()
    assert meta.name == "modelserve-predictor" and "model_repository" in meta.extensions
    assert grpc_client.is_model_ready("tiny-embed")
    assert not grpc_client.is_model_ready("tiny-embed", "7")
    model = grpc_client.get_model_metadata("tiny-embed")
    assert model.versions == ["1"] and [o.name for o in model.outputs] == [
        "embeddings",
        "truncated",
    ]
    assert list(model.outputs[0].shape) == [-1, 32]


def test_http_infer_with_binary_tensors(http: httpclient.InferenceServerClient) -> None:
    result = http.infer("tiny-sentiment", [text_input(httpclient, TEXTS)], request_id="r-7")
    response = result.get_response()
    assert response["id"] == "r-7" and response["model_version"] == "1"
    logits = result.as_numpy("logits")
    assert logits.shape == (4, 3) and logits.dtype == np.float32
    labels = [b.decode() for b in result.as_numpy("label")]
    assert labels == [["negative", "neutral", "positive"][i] for i in logits.argmax(axis=1)]
    assert result.as_numpy("truncated").tolist() == [False] * 4


def test_http_requested_outputs_json_and_binary_agree(
    http: httpclient.InferenceServerClient,
) -> None:
    inputs = [text_input(httpclient, TEXTS[:2], [1, 2])]
    as_json = http.infer(
        "tiny-sentiment",
        inputs,
        outputs=[httpclient.InferRequestedOutput("logits", binary_data=False)],
    )
    assert [o["name"] for o in as_json.get_response()["outputs"]] == ["logits"]
    assert "data" in as_json.get_response()["outputs"][0]
    as_binary = http.infer("tiny-sentiment", inputs)
    np.testing.assert_array_equal(as_json.as_numpy("logits"), as_binary.as_numpy("logits"))


def test_rest_and_grpc_answer_the_same_bits(
    http: httpclient.InferenceServerClient, grpc_client: grpcclient.InferenceServerClient
) -> None:
    for model, output in (("tiny-sentiment", "logits"), ("tiny-embed", "embeddings")):
        rest = http.infer(model, [text_input(httpclient, TEXTS)]).as_numpy(output)
        over_grpc = grpc_client.infer(model, [text_input(grpcclient, TEXTS)])
        assert over_grpc.get_response().model_version == "1"
        assert rest.tobytes() == over_grpc.as_numpy(output).tobytes(), model


def test_grpc_infer_names_requested_outputs_and_echoes_the_id(
    grpc_client: grpcclient.InferenceServerClient,
) -> None:
    result = grpc_client.infer(
        "tiny-sentiment",
        [text_input(grpcclient, ["good"])],
        outputs=[grpcclient.InferRequestedOutput("label")],
        request_id="g-1",
    )
    response = result.get_response()
    assert response.id == "g-1" and [o.name for o in response.outputs] == ["label"]
    assert result.as_numpy("label")[0].decode() in {"negative", "neutral", "positive"}


BAD_INFERS = [
    # (description, model, inputs builder, outputs, http status, grpc code)
    ("unknown model", "nope", lambda m: [text_input(m, ["x"])], None, "404", "NOT_FOUND"),
    (
        "wrong input name",
        "tiny-sentiment",
        lambda m: [_named(m, "input-0")],
        None,
        "400",
        "INVALID_ARGUMENT",
    ),
    ("wrong datatype", "tiny-sentiment", lambda m: [_ints(m)], None, "400", "INVALID_ARGUMENT"),
    (
        "unknown output",
        "tiny-sentiment",
        lambda m: [text_input(m, ["x"])],
        "probabilities",
        "400",
        "INVALID_ARGUMENT",
    ),
    (
        "empty text",
        "tiny-sentiment",
        lambda m: [text_input(m, [" "])],
        None,
        "400",
        "INVALID_ARGUMENT",
    ),
    (
        "too many texts",
        "tiny-sentiment",
        lambda m: [text_input(m, ["x"] * 9)],
        None,
        "413",
        "INVALID_ARGUMENT",
    ),
]


def _named(module, name: str):
    tensor = module.InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"x"], dtype=object))
    return tensor


def _ints(module):
    tensor = module.InferInput("text", [1], "INT32")
    tensor.set_data_from_numpy(np.array([1], dtype=np.int32))
    return tensor


@pytest.mark.parametrize(("what", "model", "inputs", "output", "status", "code"), BAD_INFERS)
def test_bad_requests_are_clear_errors_on_both_protocols(
    http, grpc_client, what, model, inputs, output, status, code
) -> None:
    for module, client, expected in (
        (httpclient, http, status),
        (grpcclient, grpc_client, f"StatusCode.{code}"),
    ):
        outputs = [module.InferRequestedOutput(output)] if output else None
        with pytest.raises(InferenceServerException) as caught:
            client.infer(model, inputs(module), outputs=outputs)
        assert caught.value.status() == expected, (what, module.__name__, caught.value)
        assert caught.value.message(), what


def test_grpc_overload_is_resource_exhausted_with_retry_info(server: Server) -> None:
    """The same queue limit as REST (big-slow holds 2 texts): RESOURCE_EXHAUSTED carrying
    google.rpc.RetryInfo, while admitted calls complete."""
    channel = grpc.insecure_channel(server.grpc_address)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = service_pb2.ModelInferRequest(model_name="big-slow")
    tensor = request.inputs.add(name="text", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(("slow text " * 200).encode())
    outcomes: list[grpc.RpcError | object] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            answer: object = stub.ModelInfer(request, timeout=120)
        except grpc.RpcError as error:
            answer = error
        with lock:
            outcomes.append(answer)

    threads = [threading.Thread(target=call) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    channel.close()
    errors = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert len(outcomes) == 24 and errors and len(errors) < 24
    assert {e.code() for e in errors} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    status = rpc_status.from_call(errors[0])
    info = error_details_pb2.RetryInfo()
    assert status is not None and status.details[0].Unpack(info)
    assert info.retry_delay.seconds >= 1 and "overloaded" in status.message


def test_repository_index_over_both_protocols(http, grpc_client) -> None:
    index = {m["name"]: m for m in http.get_model_repository_index()}
    assert {"tiny-sentiment", "tiny-embed", "big-batch", "big-slow"} <= set(index)
    assert index["tiny-sentiment"]["state"] == "READY" and index["tiny-sentiment"]["version"] == "1"
    over_grpc = {m.name: m for m in grpc_client.get_model_repository_index().models}
    assert over_grpc["tiny-embed"].state == "READY" and over_grpc.keys() == index.keys()
