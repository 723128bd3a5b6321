import pytest

from modelserve_chaos.recovery import Request, availability, impact


def steady(
    start: float, end: float, rate: float = 10, latency_s: float = 0.01, ok: bool = True
) -> list[Request]:
    count = int((end - start) * rate)
    return [Request(start + i / rate, start + i / rate + latency_s, ok) for i in range(count)]


def test_an_outage_is_measured_from_injection_to_the_last_failure() -> None:
    # healthy 0-10 s, failing 10-13 s, healthy again after
    requests = steady(0, 10) + steady(10, 13, ok=False) + steady(13, 30)
    readiness = [(float(t), not 10 <= t < 14) for t in range(30)]
    result = impact(
        requests, readiness, injected_at=10.0, window_end=30.0, slo_ms=100, baseline_rate=10
    )
    assert result.failed_requests == 30
    assert result.first_failure == pytest.approx(10.0)
    assert result.last_failure == pytest.approx(12.9)
    assert result.time_to_recovery_s == pytest.approx(4.0)  # readiness came back at 14 s
    assert result.throughput_dip == pytest.approx(1.0)  # a whole second with nothing served
    assert result.p99_after_ms == pytest.approx(10.0)
    assert availability(requests) == pytest.approx(270 / 300)


def test_a_stall_without_failures_recovers_when_p99_is_back_under_the_slo() -> None:
    requests = steady(0, 20) + steady(20, 22, latency_s=0.8) + steady(22, 40)
    result = impact(requests, [], injected_at=20.0, window_end=40.0, slo_ms=100, baseline_rate=10)
    assert result.failed_requests == 0 and result.first_failure is None
    assert result.time_to_recovery_s == pytest.approx(6.0)  # the 21-26 s window still saw it
    assert result.p99_during_ms > 700 and result.p99_after_ms == pytest.approx(10.0)


def test_no_recovery_within_the_window_is_reported_as_none() -> None:
    requests = steady(0, 5) + steady(5, 10, ok=False)
    result = impact(requests, [], injected_at=5.0, window_end=10.0, slo_ms=100, baseline_rate=10)
    assert result.time_to_recovery_s is None and result.failed_requests == 50


def test_a_harmless_disruption_costs_nothing() -> None:
    result = impact(
        steady(0, 20), [(5.0, True)], injected_at=5.0, window_end=20.0, slo_ms=100, baseline_rate=10
    )
    assert result.time_to_recovery_s == 0 and result.failed_requests == 0
    assert result.throughput_dip == pytest.approx(0.0, abs=0.11)
