"""Every error the predictor answers with. Each class carries its HTTP status and its gRPC
status code (one table, read by both adapters); the REST adapter turns any of them into a
JSON body `{"error": ..., "type": ...}` (and Retry-After for overload and not-ready), the
gRPC adapter into a status with the same message (and google.rpc.RetryInfo), so bad input is
a clear 4xx / INVALID_ARGUMENT and never a 500 / INTERNAL."""

from __future__ import annotations


class PredictorError(Exception):
    """Root of all predictor errors: 500 unless a subclass says otherwise."""

    http_status = 500
    grpc_code = "INTERNAL"  # a grpc.StatusCode name
    exit_code = 1
    retry_after_s: float | None = None

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, str]:
        return {"error": str(self), "type": type(self).__name__}


class BadRequest(PredictorError):
    """Malformed or invalid input (400)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"
    exit_code = 2


class Unauthorized(PredictorError):
    """Missing or wrong bearer token on an inference route (401)."""

    http_status = 401
    grpc_code = "UNAUTHENTICATED"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class ModelNotFound(PredictorError):
    """The request names a model this predictor does not serve (404)."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class RequestTimeout(PredictorError):
    """The request body, or its line and headers, stopped arriving (408)."""

    http_status = 408
    grpc_code = "DEADLINE_EXCEEDED"


class HeadersTooLarge(PredictorError):
    """A request line and headers past the HTTP parser's buffer (431)."""

    http_status = 431
    grpc_code = "INVALID_ARGUMENT"


class PayloadTooLarge(PredictorError):
    """Request body above the configured maximum (413)."""

    http_status = 413
    grpc_code = "INVALID_ARGUMENT"


class UnsupportedMediaType(PredictorError):
    """The inference routes take JSON only (415)."""

    http_status = 415
    grpc_code = "INVALID_ARGUMENT"


class Unprocessable(PredictorError):
    """A text the model fails on even alone (its batch was retried text by text) (422)."""

    http_status = 422
    grpc_code = "INVALID_ARGUMENT"


class Overloaded(PredictorError):
    """The model's queue is full: shed now rather than queue without bound (429)."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after_s)))}


class DeadlineExceeded(PredictorError):
    """The request's deadline passed while it waited: dropped before it was computed (503)."""

    http_status = 503
    grpc_code = "DEADLINE_EXCEEDED"
    retry_after_s = 1.0

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class NotReady(PredictorError):
    """The model is still loading or failed to load (503)."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    exit_code = 3
    retry_after_s = 5.0

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(round(self.retry_after_s))}


class LoadRefused(PredictorError):
    """A repository load that cannot be done (fails verification, does not fit the device,
    failed to warm up); what was serving goes on serving (409)."""

    http_status = 409
    grpc_code = "FAILED_PRECONDITION"


class ConfigError(PredictorError):
    """The configuration cannot be served (bad GPU map, unknown variant for the device)."""

    exit_code = 2


class InternalError(PredictorError):
    """A fault of ours, not of the request (500): logged with its traceback, answered in the
    documented JSON form like every other error."""
