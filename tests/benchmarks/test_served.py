"""The served benchmarks' pieces: the naive baseline service as a real BentoML server driven by
a real `loadtest run`, the interleaving of capacity searches, and the regimes of the
service-level tables."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from benchmarks import serving
from benchmarks.service_level import interarrival_cv, plan_regimes
from benchmarks.serving import interleave
from modelserve_loadtest.sweep import Step, capacity_search, search_capacity
from tests.model_registry.conftest import LABELS, make_classifier


def test_baseline_serves_the_predictors_body_and_a_load_run_measures_it(tmp_path: Path) -> None:
    system = serving.baseline(make_classifier(tmp_path / "hf"))
    serving.start(system, tmp_path / "logs", timeout_s=240)
    pid = system.process.pid
    try:
        answer = httpx.post(f"{system.host}/analyze-sentiment", json={"text": "great"}, timeout=30)
        assert answer.status_code == 200
        assert answer.json()["label"] in LABELS
        assert set(answer.json()["scores"]) == set(LABELS)
        summary = serving.load_run(system, tmp_path / "run", rate=10, duration_s=3, seed=1)
    finally:
        serving.stop(system)
    assert 10 <= summary["requests"] <= 60  # a Poisson draw of 10/s over 3 s
    assert summary["failures"] == summary["dropped"] == 0
    assert summary["latency_ms"]["p99"] > 0
    step = serving.step_from_summary(10, summary)
    assert (step.requests, step.failure_rate) == (summary["requests"], 0.0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # stop() took the whole session down


def test_dropped_arrivals_count_as_failures() -> None:
    summary = {"requests": 200, "failures": 1, "dropped": 3, "latency_ms": {"p99": 80.0}}
    step = serving.step_from_summary(50, summary)
    assert step.failure_rate == pytest.approx(0.02)
    assert not step.passes(250, 0.01)


def stand_in(capacity: float, log: list):
    def measure(system: str, rate: float) -> Step:
        log.append((system, rate))
        p99 = 40.0 + 150.0 * rate / capacity if rate <= capacity else 5000.0
        return Step(rate=rate, p99_ms=p99, failure_rate=0.0, requests=100)

    return measure


def test_interleaving_shares_one_systems_steps_between_its_slos() -> None:
    capacities = {"slow": 10.0, "fast": 200.0}
    log: list[tuple[str, float]] = []
    measures = {name: stand_in(cap, log) for name, cap in capacities.items()}
    searches = {
        (name, slo): capacity_search(slo, start_rate=1, max_rate=1000, precision=0.1)
        for name in capacities
        for slo in (100.0, 250.0)
    }
    results = interleave(searches, lambda system, rate: measures[system](system, rate))
    measured = list(log)
    for name in capacities:
        for slo in (100.0, 250.0):
            alone = search_capacity(
                lambda rate, n=name: measures[n](n, rate),
                slo,
                start_rate=1,
                max_rate=1000,
                precision=0.1,
            )
            assert results[(name, slo)].rate == alone.rate
    assert len(measured) == len(set(measured)), "a rate was measured twice for one system"
    assert [system for system, _ in measured[:4]] == ["slow", "fast", "slow", "fast"]
    # the 100 ms search stops below the 250 ms one: p99 crosses 100 ms at 40% of capacity
    assert results[("slow", 100.0)].rate < results[("slow", 250.0)].rate <= 10


def test_regimes_follow_the_measured_capacities() -> None:
    regimes = plan_regimes(12.0, 96.0, 0.8)
    assert regimes == {
        "study": {"baseline": 0.5, "predictor": 0.5},
        "same-rate": {"baseline": 9.6, "predictor": 9.6},
        "own-capacity": {"baseline": 9.6, "predictor": 76.8},
    }
    assert list(plan_regimes(None, 96.0, 0.8)) == ["study"]
    assert list(plan_regimes(12.0, None, 0.8)) == ["study", "same-rate"]


def test_interarrival_cv_against_the_gammas() -> None:
    # Gamma with shape k has CV 1/sqrt(k): 1 for Poisson, 1.118 for k=0.8
    gaps = {"mean": 2.0, "variance": 5.0, "theoretical_mean": 2.0, "theoretical_variance": 5.0}
    cv, theory = interarrival_cv(gaps)
    assert cv == pytest.approx(theory) == pytest.approx(1 / 0.8**0.5)
    assert interarrival_cv({"mean": None, "variance": None}) == (None, None)
