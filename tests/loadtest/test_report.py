import pytest

from modelserve_loadtest.arrivals import GammaArrivals
from modelserve_loadtest.records import Record
from modelserve_loadtest.report import summarize


def test_summary_of_a_small_hand_computed_run() -> None:
    records = [
        Record(0, 100.0, 100.0, 100.010, 200, None),  # 10 ms
        Record(1, 100.5, 100.5, 100.530, 200, None),  # 30 ms
        Record(2, 101.0, 101.2, 101.250, 200, None),  # 250 ms from the intended time
        Record(3, 101.5, 101.5, 101.520, 503, "HTTP 503"),
        Record(4, 102.0, None, None, 0, "dropped"),
    ]
    summary = summarize(records, duration_s=2.0, process=GammaArrivals(1.0, 2.0), slo_ms=100)
    assert (summary["requests"], summary["failures"], summary["dropped"]) == (5, 1, 1)
    assert summary["throughput_rps"] == pytest.approx(3 / 2.0)
    assert summary["nominal_rate"] == 2.0
    latency = summary["latency_ms"]
    assert latency["p50"] == pytest.approx(30.0)
    assert (latency["min"], latency["max"]) == (pytest.approx(10.0), pytest.approx(250.0))
    assert latency["avg"] == pytest.approx(290 / 3)
    assert summary["slo"]["attainment"] == pytest.approx(2 / 5)  # failures and drops miss
    gaps = [0.5, 0.7, 0.3]  # between the four actual sends
    assert summary["interarrival"]["mean"] == pytest.approx(sum(gaps) / 3)
    assert summary["interarrival"]["theoretical_mean"] == 0.5
