"""Serving overview: RED per model, variant, worker and device, in-progress work, shedding,
the gRPC endpoint, and which version each worker serves (with an annotation per swap)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders

from modelserve_dashboards.panels import (
    MODEL_FILTER,
    PROMETHEUS,
    RATE,
    base,
    graph,
    quantile,
    ratio,
    row,
    single,
    sum_rate,
)
from modelserve_metric_names import predictor as m

UID = "modelserve-serving"
# The lifecycle metrics carry model and worker only (no variant or device label).
LIFECYCLE_FILTER = 'model=~"$model"'
# Swaps are rare: their quantiles over the rate interval would be a blip, so a longer window.
SWAP_WINDOW = "10m"


def request_rate():
    return graph(
        "Requests per second by model",
        "Model calls per second (one per HTTP request), every outcome.",
        "reqps",
        [(sum_rate(m.REQUESTS_TOTAL, "model, variant"), "{{model}} {{variant}}")],
    )


def error_ratio():
    failed = sum_rate(m.REQUESTS_TOTAL, "model", f'{MODEL_FILTER}, outcome!="ok"')
    return graph(
        "Error ratio by model",
        "Share of model calls that did not succeed (rejected for overload, failed or cancelled).",
        "percentunit",
        [(ratio(failed, sum_rate(m.REQUESTS_TOTAL, "model")), "{{model}}")],
    )


def latency_quantiles():
    return graph(
        "Model latency p50 / p95 / p99",
        "From a request reaching its model to its rows: queue wait plus batches (server side).",
        "s",
        [
            (quantile(q, m.REQUEST_SECONDS, "model"), f"p{int(q * 100)} {{{{model}}}}")
            for q in (0.5, 0.95, 0.99)
        ],
    )


def http_by_status():
    return graph(
        "HTTP responses by route and status",
        "BentoML's own count of HTTP responses: 4xx are bad input, 429/503 are shed load.",
        "reqps",
        [
            (
                f"sum by (endpoint, http_response_code) (rate({m.HTTP_REQUESTS_TOTAL}[{RATE}]))",
                "{{endpoint}} {{http_response_code}}",
            )
        ],
        stacked=True,
    )


def http_latency():
    return graph(
        "HTTP latency p99 by route",
        "End to end inside the server, including JSON and the web framework.",
        "s",
        [
            (
                f"histogram_quantile(0.99, sum by (le, endpoint) "
                f"(rate({m.HTTP_REQUEST_SECONDS}_bucket[{RATE}])))",
                "p99 {{endpoint}}",
            )
        ],
    )


def requests_by_worker():
    return graph(
        "Requests per second by worker and device",
        "How traffic spreads over the workers (each pinned to a device by the placement plan).",
        "reqps",
        [(sum_rate(m.REQUESTS_TOTAL, "worker, device"), "worker {{worker}} ({{device}})")],
        stacked=True,
    )


def in_progress():
    return graph(
        "In progress",
        "Requests inside a model (queued or running), and HTTP requests in flight per route.",
        "short",
        [
            (f"sum by (model) ({m.REQUESTS_IN_PROGRESS}{{{MODEL_FILTER}}})", "{{model}}"),
            (f"sum by (endpoint) ({m.HTTP_IN_PROGRESS})", "http {{endpoint}}"),
        ],
    )


def rejections():
    return graph(
        "Rejected for overload",
        "Requests answered 429 with Retry-After because the model's queue was full.",
        "reqps",
        [(sum_rate(m.REJECTED_TOTAL, "model, reason"), "{{model}} {{reason}}")],
        bars=True,
    )


def truncations():
    return graph(
        "Texts truncated",
        "Texts longer than the model's maximum, cut (and flagged in the response).",
        "short",
        [(sum_rate(m.TRUNCATED_TOTAL, "model"), "{{model}}")],
        bars=True,
    )


def models_served():
    return single(
        "Workers serving each model",
        "Worker processes that loaded, verified and warmed up the model.",
        "short",
        # count worker slots, not series: a restarted worker has a second pid label
        [
            (
                f"count by (model) (count by (model, worker) ({m.MODEL_INFO}{{{MODEL_FILTER}}}))",
                "{{model}}",
            )
        ],
        width=12,
    )


def load_time():
    return single(
        "Model load time",
        "Pull, verify, load and warm up, per worker (slowest worker).",
        "s",
        [(f"max by (model) ({m.MODEL_LOAD_SECONDS}{{{MODEL_FILTER}}})", "{{model}}")],
        width=12,
    )


def grpc_by_code():
    return graph(
        "gRPC requests by method and code",
        "Open Inference Protocol calls on the gRPC port (BentoML's HTTP metrics do not see "
        "them), by status code: OK, INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE...",
        "reqps",
        [
            (
                f"sum by (method, code) (rate({m.GRPC_REQUESTS_TOTAL}[{RATE}]))",
                "{{method}} {{code}}",
            )
        ],
        stacked=True,
    )


def grpc_latency():
    return graph(
        "gRPC latency p99 by method",
        "From a gRPC call arriving in a worker to its answer.",
        "s",
        [
            (
                f"histogram_quantile(0.99, sum by (le, method) "
                f"(rate({m.GRPC_REQUEST_SECONDS}_bucket[{RATE}])))",
                "p99 {{method}}",
            )
        ],
    )


def versions_served():
    return graph(
        "Version served by model and worker",
        "The registry version each worker answers with (0: none loaded). A release moves "
        "every worker's line; a worker left behind refused the new version (see its log).",
        "none",
        [
            (
                f"max by (model, worker) ({m.MODEL_VERSION}{{{LIFECYCLE_FILTER}}})",
                "{{model}} worker {{worker}}",
            )
        ],
    )


def swaps_by_result():
    return graph(
        "Model swaps by result",
        "Version changes per interval (alias moves, repository loads and unloads): ok, or "
        "failed (the old version kept serving).",
        "short",
        [
            (
                f"sum by (model, result) "
                f"(increase({m.MODEL_SWAPS_TOTAL}{{{LIFECYCLE_FILTER}}}[{RATE}]))",
                "{{model}} {{result}}",
            )
        ],
        bars=True,
    )


def swap_time():
    return graph(
        "Swap time p50 / p99",
        f"From a version change starting to the new copy serving (pull, load, warm-up), "
        f"over the last {SWAP_WINDOW}.",
        "s",
        [
            (
                f"histogram_quantile({q}, sum by (le, model) (increase("
                f"{m.MODEL_SWAP_SECONDS}_bucket{{{LIFECYCLE_FILTER}}}[{SWAP_WINDOW}])))",
                f"p{int(q * 100)} {{{{model}}}}",
            )
            for q in (0.5, 0.99)
        ],
    )


def model_states():
    return graph(
        "Workers in each model state",
        "READY serves; LOADING and UNLOADING are swaps without room for two copies; "
        "UNAVAILABLE failed or was unloaded (reason in POST /v2/repository/index).",
        "short",
        [
            (
                # one per worker slot: a restarted worker's old pid series may linger
                f"sum by (model, state) "
                f"(max by (model, worker, state) ({m.MODEL_STATE}{{{LIFECYCLE_FILTER}}}))",
                "{{model}} {{state}}",
            )
        ],
        stacked=True,
    )


def swap_annotations():
    return (
        builders.AnnotationQuery()
        .name("Model swaps")
        .datasource(PROMETHEUS)
        .enable(True)
        .icon_color("purple")
        # swaps, not version changes: a worker's first load moves its version gauge too
        .expr(
            f"sum by (model, worker) (increase({m.MODEL_SWAPS_TOTAL}"
            f'{{{LIFECYCLE_FILTER}, result="ok"}}[1m])) > 0'
        )
        .step("15s")
        .title_format("{{model}} swapped on worker {{worker}}")
        .text_format("this worker switched to another version (Model versions row)")
        .tag_keys("model,worker")
    )


def dashboard():
    return (
        base(UID, "Predictor: serving overview", "Rate, errors and duration of every model.")
        .annotation(swap_annotations())
        .with_row(row("Traffic"))
        .with_panel(request_rate())
        .with_panel(error_ratio())
        .with_panel(latency_quantiles())
        .with_panel(http_by_status())
        .with_panel(http_latency())
        .with_panel(in_progress())
        .with_row(row("Workers, devices and shedding"))
        .with_panel(requests_by_worker())
        .with_panel(rejections())
        .with_panel(truncations())
        .with_panel(models_served())
        .with_panel(load_time())
        .with_row(row("gRPC (Open Inference Protocol)"))
        .with_panel(grpc_by_code())
        .with_panel(grpc_latency())
        .with_row(row("Model versions"))
        .with_panel(versions_served())
        .with_panel(swaps_by_result())
        .with_panel(swap_time())
        .with_panel(model_states())
    )
