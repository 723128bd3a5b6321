"""The Open Inference Protocol (v2) without any transport: the request and response types the
data plane works on, their validation, and the tensor codecs REST and gRPC share (Triton's
binary tensor data layout is the same as gRPC's raw contents).

Both adapters turn what arrived into an `InferRequest` through `InputTensor` + `decode_texts`,
and turn an `InferResponse` back with `encode_tensor`; nothing here knows about HTTP or gRPC."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelserve_predictor.errors import BadRequest

INPUT_NAME = "text"
# Scalar parameter values, as InferParameter can carry them.
Parameter = bool | int | float | str
# numpy dtypes of the fixed-size datatypes this server sends.
FIXED_DTYPES = {"FP32": np.dtype("<f4"), "BOOL": np.dtype("?")}


@dataclass(frozen=True)
class InputTensor:
    """An input as it arrived: `data` is the JSON/typed-contents list, `raw` the binary
    form (Triton's binary extension or gRPC raw_input_contents); exactly one is set."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Sequence[Any] | None = None
    raw: bytes | None = None


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None = None  # None: the request's default


@dataclass
class InferRequest:
    model: str
    version: str | None
    texts: list[str]
    id: str | None = None
    outputs: list[RequestedOutput] | None = None  # None: every output
    binary_output: bool = False  # Triton's binary_data_output request parameter
    parameters: dict[str, Parameter] = field(default_factory=dict)
    timeout_s: float | None = None  # the client's deadline (None: the model's default)


@dataclass
class OutputTensor:
    name: str
    datatype: str
    array: np.ndarray  # FP32/BOOL: that dtype; BYTES: an object array of str
    binary: bool = False

    @property
    def shape(self) -> list[int]:
        return list(self.array.shape)


@dataclass
class InferResponse:
    model: str
    version: str
    outputs: list[OutputTensor]
    id: str | None = None
    parameters: dict[str, Parameter] = field(default_factory=dict)


MAX_DIMS = 32  # and each dimension an int64, as in the gRPC proto: products stay printable
INT64_MAX = 2**63 - 1


def check_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, Sequence) or isinstance(shape, str | bytes):
        raise BadRequest(f"tensor shape must be a list of integers, got {shape!r}")
    dims = tuple(shape)
    if len(dims) > MAX_DIMS:
        raise BadRequest(f"tensor shape has {len(dims)} dimensions (at most {MAX_DIMS})")
    if not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= INT64_MAX for d in dims
    ):
        # not echoed: a 5,000-digit integer cannot even be printed
        raise BadRequest("tensor shape must hold integers from 0 to 2**63-1 (int64)")
    return dims


def check_parameters(value: Any, where: str) -> dict[str, Parameter]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise BadRequest(f"{where} parameters must be an object")
    for key, item in value.items():
        if not isinstance(item, bool | int | float | str):
            raise BadRequest(f"{where} parameter {key!r} must be a boolean, number or string")
    return dict(value)


def check_flag(parameters: Mapping[str, Parameter], key: str, where: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{where} parameter {key!r} must be true or false, got {value!r}")
    return value


def client_timeout(parameters: Mapping[str, Parameter]) -> float | None:
    """Triton's `timeout` request parameter, in microseconds, as seconds."""
    value = parameters.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest(
            f"the timeout parameter is a positive integer of microseconds, not {value!r}"
        )
    return value / 1e6


def split_bytes_elements(raw: bytes) -> list[bytes]:
    """BYTES tensor contents: each element a 4-byte little-endian length, then the bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest("BYTES tensor data ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(
                f"BYTES tensor element of {length} bytes runs past the end of the data"
            )
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def join_bytes_elements(elements: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _flatten(data: Sequence[Any]) -> list[Any]:
    """Row-major elements of nested lists, without recursion (nesting is the client's)."""
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def decode_texts(tensor: InputTensor) -> list[str]:
    """The texts of the one input, in row-major order, each checked to be UTF-8 text; the
    caller still applies the per-text limits (Predictor.check_texts)."""
    if tensor.name != INPUT_NAME:
        raise BadRequest(f"unexpected input {tensor.name!r}; the input is named {INPUT_NAME!r}")
    if tensor.datatype != "BYTES":
        raise BadRequest(f"input {INPUT_NAME!r} has datatype BYTES, not {tensor.datatype!r}")
    if tensor.raw is not None:
        elements: list[Any] = split_bytes_elements(tensor.raw)
    else:
        elements = _flatten(list(tensor.data or []))
    # Python integers: numpy's int64 product wraps ([2**63-1, 2**63-1] "holds" 1 element)
    expected = math.prod(tensor.shape) if tensor.shape else 1
    if expected != len(elements):
        raise BadRequest(
            f"input shape {list(tensor.shape)} holds {expected} elements but "
            f"{len(elements)} were sent"
        )
    texts = []
    for index, element in enumerate(elements):
        if isinstance(element, bytes):
            try:
                element = element.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"text {index} is not valid UTF-8") from None
        elif not isinstance(element, str):
            raise BadRequest(f"text {index} is {type(element).__name__}, not a string")
        texts.append(element)
    return texts


def check_outputs(
    requested: list[RequestedOutput] | None, available: Sequence[str], model: str
) -> None:
    if requested is None:
        return
    seen: set[str] = set()
    for output in requested:
        if output.name not in available:
            raise BadRequest(
                f"model {model!r} has no output {output.name!r} (outputs: {', '.join(available)})"
            )
        if output.name in seen:
            raise BadRequest(f"output {output.name!r} is requested twice")
        seen.add(output.name)


def select_outputs(request: InferRequest, produced: list[OutputTensor]) -> list[OutputTensor]:
    """The requested outputs in the requested order (all of them when none was named),
    each marked binary or not as the request asks."""
    if request.outputs is None:
        for tensor in produced:
            tensor.binary = request.binary_output
        return produced
    by_name = {t.name: t for t in produced}
    chosen = []
    for wanted in request.outputs:
        tensor = by_name[wanted.name]
        tensor.binary = request.binary_output if wanted.binary is None else wanted.binary
        chosen.append(tensor)
    return chosen


def tensor_bytes(tensor: OutputTensor) -> bytes:
    """The binary (raw) form of an output tensor."""
    if tensor.datatype == "BYTES":
        return join_bytes_elements([str(s).encode() for s in tensor.array.reshape(-1)])
    return np.ascontiguousarray(tensor.array, dtype=FIXED_DTYPES[tensor.datatype]).tobytes()


def tensor_list(tensor: OutputTensor) -> list[Any]:
    """The JSON form: flattened row-major. float(float32) is exact, so a JSON client casting
    back to float32 gets the very bits a binary client gets."""
    flat = tensor.array.reshape(-1)
    if tensor.datatype == "BYTES":
        return [str(s) for s in flat]
    if tensor.datatype == "BOOL":
        return [bool(v) for v in flat]
    return [float(v) for v in flat]
