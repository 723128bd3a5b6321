import numpy as np
import pytest

from modelserve_loadtest.arrivals import GammaArrivals
from modelserve_loadtest.stats import (
    a12,
    bootstrap_ci,
    cliffs_delta,
    interarrival_summary,
    latency_summary,
    mann_whitney_p,
    slo_attainment,
    verdict,
)


def test_latency_summary_against_hand_computed_values() -> None:
    summary = latency_summary([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert summary["p50"] == pytest.approx(55.0)
    assert summary["p90"] == pytest.approx(91.0)
    assert summary["p99"] == pytest.approx(99.1)
    assert (summary["min"], summary["avg"], summary["max"]) == (10, 55, 100)
    assert latency_summary([])["p99"] is None


def test_slo_attainment_counts_failures_as_misses() -> None:
    assert slo_attainment([10, 20, 300], failures=1, threshold_ms=100) == pytest.approx(0.5)


def test_interarrival_summary_accepts_the_right_process_only() -> None:
    process = GammaArrivals(shape=0.8, rate=10)
    sends = np.cumsum(process.gaps(3000, seed=3))
    good = interarrival_summary(sends, process)
    assert good["mean"] == pytest.approx(0.1, rel=0.05)
    assert good["theoretical_variance"] == pytest.approx(0.0125)
    assert good["ks_pvalue"] > 0.01
    evenly = np.arange(3000) * 0.1
    assert interarrival_summary(evenly, process)["ks_pvalue"] < 1e-6


def test_effect_sizes_and_the_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    fast, slow = rng.normal(100, 10, 400), rng.normal(130, 10, 400)
    assert a12(slow, fast) > 0.95 and cliffs_delta(slow, fast) > 0.9
    assert a12([1, 2], [1, 2]) == 0.5
    assert mann_whitney_p(fast, slow) < 1e-10
    diff, low, high = bootstrap_ci(fast, slow, 50, resamples=500)
    assert low < diff < high and low > 20
    assert verdict(low, high) == "second is slower"
    _, same_low, same_high = bootstrap_ci(fast, rng.normal(100, 10, 400), 50, 500)
    assert verdict(same_low, same_high) == "no detectable difference"
