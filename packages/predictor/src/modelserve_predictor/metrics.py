"""The predictor's Prometheus metrics. Names, label sets and buckets come from
modelserve_metric_names.predictor (shared with the dashboards).

prometheus_client objects are created lazily (`Metrics.create()`), inside the worker, after
BentoML has set PROMETHEUS_MULTIPROC_DIR, so that /metrics aggregates all workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelserve_metric_names.predictor import (
    BATCH_BUCKETS,
    BATCH_SIZE,
    BATCH_TOKENS,
    GRPC_LABELS,
    GRPC_REQUEST_SECONDS,
    GRPC_REQUESTS_TOTAL,
    INFERENCE_SECONDS,
    LATENCY_BUCKETS,
    LIFECYCLE_LABELS,
    MODEL_INFO,
    MODEL_LABELS,
    MODEL_LOAD_SECONDS,
    MODEL_STATE,
    MODEL_SWAP_SECONDS,
    MODEL_SWAPS_TOTAL,
    MODEL_VERSION,
    OUTCOMES,
    QUEUE_DEPTH,
    QUEUE_WAIT_SECONDS,
    REJECTED_TOTAL,
    REQUEST_SECONDS,
    REQUESTS_IN_PROGRESS,
    REQUESTS_TOTAL,
    SWAP_BUCKETS,
    TOKEN_BUCKETS,
    TRUNCATED_TOTAL,
    WORKER_STARTS_TOTAL,
)


@dataclass
class Metrics:
    inference_seconds: Any
    batch_size: Any
    batch_tokens: Any
    queue_wait_seconds: Any
    queue_depth: Any
    rejected_total: Any
    truncated_total: Any
    model_load_seconds: Any
    model_info: Any
    requests_total: Any
    request_seconds: Any
    requests_in_progress: Any
    model_state: Any
    model_version: Any
    swaps_total: Any
    swap_seconds: Any
    grpc_requests_total: Any
    grpc_request_seconds: Any
    worker_starts_total: Any

    @classmethod
    def create(cls) -> Metrics:
        from prometheus_client import Counter, Gauge, Histogram

        return cls(
            inference_seconds=Histogram(
                INFERENCE_SECONDS,
                "Model run time per batch (tokenizer + forward pass)",
                MODEL_LABELS,
                buckets=LATENCY_BUCKETS,
            ),
            batch_size=Histogram(
                BATCH_SIZE, "Texts per executed batch", MODEL_LABELS, buckets=BATCH_BUCKETS
            ),
            batch_tokens=Histogram(
                BATCH_TOKENS,
                "Padded tokens per executed batch",
                MODEL_LABELS,
                buckets=TOKEN_BUCKETS,
            ),
            queue_wait_seconds=Histogram(
                QUEUE_WAIT_SECONDS,
                "Time a text waited before its batch started",
                MODEL_LABELS,
                buckets=LATENCY_BUCKETS,
            ),
            queue_depth=Gauge(
                QUEUE_DEPTH, "Texts waiting for a batch", MODEL_LABELS, multiprocess_mode="livesum"
            ),
            rejected_total=Counter(
                REJECTED_TOTAL, "Requests refused for overload", (*MODEL_LABELS, "reason")
            ),
            truncated_total=Counter(
                TRUNCATED_TOTAL, "Texts truncated to the model maximum", MODEL_LABELS
            ),
            model_load_seconds=Gauge(
                MODEL_LOAD_SECONDS,
                "Time to pull, verify, load and warm up",
                MODEL_LABELS,
                multiprocess_mode="liveall",
            ),
            model_info=Gauge(
                MODEL_INFO,
                "1 for each model served, by worker and device",
                (*MODEL_LABELS, "version", "sha256"),
                multiprocess_mode="liveall",
            ),
            requests_total=Counter(
                REQUESTS_TOTAL,
                "Model calls (one per request) by outcome: " + ", ".join(OUTCOMES),
                (*MODEL_LABELS, "outcome"),
            ),
            request_seconds=Histogram(
                REQUEST_SECONDS,
                "Time from a request reaching its model to its rows (queue wait + batches)",
                MODEL_LABELS,
                buckets=LATENCY_BUCKETS,
            ),
            requests_in_progress=Gauge(
                REQUESTS_IN_PROGRESS,
                "Requests inside a model (queued or running)",
                MODEL_LABELS,
                multiprocess_mode="livesum",
            ),
            model_state=Gauge(
                MODEL_STATE,
                "1 for the state each model is in, per worker",
                (*LIFECYCLE_LABELS, "state"),
                multiprocess_mode="liveall",
            ),
            model_version=Gauge(
                MODEL_VERSION,
                "The version each worker answers with (0: none loaded)",
                LIFECYCLE_LABELS,
                multiprocess_mode="liveall",
            ),
            swaps_total=Counter(
                MODEL_SWAPS_TOTAL,
                "Version changes (load, alias move, unload) by result",
                (*LIFECYCLE_LABELS, "result"),
            ),
            swap_seconds=Histogram(
                MODEL_SWAP_SECONDS,
                "Time from a version change starting to the new copy serving",
                LIFECYCLE_LABELS,
                buckets=SWAP_BUCKETS,
            ),
            grpc_requests_total=Counter(
                GRPC_REQUESTS_TOTAL, "gRPC calls by method and status code", GRPC_LABELS
            ),
            worker_starts_total=Counter(
                WORKER_STARTS_TOTAL, "Worker processes started, per worker slot", ("worker",)
            ),
            grpc_request_seconds=Histogram(
                GRPC_REQUEST_SECONDS,
                "gRPC call duration",
                ("method",),
                buckets=LATENCY_BUCKETS,
            ),
        )


def forget_dead_workers(directory: str | None = None) -> list[int]:
    """Drop the live gauges (queue depth, in progress, model state...) of worker processes
    that no longer exist, so a SIGKILLed worker's last values do not stay in /metrics
    forever; its counters stay (they are history). Returns the pids forgotten."""
    import glob
    import os
    import re

    from prometheus_client import multiprocess

    directory = directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return []
    pids = set()
    for path in glob.glob(os.path.join(directory, "gauge_*_*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if match:
            pids.add(int(match.group(1)))
    dead = [pid for pid in sorted(pids) if not _alive(pid)]
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
        # per-pid gauges (BentoML's last-request time) mean nothing once the pid is gone
        for path in glob.glob(os.path.join(directory, f"gauge_all_{pid}.db")):
            os.remove(path)
    return dead


def _alive(pid: int) -> bool:
    """A zombie (killed, not yet reaped by BentoML's arbiter) counts as dead."""
    import os
    from pathlib import Path

    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
