import pytest

from modelserve_loadtest.sweep import Step, capacity_search, search_capacity


def server_with_capacity(capacity: float):
    """A deterministic stand-in for a measurement: p99 explodes past `capacity` req/s."""
    calls: list[float] = []

    def measure(rate: float) -> Step:
        calls.append(rate)
        p99 = 20.0 if rate <= capacity else 5000.0
        return Step(rate=rate, p99_ms=p99, failure_rate=0.0, requests=int(rate * 10))

    return measure, calls


def test_search_brackets_the_capacity_within_the_precision() -> None:
    measure, calls = server_with_capacity(37.0)
    result = search_capacity(measure, 100.0, start_rate=1, max_rate=1000, precision=0.05)
    assert result.rate is not None and 37 * 0.95 <= result.rate <= 37
    assert calls[:7] == [1, 2, 4, 8, 16, 32, 64]  # doubling, then bisection
    assert len(result.steps) == len(calls) <= 16


def test_search_reports_none_when_even_the_first_rate_fails() -> None:
    measure, _ = server_with_capacity(0.5)
    assert search_capacity(measure, 100.0, start_rate=1, max_rate=10).rate is None


def test_search_stops_at_the_maximum_rate() -> None:
    measure, calls = server_with_capacity(1e9)
    assert search_capacity(measure, 100.0, start_rate=5, max_rate=30).rate == 30
    assert calls == [5, 10, 20, 30]


def test_failures_above_one_percent_fail_a_step() -> None:
    assert not Step(10, 5.0, 0.02, 100).passes(100, 0.01)
    assert Step(10, 5.0, 0.0, 100).passes(100, 0.01)
    assert not Step(10, None, 0.0, 0).passes(100, 0.01)
    with pytest.raises(AttributeError):
        Step(1, 1, 0, 1).rate = 2  # frozen


def test_interleaved_searches_find_what_each_would_alone() -> None:
    """Two generator searches driven one step each in turn give the same answers and the same
    measured rates as two searches run one after the other."""
    capacities = {"slow": 6.0, "fast": 90.0}
    alone = {
        name: search_capacity(
            server_with_capacity(cap)[0], 100.0, start_rate=1, max_rate=500, precision=0.1
        )
        for name, cap in capacities.items()
    }
    measures = {name: server_with_capacity(cap) for name, cap in capacities.items()}
    searches = {
        name: capacity_search(100.0, start_rate=1, max_rate=500, precision=0.1)
        for name in capacities
    }
    pending = {name: next(search) for name, search in searches.items()}
    order, results = [], {}
    while pending:
        for name in list(pending):
            order.append(name)
            try:
                pending[name] = searches[name].send(measures[name][0](pending[name]))
            except StopIteration as done:
                results[name] = done.value
                del pending[name]
    for name in capacities:
        assert results[name].rate == alone[name].rate
        assert [s.rate for s in results[name].steps] == [s.rate for s in alone[name].steps]
    assert order[:4] == ["slow", "fast", "slow", "fast"]  # one step each, in turn
