import numpy as np
import pytest
from scipy import stats

from modelserve_loadtest.arrivals import GammaArrivals, read_trace, scenario, trace_schedule


@pytest.mark.parametrize("shape", [0.5, 0.8, 1.0, 1.2, 4.0])
def test_gaps_have_the_theoretical_mean_variance_and_distribution(shape: float) -> None:
    process = GammaArrivals(shape=shape, rate=5.0)
    gaps = process.gaps(20_000, seed=7)
    assert gaps.mean() == pytest.approx(0.2, rel=0.03)
    assert gaps.var() == pytest.approx(process.variance, rel=0.08)
    assert stats.kstest(gaps, process.distribution().cdf).pvalue > 0.01
    # and it is not some other shape: a KS test against shape*2 must reject
    other = GammaArrivals(shape=shape * 2, rate=5.0).distribution().cdf
    assert stats.kstest(gaps, other).pvalue < 1e-6


def test_schedule_is_seeded_sorted_and_bounded() -> None:
    process = GammaArrivals(shape=0.8, rate=20.0)
    first, again = process.schedule(30.0, seed=1), process.schedule(30.0, seed=1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, process.schedule(30.0, seed=2))
    assert np.all(np.diff(first) >= 0) and first[-1] < 30.0 and first[0] >= 0
    assert len(first) == pytest.approx(600, rel=0.15)


def test_the_study_scenarios() -> None:
    assert scenario("steady") == GammaArrivals(1.0, 0.5)
    assert scenario("moderate").shape == 1.2 and scenario("extreme").shape == 0.8
    assert scenario("extreme", rate=10).mean_gap == pytest.approx(0.1)
    assert scenario("custom", shape=3.0).shape == 3.0
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario("nope")
    with pytest.raises(ValueError):
        GammaArrivals(0, 1)


def test_trace_replay_shifts_and_scales(tmp_path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("timestamp\n100.5\n100.0\n103.0\n")
    offsets = trace_schedule(read_trace(path), time_scale=0.5)
    np.testing.assert_allclose(offsets, [0.0, 0.25, 1.5])
    with pytest.raises(ValueError, match="column"):
        read_trace(path, column="time")
