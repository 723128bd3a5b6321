"""What a disruption cost, from the load test's raw records and readiness samples. Pure
functions: times are seconds on one clock (the records' epoch seconds).

Recovery is complete at the latest of: readiness back for good, the last failed request, and
the end of the last sliding window whose p99 was over the SLO. Neither Chaos Mesh nor Litmus
reports this; the study eyeballed it from plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Request:
    intended: float
    finished: float | None
    ok: bool

    @property
    def latency_ms(self) -> float | None:
        return None if self.finished is None else 1000 * (self.finished - self.intended)


@dataclass(frozen=True)
class Impact:
    injected_at: float
    failed_requests: int
    first_failure: float | None
    last_failure: float | None
    time_to_recovery_s: float | None  # None: not recovered before the window ended
    throughput_dip: float  # 1 - (worst 1 s of ok completions / baseline rate); 0 = no dip
    p99_during_ms: float | None
    p99_after_ms: float | None


def _p99(requests: Sequence[Request]) -> float | None:
    latencies = [r.latency_ms for r in requests if r.ok and r.latency_ms is not None]
    return float(np.percentile(latencies, 99)) if latencies else None


def impact(
    requests: Sequence[Request],
    readiness: Sequence[tuple[float, bool]],
    injected_at: float,
    window_end: float,
    slo_ms: float,
    baseline_rate: float,
    latency_window_s: float = 5.0,
) -> Impact:
    # Requests still open when the next disruption hits belong to that one, not to this.
    inside = [
        r
        for r in requests
        if injected_at <= r.intended < window_end
        and (r.finished is None or r.finished < window_end)
    ]
    failures = sorted(r.intended for r in inside if not r.ok)
    ready_after = [(t, ok) for t, ok in readiness if injected_at <= t < window_end]
    not_ready = [t for t, ok in ready_after if not ok]
    ready_back = injected_at
    if not_ready:
        later_ok = [t for t, ok in ready_after if ok and t > not_ready[-1]]
        ready_back = later_ok[0] if later_ok else float("inf")
    failures_clear = failures[-1] if failures else injected_at
    slow_until = injected_at
    start = injected_at
    while start < window_end:
        chunk = [r for r in inside if start <= r.intended < start + latency_window_s]
        p99 = _p99(chunk)
        if p99 is not None and p99 > slo_ms:
            slow_until = min(start + latency_window_s, window_end)
        start += 1.0
    recovered = max(ready_back, failures_clear, slow_until)
    # recovered only if something succeeded afterwards, inside the window
    proven = any(r.ok and r.intended >= recovered for r in inside)
    ttr = recovered - injected_at if proven and recovered < window_end else None
    horizon = recovered if ttr is not None else window_end
    ok_finishes = np.array([r.finished for r in inside if r.ok and r.finished is not None])
    worst = min(
        (
            int(((ok_finishes >= t) & (ok_finishes < t + 1)).sum())
            for t in np.arange(injected_at, max(horizon, injected_at + 1), 1.0)
        ),
        default=0,
    )
    dip = max(0.0, 1 - worst / baseline_rate) if baseline_rate > 0 else 0.0
    return Impact(
        injected_at=injected_at,
        failed_requests=len(failures),
        first_failure=failures[0] if failures else None,
        last_failure=failures[-1] if failures else None,
        time_to_recovery_s=ttr,
        throughput_dip=dip,
        p99_during_ms=_p99([r for r in inside if r.intended < horizon]),
        p99_after_ms=_p99([r for r in inside if r.intended >= horizon]),
    )


def availability(requests: Sequence[Request]) -> float:
    """Share of scheduled requests that succeeded over the whole run."""
    return sum(r.ok for r in requests) / len(requests) if requests else 0.0
