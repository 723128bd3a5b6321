"""Statistics of a run, from raw per-request records (never Locust's rounded buckets), and
comparisons between runs. Pure functions over arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from modelserve_loadtest.arrivals import GammaArrivals

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    values = np.asarray(latencies_ms, dtype=float)
    if values.size == 0:
        return {**dict.fromkeys(PERCENTILES), "min": None, "avg": None, "max": None}
    summary: dict[str, float | None] = {
        name: float(np.percentile(values, q)) for name, q in PERCENTILES.items()
    }
    summary |= {"min": float(values.min()), "avg": float(values.mean()), "max": float(values.max())}
    return summary


def interarrival_summary(
    send_times: Sequence[float], process: GammaArrivals | None
) -> dict[str, float | None]:
    """Mean and variance of the gaps between *actual* send times, against theory, with the
    Kolmogorov-Smirnov p-value of the gaps against the Gamma distribution."""
    gaps = np.diff(np.sort(np.asarray(send_times, dtype=float)))
    result: dict[str, float | None] = {
        "mean": float(gaps.mean()) if gaps.size else None,
        "variance": float(gaps.var(ddof=1)) if gaps.size > 1 else None,
        "theoretical_mean": None,
        "theoretical_variance": None,
        "ks_pvalue": None,
    }
    if process is not None:
        result["theoretical_mean"] = process.mean_gap
        result["theoretical_variance"] = process.variance
        if gaps.size >= 5:
            result["ks_pvalue"] = float(stats.kstest(gaps, process.distribution().cdf).pvalue)
    return result


def slo_attainment(latencies_ms: Sequence[float], failures: int, threshold_ms: float) -> float:
    """Share of all requests (failures count as misses) answered within the threshold."""
    values = np.asarray(latencies_ms, dtype=float)
    total = values.size + failures
    return float((values <= threshold_ms).sum() / total) if total else 0.0


def a12(first: Sequence[float], second: Sequence[float]) -> float:
    """Vargha-Delaney A12: probability that a value from `first` exceeds one from `second`
    (ties count half). 0.5 = no effect."""
    a, b = np.asarray(first, float), np.asarray(second, float)
    greater = (a[:, None] > b[None, :]).sum()
    ties = (a[:, None] == b[None, :]).sum()
    return float((greater + 0.5 * ties) / (a.size * b.size))


def cliffs_delta(first: Sequence[float], second: Sequence[float]) -> float:
    return 2 * a12(first, second) - 1


def mann_whitney_p(first: Sequence[float], second: Sequence[float]) -> float:
    return float(stats.mannwhitneyu(first, second, alternative="two-sided").pvalue)


def bootstrap_ci(
    first: Sequence[float],
    second: Sequence[float],
    q: float,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Difference of the q-th percentiles (second - first) with a percentile-bootstrap CI."""
    a, b = np.asarray(first, float), np.asarray(second, float)
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for i in range(resamples):
        diffs[i] = np.percentile(rng.choice(b, b.size), q) - np.percentile(rng.choice(a, a.size), q)
    low, high = np.percentile(diffs, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(np.percentile(b, q) - np.percentile(a, q)), float(low), float(high)


def verdict(low: float, high: float) -> str:
    if low <= 0 <= high:
        return "no detectable difference"
    return "second is slower" if low > 0 else "second is faster"
