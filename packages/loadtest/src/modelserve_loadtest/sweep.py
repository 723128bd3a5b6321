"""Capacity search, like MLPerf's Server scenario: the largest open-loop arrival rate whose p99
stays under the SLO with under 1% failures. Ramp up by doubling until a step fails, then bisect
between the last passing and the first failing rate."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    rate: float
    p99_ms: float | None
    failure_rate: float
    requests: int

    def passes(self, slo_p99_ms: float, max_failure_rate: float) -> bool:
        return (
            self.p99_ms is not None
            and self.p99_ms <= slo_p99_ms
            and self.failure_rate < max_failure_rate
        )


@dataclass
class Capacity:
    rate: float | None  # None: even the lowest rate failed
    steps: list[Step]

    def as_dict(self) -> dict:
        return {"capacity_rps": self.rate, "steps": [asdict(s) for s in self.steps]}


def capacity_search(
    slo_p99_ms: float,
    *,
    start_rate: float,
    max_rate: float,
    precision: float = 0.1,
    max_failure_rate: float = 0.01,
    max_steps: int = 16,
) -> Generator[float, Step, Capacity]:
    """The search as a generator: it yields the next rate to measure, is sent that rate's Step,
    and returns the Capacity. A benchmark can then interleave the searches of several systems,
    one step each in turn, so that the machine's drift hits all of them alike.

    `precision`: stop when the failing rate is within this fraction of the passing one."""
    steps: list[Step] = []

    def passes(step: Step) -> bool:
        steps.append(step)
        return step.passes(slo_p99_ms, max_failure_rate)

    rate = start_rate
    if not passes((yield rate)):
        return Capacity(None, steps)
    passing, failing = rate, None
    while failing is None and len(steps) < max_steps:
        rate = min(rate * 2, max_rate)
        if passes((yield rate)):
            passing = rate
            if rate >= max_rate:
                return Capacity(passing, steps)
        else:
            failing = rate
    while (
        failing is not None and failing - passing > precision * passing and len(steps) < max_steps
    ):
        middle = (passing + failing) / 2
        if passes((yield middle)):
            passing = middle
        else:
            failing = middle
    return Capacity(passing, steps)


def search_capacity(
    measure: Callable[[float], Step], slo_p99_ms: float, **options: Any
) -> Capacity:
    """Run one search to the end, measuring each rate with `measure`; `options` are
    capacity_search's (start_rate, max_rate, precision, ...)."""
    search = capacity_search(slo_p99_ms, **options)
    rate = next(search)
    while True:
        try:
            rate = search.send(measure(rate))
        except StopIteration as done:
            return done.value
