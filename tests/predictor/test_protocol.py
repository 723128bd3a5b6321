"""The OIP codec shared by REST and gRPC, and the REST adapter's parsing of Triton's binary
tensor format: pure functions, every refusal a BadRequest with a clear message."""

from __future__ import annotations

import gzip
import json
import struct
import zlib

import numpy as np
import pytest

from modelserve_predictor.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from modelserve_predictor.protocol import (
    InferRequest,
    InputTensor,
    OutputTensor,
    RequestedOutput,
    check_outputs,
    decode_texts,
    join_bytes_elements,
    select_outputs,
    split_bytes_elements,
    tensor_bytes,
    tensor_list,
)
from modelserve_predictor.rest import decompress, infer_response, parse_infer, split_binary


def test_bytes_elements_round_trip_with_empty_and_unicode_elements() -> None:
    elements = [b"", "héllo wörld".encode(), b"x" * 300]
    raw = join_bytes_elements(elements)
    assert raw[:4] == struct.pack("<I", 0) and split_bytes_elements(raw) == elements


@pytest.mark.parametrize(
    ("raw", "needle"),
    [(b"\x05\x00", "4-byte length"), (struct.pack("<I", 10) + b"abc", "runs past the end")],
)
def test_truncated_bytes_tensors_are_refused(raw: bytes, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        split_bytes_elements(raw)


def test_texts_come_from_json_data_or_raw_bytes_in_row_major_order() -> None:
    nested = InputTensor("text", "BYTES", (2, 2), data=[["a", "b"], ["c", "d"]])
    assert decode_texts(nested) == ["a", "b", "c", "d"]
    raw = InputTensor("text", "BYTES", (2,), raw=join_bytes_elements([b"x", b"y"]))
    assert decode_texts(raw) == ["x", "y"]


@pytest.mark.parametrize(
    ("tensor", "needle"),
    [
        (InputTensor("input-0", "BYTES", (1,), data=["a"]), "named 'text'"),
        (InputTensor("text", "INT32", (1,), data=[1]), "BYTES"),
        (InputTensor("text", "BYTES", (3,), data=["a"]), "holds 3 elements but 1"),
        (InputTensor("text", "BYTES", (1,), data=[7]), "not a string"),
        (InputTensor("text", "BYTES", (1,), raw=join_bytes_elements([b"\xff\xfe"])), "UTF-8"),
    ],
)
def test_bad_inputs_say_what_is_wrong(tensor: InputTensor, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        decode_texts(tensor)


def test_requested_outputs_are_checked_and_selected_in_order() -> None:
    with pytest.raises(BadRequest, match="no output 'probs'"):
        check_outputs([RequestedOutput("probs")], ["logits", "label"], "m")
    with pytest.raises(BadRequest, match="twice"):
        check_outputs([RequestedOutput("label"), RequestedOutput("label")], ["label"], "m")
    produced = [
        OutputTensor("logits", "FP32", np.zeros((1, 3), np.float32)),
        OutputTensor("label", "BYTES", np.array(["neutral"], dtype=object)),
    ]
    request = InferRequest(
        "m",
        None,
        ["t"],
        outputs=[RequestedOutput("label", False), RequestedOutput("logits")],
        binary_output=True,
    )
    chosen = select_outputs(request, produced)
    assert [(t.name, t.binary) for t in chosen] == [("label", False), ("logits", True)]


def test_float32_outputs_keep_their_bits_in_json_and_binary() -> None:
    values = np.array([[0.1, -2.5e-8, 3.4028235e38]], dtype=np.float32)
    tensor = OutputTensor("logits", "FP32", values)
    from_json = np.array(json.loads(json.dumps(tensor_list(tensor))), dtype=np.float32)
    from_binary = np.frombuffer(tensor_bytes(tensor), dtype="<f4")
    assert from_json.tobytes() == values.tobytes() == from_binary.tobytes()
    labels = OutputTensor("label", "BYTES", np.array(["a", "bé"], dtype=object))
    assert split_bytes_elements(tensor_bytes(labels)) == [b"a", "bé".encode()]


def _binary_request(texts: list[bytes], **extra) -> tuple[bytes, bytes]:
    raw = join_bytes_elements(texts)
    header = {
        "inputs": [
            {
                "name": "text",
                "datatype": "BYTES",
                "shape": [len(texts)],
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        **extra,
    }
    return json.dumps(header).encode(), raw


def test_triton_binary_requests_parse_like_json_ones() -> None:
    header, raw = _binary_request(
        [b"good", b"bad"], id="r1", parameters={"binary_data_output": True}
    )
    json_part, binary = split_binary(header + raw, str(len(header)))
    request = parse_infer(json.loads(json_part), binary, "m", "2")
    assert request.texts == ["good", "bad"] and request.id == "r1" and request.binary_output
    assert request.version == "2" and request.outputs is None


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda h, r: (h, r + b"extra"), "does not match"),
        (lambda h, r: (h, r[:-1]), "does not match"),
        (lambda h, r: (h.replace(b'"binary_data_size"', b'"size"'), r), "binary_data_size"),
        (lambda h, r: (h.replace(b'"BYTES"', b'"FP32"'), r), "BYTES"),
    ],
)
def test_inconsistent_binary_requests_are_refused(mutate, needle: str) -> None:
    header, raw = mutate(*_binary_request([b"abc"]))
    json_part, binary = split_binary(header + raw, str(len(header)))
    with pytest.raises(BadRequest, match=needle):
        parse_infer(json.loads(json_part), binary, "m", None)


@pytest.mark.parametrize("length", ["-1", "abc", "999999"])
def test_a_header_length_outside_the_body_is_refused(length: str) -> None:
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
        split_binary(b"{}", length)


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"inputs": [], "id": "x"}, "exactly one tensor"),
        ({"id": 5, "inputs": [{}]}, "'id' must be a string"),
        ({"parameters": [1], "inputs": [{}]}, "parameters must be an object"),
        ({"parameters": {"binary_data_output": "yes"}, "inputs": [{}]}, "true or false"),
        (
            {
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
                "outputs": [{"name": "logits", "parameters": {"binary_data": 1}}],
            },
            "true or false",
        ),
        (
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1], "data": ["a"]}]},
            "from 0 to",
        ),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1]}]}, "'data'"),
    ],
)
def test_malformed_documents_are_refused(document: dict, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        parse_infer(document, b"", "m", None)


def test_binary_responses_carry_the_header_length_and_sizes() -> None:
    from modelserve_predictor.protocol import InferResponse

    logits = OutputTensor("logits", "FP32", np.ones((2, 3), np.float32), binary=True)
    labels = OutputTensor("label", "BYTES", np.array(["a", "b"], dtype=object))
    response = infer_response(InferResponse("m", "1", [logits, labels], id="q"))
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.body[:length])
    assert header["id"] == "q" and header["outputs"][1]["data"] == ["a", "b"]
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 24
    assert np.frombuffer(response.body[length:], "<f4").tolist() == [1.0] * 6


def test_compressed_bodies_inflate_within_the_limit_only() -> None:
    body = b'{"inputs": []}'
    assert decompress(gzip.compress(body), "gzip", 1024) == body
    assert decompress(zlib.compress(body), "deflate", 1024) == body
    with pytest.raises(PayloadTooLarge, match="inflates past"):
        decompress(gzip.compress(b"0" * 10_000_000), "gzip", 1 << 20)  # 10 KB -> 10 MB
    with pytest.raises(BadRequest, match="corrupt"):
        decompress(b"not gzip", "gzip", 1024)
    with pytest.raises(UnsupportedMediaType, match="br"):
        decompress(body, "br", 1024)


def test_deep_nesting_and_huge_numbers_are_malformed_json_not_errors() -> None:
    from modelserve_predictor.rest import parse_json

    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(BadRequest, match="malformed JSON"):
        parse_json(b'{"id": ' + b"9" * 5000 + b"}")
    deep = ["x"]
    for _ in range(5000):
        deep = [deep]
    tensor = InputTensor("text", "BYTES", (1,), data=deep)
    assert decode_texts(tensor) == ["x"]
