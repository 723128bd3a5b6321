"""The Open Inference Protocol over REST (mounted at /v2): JSON, plus Triton's binary tensor
data extension (`Inference-Header-Content-Length`: the first N bytes are the JSON header, the
rest the tensors named by `binary_data_size`) and gzip/deflate request bodies, as
tritonclient.http sends them. A thin adapter: everything is decided in dataplane.py."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelserve_predictor.dataplane import DataPlane
from modelserve_predictor.errors import (
    BadRequest,
    NotReady,
    PayloadTooLarge,
    PredictorError,
    UnsupportedMediaType,
)
from modelserve_predictor.http import error_response
from modelserve_predictor.protocol import (
    InferRequest,
    InferResponse,
    InputTensor,
    RequestedOutput,
    check_flag,
    check_parameters,
    check_shape,
    client_timeout,
    decode_texts,
    tensor_bytes,
    tensor_list,
)

HEADER_LENGTH = "inference-header-content-length"
DataPlaneGetter = Callable[[], DataPlane | None]


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """gzip/deflate bodies (tritonclient's request_compression_algorithm), never inflated
    past `limit` bytes (a small body must not expand into gigabytes)."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported (gzip, deflate)"
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the {encoding} body is corrupt: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the request body inflates past {limit} bytes")
    if not inflater.eof:  # cut short: no end of stream (gzip: no checksum and length)
        raise BadRequest(f"the {encoding} body is truncated")
    if inflater.unused_data:
        raise BadRequest(f"the {encoding} body has {len(inflater.unused_data)} bytes after its end")
    return out


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.strip().isdigit() or int(header_length) > len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length!r} is not a length within the "
            f"{len(body)}-byte body"
        )
    cut = int(header_length)
    return body[:cut], body[cut:]


def parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, integers past Python's digit limit
        raise BadRequest(f"malformed JSON: {exc}".splitlines()[0]) from None


def parse_infer(document: Any, binary: bytes, model: str, version: str | None) -> InferRequest:
    if not isinstance(document, dict):
        raise BadRequest("the request body must be a JSON object with 'inputs'")
    parameters = check_parameters(document.get("parameters"), "request")
    binary_output = bool(check_flag(parameters, "binary_data_output", "request"))
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest("'inputs' must hold exactly one tensor, named 'text'")
    tensor = _input(inputs[0], binary)
    outputs = document.get("outputs")
    requested = None
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise BadRequest("'outputs' must be a list of objects with a 'name'")
        requested = []
        for output in outputs:
            if not isinstance(output.get("name"), str):
                raise BadRequest("every requested output needs a string 'name'")
            output_parameters = check_parameters(output.get("parameters"), "output")
            flag = check_flag(output_parameters, "binary_data", "output")
            requested.append(RequestedOutput(output["name"], flag))
    return InferRequest(
        model=model,
        version=version,
        texts=decode_texts(tensor),
        id=request_id,
        outputs=requested,
        binary_output=binary_output,
        parameters=parameters,
        timeout_s=client_timeout(parameters),
    )


def _input(entry: dict[str, Any], binary: bytes) -> InputTensor:
    name, datatype = entry.get("name"), entry.get("datatype")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise BadRequest("the input tensor needs a string 'name' and 'datatype'")
    shape = check_shape(entry.get("shape"))
    parameters = check_parameters(entry.get("parameters"), "input")
    size = parameters.get("binary_data_size")
    if size is None:
        if binary:
            raise BadRequest("binary data was sent but no input names its binary_data_size")
        data = entry.get("data")
        if not isinstance(data, list):
            raise BadRequest("input 'data' must be a list of strings")
        return InputTensor(name, datatype, shape, data=data)
    if "data" in entry:
        raise BadRequest("an input has either 'data' or binary_data_size, not both")
    if isinstance(size, bool) or not isinstance(size, int) or size != len(binary):
        raise BadRequest(
            f"binary_data_size {size!r} does not match the {len(binary)} binary bytes sent"
        )
    return InputTensor(name, datatype, shape, raw=binary)


def infer_response(response: InferResponse) -> Response:
    outputs, chunks = [], []
    for tensor in response.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        if tensor.binary:
            raw = tensor_bytes(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = tensor_list(tensor)
        outputs.append(entry)
    document: dict[str, Any] = {
        "model_name": response.model,
        "model_version": response.version,
        "outputs": outputs,
        "parameters": response.parameters,
    }
    if response.id is not None:
        document["id"] = response.id
    header = json.dumps(document, separators=(",", ":")).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


async def _answer(work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except PredictorError as error:
        return error_response(error)


def build_oip_app(get_plane: DataPlaneGetter, max_body_bytes: int) -> Starlette:
    """Routes relative to the /v2 mount point."""

    def plane() -> DataPlane:
        current = get_plane()
        if current is None:
            raise NotReady("the predictor is still starting")
        return current

    def version_of(request: Request) -> str | None:
        return request.path_params.get("version")

    async def live(_: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(_: Request) -> Response:
        current = get_plane()
        is_ready = bool(current and current.ready)
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    async def server_metadata(_: Request) -> Response:
        return await _answer(lambda: _json(plane().server_metadata()))

    async def model_metadata(request: Request) -> Response:
        name = request.path_params["name"]
        return await _answer(lambda: _json(plane().model_metadata(name, version_of(request))))

    async def model_ready(request: Request) -> Response:
        async def work() -> Response:
            name = request.path_params["name"]
            is_ready = plane().model_ready(name, version_of(request))
            return JSONResponse(
                {"name": name, "ready": is_ready}, status_code=200 if is_ready else 503
            )

        return await _answer(work)

    async def infer(request: Request) -> Response:
        async def work() -> Response:
            body = decompress(
                await request.body(), request.headers.get("content-encoding"), max_body_bytes
            )
            header, binary = split_binary(body, request.headers.get(HEADER_LENGTH))
            parsed = parse_infer(
                parse_json(header), binary, request.path_params["name"], version_of(request)
            )
            return infer_response(await plane().infer(parsed))

        return await _answer(work)

    async def optional_json(request: Request) -> dict[str, Any]:
        body = await request.body()
        document = parse_json(body) if body.strip() else {}
        if not isinstance(document, dict):
            raise BadRequest("the request body must be a JSON object")
        return document

    async def repository_index(request: Request) -> Response:
        async def work() -> Response:
            document = await optional_json(request)
            ready_only = document.get("ready", False)
            if not isinstance(ready_only, bool):
                raise BadRequest("'ready' must be true or false")
            return JSONResponse(await plane().repository_index(ready_only))

        return await _answer(work)

    async def load(request: Request) -> Response:
        async def work() -> Response:
            document = await optional_json(request)
            parameters = check_parameters(document.get("parameters"), "load")
            await plane().load(request.path_params["name"], parameters)
            return JSONResponse({})

        return await _answer(work)

    async def unload(request: Request) -> Response:
        async def work() -> Response:
            await optional_json(request)
            await plane().unload(request.path_params["name"])
            return JSONResponse({})

        return await _answer(work)

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route("/health/ready", ready),
            Route("/", server_metadata),
            Route("/models/{name}", model_metadata),
            Route("/models/{name}/ready", model_ready),
            Route("/models/{name}/versions/{version}", model_metadata),
            Route("/models/{name}/versions/{version}/ready", model_ready),
            Route("/models/{name}/infer", infer, methods=["POST"]),
            Route("/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
            Route("/repository/index", repository_index, methods=["POST"]),
            Route("/repository/models/{name}/load", load, methods=["POST"]),
            Route("/repository/models/{name}/unload", unload, methods=["POST"]),
        ]
    )


async def _json(document: dict[str, Any]) -> Response:
    return JSONResponse(document)
