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
