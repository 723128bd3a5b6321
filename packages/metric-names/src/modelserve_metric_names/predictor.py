"""The predictor's metrics (per model and worker), and BentoML's own HTTP metrics."""

PREFIX = "predictor"
MODEL_LABELS = ("model", "variant", "device", "worker")

INFERENCE_SECONDS = f"{PREFIX}_inference_seconds"
BATCH_SIZE = f"{PREFIX}_batch_size"
BATCH_TOKENS = f"{PREFIX}_batch_tokens"
QUEUE_WAIT_SECONDS = f"{PREFIX}_queue_wait_seconds"
QUEUE_DEPTH = f"{PREFIX}_queue_depth"
REJECTED_TOTAL = f"{PREFIX}_rejected_total"
TRUNCATED_TOTAL = f"{PREFIX}_truncated_total"
MODEL_LOAD_SECONDS = f"{PREFIX}_model_load_seconds"
MODEL_INFO = f"{PREFIX}_model_info"
REQUESTS_TOTAL = f"{PREFIX}_requests_total"
REQUEST_SECONDS = f"{PREFIX}_request_seconds"
REQUESTS_IN_PROGRESS = f"{PREFIX}_requests_in_progress"
# BentoML's own HTTP metrics (per route, all workers; bentoml 1.4 `bentoml_service_*`).
HTTP_REQUESTS_TOTAL = "bentoml_service_request_total"
HTTP_REQUEST_SECONDS = "bentoml_service_request_duration_seconds"
HTTP_IN_PROGRESS = "bentoml_service_request_in_progress"

# Outcomes of one model call, as the `outcome` label of REQUESTS_TOTAL.
OUTCOMES = ("ok", "rejected", "error", "cancelled")
# Why a request was refused or dropped, as the `reason` label of REJECTED_TOTAL: the queue's
# hard cap, a wait ahead past the queue's budget (max_queue_wait_ms), an expected wait past
# the request's deadline, a deadline passed while queued.
REJECT_REASONS = ("queue_full", "queue_wait", "deadline", "expired")

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
TOKEN_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)

# Model lifecycle per worker (repository API, alias following).
LIFECYCLE_LABELS = ("model", "worker")
# 1 for the state the model is in, 0 for the others.
MODEL_STATE = f"{PREFIX}_model_state"
MODEL_STATES = ("READY", "LOADING", "UNLOADING", "UNAVAILABLE")
# The version a worker answers with (0 while none is loaded).
MODEL_VERSION = f"{PREFIX}_model_version"
MODEL_SWAPS_TOTAL = f"{PREFIX}_model_swaps_total"
SWAP_RESULTS = ("ok", "failed")
MODEL_SWAP_SECONDS = f"{PREFIX}_model_swap_seconds"
SWAP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# Worker processes started, per worker slot (a counter: a dead process's count stays).
WORKER_STARTS_TOTAL = f"{PREFIX}_worker_starts_total"

# The gRPC endpoint (BentoML's HTTP metrics do not see it).
GRPC_LABELS = ("method", "code")
GRPC_REQUESTS_TOTAL = f"{PREFIX}_grpc_requests_total"
GRPC_REQUEST_SECONDS = f"{PREFIX}_grpc_request_seconds"
