"""GPU: utilisation, memory and power per GPU from NVIDIA's DCGM exporter, and per predictor
worker by joining the worker's device label (cuda:N) to DCGM's `gpu` label."""

from __future__ import annotations

from modelserve_dashboards.panels import base, graph, quantile, row
from modelserve_metric_names import predictor as m

UID = "modelserve-gpu"

# DCGM exporter's default counters (dcgm-exporter's default-counters.csv).
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
FB_USED = "DCGM_FI_DEV_FB_USED"
POWER = "DCGM_FI_DEV_POWER_USAGE"
ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"


def _per_gpu(metric: str) -> str:
    return f"max by (gpu, modelName) ({metric})"


def _per_worker(metric: str) -> str:
    """DCGM reports per GPU; the predictor says which worker runs on which cuda:N."""
    workers = (
        f"max by (worker, gpu) (label_replace({m.MODEL_INFO}"
        f'{{device=~"cuda:.*"}}, "gpu", "$1", "device", "cuda:([0-9]+)"))'
    )
    return f"{workers} * on (gpu) group_left () max by (gpu) ({metric})"


def utilisation():
    return graph(
        "GPU utilisation",
        "Share of time a kernel was running, per GPU (DCGM_FI_DEV_GPU_UTIL).",
        "percent",
        [(_per_gpu(GPU_UTIL), "GPU {{gpu}} {{modelName}}")],
    )


def engine_active():
    return graph(
        "Graphics engine active",
        "Profiling counter: share of cycles the SMs had work (finer than utilisation).",
        "percentunit",
        [(_per_gpu(ENGINE_ACTIVE), "GPU {{gpu}}")],
    )


def memory_used():
    return graph(
        "GPU memory used",
        "Framebuffer memory in use per GPU (MiB).",
        "decmbytes",
        [(_per_gpu(FB_USED), "GPU {{gpu}}")],
    )


def power():
    return graph(
        "Power draw",
        "Board power per GPU.",
        "watt",
        [(_per_gpu(POWER), "GPU {{gpu}}")],
    )


def utilisation_by_worker():
    return graph(
        "GPU utilisation by predictor worker",
        "The utilisation of the GPU each worker is pinned to (workers sharing a GPU see the same).",
        "percent",
        [(_per_worker(GPU_UTIL), "worker {{worker}} on GPU {{gpu}}")],
    )


def gpu_inference_time():
    return graph(
        "Inference time per batch on GPUs p99",
        "Forward pass per batch on each cuda device, from the predictor.",
        "s",
        [
            (
                quantile(0.99, m.INFERENCE_SECONDS, "device", 'device=~"cuda:.*"'),
                "p99 {{device}}",
            )
        ],
    )


def dashboard():
    return (
        base(
            UID,
            "GPUs: utilisation, memory, power",
            "DCGM exporter per GPU, joined to the predictor's workers.",
            with_model_filter=False,
        )
        .with_row(row("Per GPU"))
        .with_panel(utilisation())
        .with_panel(engine_active())
        .with_panel(memory_used())
        .with_panel(power())
        .with_row(row("Per worker"))
        .with_panel(utilisation_by_worker())
        .with_panel(gpu_inference_time())
    )
