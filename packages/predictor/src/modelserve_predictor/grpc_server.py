"""The Open Inference Protocol over gRPC: `inference.GRPCInferenceService`, in every worker,
on one port shared through SO_REUSEPORT (the kernel spreads connections over the workers as
BentoML's shared socket spreads HTTP requests). A thin adapter over dataplane.DataPlane: the
same bearer tokens, limits, batching, metrics and errors as REST, with each PredictorError
mapped to its gRPC code (errors.py) and overload carrying google.rpc.RetryInfo.

Outputs always travel as raw_output_contents, as Triton sends them."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelserve_predictor.dataplane import DataPlane
from modelserve_predictor.errors import BadRequest, NotReady, PredictorError, Unauthorized
from modelserve_predictor.grpc_v2 import grpc_predict_v2_pb2 as pb
from modelserve_predictor.grpc_v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from modelserve_predictor.metrics import Metrics
from modelserve_predictor.protocol import (
    InferRequest,
    InferResponse,
    InputTensor,
    RequestedOutput,
    check_shape,
    client_timeout,
    decode_texts,
    tensor_bytes,
)

log = logging.getLogger("modelserve.predictor")
DataPlaneGetter = Callable[[], DataPlane | None]


def _value(parameter: Any) -> Any:
    choice = parameter.WhichOneof("parameter_choice")
    if choice is None:
        return None
    if choice == "bytes_param":
        raise BadRequest("bytes parameters (Triton's file overrides) are not supported")
    return getattr(parameter, choice)


def parameters_from(message_map: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _value(value) for key, value in message_map.items()}


def fill_parameters(target: Any, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            target[key].int64_param = value
        elif isinstance(value, float):
            target[key].double_param = value
        else:
            target[key].string_param = str(value)


def infer_request(message: pb.ModelInferRequest, time_remaining: float | None) -> InferRequest:
    if len(message.inputs) != 1:
        raise BadRequest("'inputs' must hold exactly one tensor, named 'text'")
    if message.raw_input_contents and len(message.raw_input_contents) != len(message.inputs):
        raise BadRequest("raw_input_contents must hold one entry per input")
    tensor = message.inputs[0]
    shape = check_shape(list(tensor.shape))
    if message.raw_input_contents:
        if tensor.HasField("contents"):
            raise BadRequest("an input has either contents or raw_input_contents, not both")
        decoded = InputTensor(
            tensor.name, tensor.datatype, shape, raw=message.raw_input_contents[0]
        )
    else:
        data = list(tensor.contents.bytes_contents)
        decoded = InputTensor(tensor.name, tensor.datatype, shape, data=data)
    outputs = [RequestedOutput(o.name, True) for o in message.outputs] or None
    parameters = parameters_from(message.parameters)
    timeouts = [t for t in (client_timeout(parameters), time_remaining) if t is not None]
    return InferRequest(
        model=message.model_name,
        version=message.model_version or None,
        texts=decode_texts(decoded),
        id=message.id or None,
        outputs=outputs,
        binary_output=True,
        parameters=parameters,
        timeout_s=min(timeouts) if timeouts else None,
    )


def infer_response(response: InferResponse) -> pb.ModelInferResponse:
    message = pb.ModelInferResponse(
        model_name=response.model, model_version=response.version, id=response.id or ""
    )
    fill_parameters(message.parameters, response.parameters)
    for tensor in response.outputs:
        message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        message.raw_output_contents.append(tensor_bytes(tensor))
    return message


def status_of(error: PredictorError) -> grpc.Status:
    status = status_pb2.Status(code=getattr(code_pb2, error.grpc_code), message=str(error))
    if error.retry_after_s is not None:
        seconds = max(1, round(error.retry_after_s))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
        status.details.append(detail)
    return rpc_status.to_status(status)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self, get_plane: DataPlaneGetter, tokens: frozenset[str], metrics: Metrics | None
    ) -> None:
        self.get_plane = get_plane
        self.tokens = tokens
        self.metrics = metrics

    async def _call(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        work: Callable[[DataPlane], Awaitable[Any]],
        guarded: bool = False,
    ) -> Any:
        started = time.perf_counter()
        code = "OK"
        try:
            if guarded and self.tokens and not self._authorized(context):
                raise Unauthorized("missing or invalid bearer token")
            plane = self.get_plane()
            if plane is None:
                raise NotReady("the predictor is still starting")
            return await work(plane)
        except PredictorError as error:
            code = error.grpc_code
            await context.abort_with_status(status_of(error))
        finally:
            if self.metrics:
                self.metrics.grpc_requests_total.labels(method=method, code=code).inc()
                self.metrics.grpc_request_seconds.labels(method=method).observe(
                    time.perf_counter() - started
                )

    def _authorized(self, context: grpc.aio.ServicerContext) -> bool:
        metadata = dict(context.invocation_metadata() or ())
        scheme, _, token = str(metadata.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return any(hmac.compare_digest(token.strip(), known) for known in self.tokens)

    async def ServerLive(self, request, context):
        async def work(_: DataPlane) -> pb.ServerLiveResponse:
            return pb.ServerLiveResponse(live=True)

        return await self._call("ServerLive", context, work)

    async def ServerReady(self, request, context):
        async def work(plane: DataPlane) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=plane.ready)

        return await self._call("ServerReady", context, work)

    async def ModelReady(self, request, context):
        async def work(plane: DataPlane) -> pb.ModelReadyResponse:
            return pb.ModelReadyResponse(ready=plane.model_ready(request.name, request.version))

        return await self._call("ModelReady", context, work)

    async def ServerMetadata(self, request, context):
        async def work(plane: DataPlane) -> pb.ServerMetadataResponse:
            return pb.ServerMetadataResponse(**plane.server_metadata())

        return await self._call("ServerMetadata", context, work)

    async def ModelMetadata(self, request, context):
        async def work(plane: DataPlane) -> pb.ModelMetadataResponse:
            meta = plane.model_metadata(request.name, request.version or None)
            message = pb.ModelMetadataResponse(
                name=meta["name"], versions=meta["versions"], platform=meta["platform"]
            )
            for key in ("inputs", "outputs"):
                for tensor in meta[key]:
                    getattr(message, key).add(**tensor)
            return message

        return await self._call("ModelMetadata", context, work)

    async def ModelInfer(self, request, context):
        async def work(plane: DataPlane) -> pb.ModelInferResponse:
            remaining = context.time_remaining()  # the call's gRPC deadline, if it has one
            return infer_response(await plane.infer(infer_request(request, remaining)))

        return await self._call("ModelInfer", context, work, guarded=True)

    async def RepositoryIndex(self, request, context):
        async def work(plane: DataPlane) -> pb.RepositoryIndexResponse:
            message = pb.RepositoryIndexResponse()
            for entry in await plane.repository_index(request.ready):
                message.models.add(**entry)
            return message

        return await self._call("RepositoryIndex", context, work, guarded=True)

    async def RepositoryModelLoad(self, request, context):
        async def work(plane: DataPlane) -> pb.RepositoryModelLoadResponse:
            await plane.load(request.model_name, parameters_from(request.parameters))
            return pb.RepositoryModelLoadResponse()

        return await self._call("RepositoryModelLoad", context, work, guarded=True)

    async def RepositoryModelUnload(self, request, context):
        async def work(plane: DataPlane) -> pb.RepositoryModelUnloadResponse:
            await plane.unload(request.model_name)
            return pb.RepositoryModelUnloadResponse()

        return await self._call("RepositoryModelUnload", context, work, guarded=True)


async def start(
    get_plane: DataPlaneGetter,
    host: str,
    port: int,
    tokens: frozenset[str],
    max_message_bytes: int,
    metrics: Metrics | None,
) -> grpc.aio.Server:
    """A started server on host:port, sharing the port with the other workers."""
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 64 << 20),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(get_plane, tokens, metrics), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    log.info("OIP gRPC listening on %s:%s", host, port)
    return server
