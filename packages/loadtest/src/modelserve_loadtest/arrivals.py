"""Arrival processes as pure, seeded functions: when each request should leave.

Inter-arrival times are Gamma(shape k, scale m/k) with mean m: k = 1 is Poisson
(exponential gaps), k > 1 is smoother, k < 1 burstier (coefficient of variation 1/sqrt(k)).
The study's scenarios are k = 1, 1.2 and 0.8 with a mean of 2 s."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class GammaArrivals:
    shape: float
    rate: float  # requests per second

    def __post_init__(self) -> None:
        if self.shape <= 0 or self.rate <= 0:
            raise ValueError(f"shape and rate must be positive, got {self.shape}, {self.rate}")

    @property
    def mean_gap(self) -> float:
        return 1.0 / self.rate

    @property
    def variance(self) -> float:
        return self.mean_gap**2 / self.shape

    def distribution(self) -> stats.rv_continuous:
        return stats.gamma(a=self.shape, scale=self.mean_gap / self.shape)

    def gaps(self, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.gamma(self.shape, self.mean_gap / self.shape, size=count)

    def schedule(self, duration_s: float, seed: int) -> np.ndarray:
        """Send offsets (seconds from the start) of every arrival before `duration_s`."""
        rng = np.random.default_rng(seed)
        expected = int(duration_s * self.rate)
        offsets: list[np.ndarray] = []
        total = 0.0
        while True:
            block = (
                np.cumsum(
                    rng.gamma(
                        self.shape, self.mean_gap / self.shape, size=max(64, expected // 2 + 64)
                    )
                )
                + total
            )
            offsets.append(block)
            total = float(block[-1])
            if total >= duration_s:
                break
        times = np.concatenate(offsets)
        return times[times < duration_s]


SCENARIOS: dict[str, float] = {"steady": 1.0, "moderate": 1.2, "extreme": 0.8}
STUDY_MEAN_GAP_S = 2.0


def scenario(name: str, rate: float | None = None, shape: float | None = None) -> GammaArrivals:
    """The study's scenario by name (mean gap 2 s unless `rate` is given; `shape` overrides)."""
    if name not in SCENARIOS and shape is None:
        raise ValueError(
            f"unknown scenario {name!r}: choose {', '.join(SCENARIOS)} or give a shape"
        )
    return GammaArrivals(
        shape=shape if shape is not None else SCENARIOS[name],
        rate=rate if rate is not None else 1.0 / STUDY_MEAN_GAP_S,
    )


def trace_schedule(timestamps: np.ndarray, time_scale: float = 1.0) -> np.ndarray:
    """Offsets from a recorded trace (absolute timestamps in seconds, any origin), sorted and
    shifted to start at 0; time_scale 0.5 replays twice as fast."""
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    ordered = np.sort(np.asarray(timestamps, dtype=float))
    if ordered.size == 0:
        raise ValueError("the trace is empty")
    return (ordered - ordered[0]) * time_scale


def read_trace(path: Path, column: str = "timestamp") -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or column not in reader.fieldnames:
            raise ValueError(f"{path} has no {column!r} column (has {reader.fieldnames})")
        try:
            return np.array([float(row[column]) for row in reader])
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
