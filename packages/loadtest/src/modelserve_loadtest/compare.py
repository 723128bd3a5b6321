"""`loadtest compare`: the study's Tables 3 and 4 for any set of runs, plus, for each pair,
Mann-Whitney U, Vargha-Delaney A12 / Cliff's delta and bootstrap 95% intervals of the
p50/p95/p99 differences.

Each argument is one variant: a run folder, or a folder of repeated runs (subfolders with a
summary.json). Requests inside a run are correlated (queueing), so with repeated runs the run
is the unit: tests use per-run percentiles and the bootstrap resamples whole runs."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelserve_loadtest.errors import NoRuns
from modelserve_loadtest.records import read_requests
from modelserve_loadtest.stats import a12, cliffs_delta, mann_whitney_p, verdict

QUANTILES = {"p50": 50, "p95": 95, "p99": 99}


@dataclass
class Variant:
    name: str
    runs: list[np.ndarray]  # ok latencies (ms) per run
    summaries: list[dict]

    @property
    def pooled(self) -> np.ndarray:
        return np.concatenate(self.runs) if self.runs else np.array([])


def load_variant(folder: Path) -> Variant:
    if (folder / "summary.json").exists():
        run_dirs = [folder]
    elif folder.is_dir():
        run_dirs = sorted(p for p in folder.iterdir() if (p / "summary.json").exists())
    else:
        run_dirs = []
    if not run_dirs:
        raise NoRuns(f"{folder} holds no run (no summary.json in it or its subfolders)")
    runs, summaries = [], []
    for run in run_dirs:
        records = read_requests(run / "requests.csv")
        runs.append(np.array([r.latency_ms for r in records if r.ok and r.latency_ms is not None]))
        summaries.append(json.loads((run / "summary.json").read_text()))
    return Variant(folder.name, runs, summaries)


def _per_run(variant: Variant, q: float) -> np.ndarray:
    return np.array([np.percentile(run, q) for run in variant.runs if run.size])


def _bootstrap(
    a: Variant, b: Variant, q: float, resamples: int, seed: int
) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)

    def draw(variant: Variant) -> np.ndarray:
        if len(variant.runs) > 1:  # resample whole runs
            picks = rng.integers(0, len(variant.runs), len(variant.runs))
            return np.concatenate([variant.runs[i] for i in picks])
        pooled = variant.pooled
        return rng.choice(pooled, pooled.size)

    for i in range(resamples):
        diffs[i] = np.percentile(draw(b), q) - np.percentile(draw(a), q)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(np.percentile(b.pooled, q) - np.percentile(a.pooled, q)), float(low), float(high)


def compare(variants: list[Variant], resamples: int = 2000, seed: int = 0) -> dict:
    table = []
    for v in variants:
        pooled = v.pooled
        requests = sum(s["requests"] for s in v.summaries)
        failed = sum(s["failures"] + s["dropped"] for s in v.summaries)
        row = {
            "variant": v.name,
            "runs": len(v.runs),
            "requests": requests,
            "failure_rate": failed / requests if requests else 0.0,
            "rps": float(np.mean([s["throughput_rps"] for s in v.summaries])),
        }
        for name, q in QUANTILES.items():
            row[name] = float(np.median(_per_run(v, q))) if pooled.size else None
        row |= {
            "min": float(pooled.min()) if pooled.size else None,
            "avg": float(pooled.mean()) if pooled.size else None,
            "max": float(pooled.max()) if pooled.size else None,
        }
        table.append(row)
    pairs = []
    for a, b in itertools.combinations(variants, 2):
        if not (a.pooled.size and b.pooled.size):
            continue
        per_run = len(a.runs) > 1 and len(b.runs) > 1
        first = _per_run(a, 50) if per_run else a.pooled
        second = _per_run(b, 50) if per_run else b.pooled
        pair = {
            "a": a.name,
            "b": b.name,
            "unit": "run p50" if per_run else "request",
            "mann_whitney_p": mann_whitney_p(first, second),
            "a12": a12(second, first),
            "cliffs_delta": cliffs_delta(second, first),
        }
        for name, q in QUANTILES.items():
            diff, low, high = _bootstrap(a, b, q, resamples, seed)
            pair[name] = {"diff_ms": diff, "ci95": [low, high], "verdict": verdict(low, high)}
        pairs.append(pair)
    return {"table": table, "pairs": pairs}


def markdown(result: dict) -> str:
    return table_markdown(result["table"]) + "\n" + pairs_markdown(result["pairs"])


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_markdown(table: list[dict]) -> str:
    """The study's Tables 3/4 columns, one row per variant."""
    lines = [
        "| variant | runs | requests | p50 | p95 | p99 | min | avg | max | RPS | failures |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(
            f"| {r['variant']} | {r['runs']} | {r['requests']} | {_fmt(r['p50'])} | "
            f"{_fmt(r['p95'])} | {_fmt(r['p99'])} | {_fmt(r['min'])} | {_fmt(r['avg'])} | "
            f"{_fmt(r['max'])} | {_fmt(r['rps'], 2)} | {100 * r['failure_rate']:.2f}% |"
        )
    lines += [
        "",
        "Latency in ms from the intended send time; with repeated runs the percentiles "
        "are medians of per-run values.",
    ]
    return "\n".join(lines) + "\n"


A12_NOTE = (
    "A12 = P(a latency from b exceeds one from a); 0.5 is no effect, about 0.56 "
    "small, 0.64 medium, 0.71 large."
)


def pairs_markdown(pairs: list[dict], note: bool = True) -> str:
    """One row per pair: the tests, the effect sizes and the percentile differences."""
    if not pairs:
        return ""
    lines = [
        "| a -> b | unit | Mann-Whitney p | A12 | Cliff's delta | "
        "p50 diff [95% CI] | p95 diff [95% CI] | p99 diff [95% CI] |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for p in pairs:
        cells = [
            f"{p[q]['diff_ms']:+.1f} [{p[q]['ci95'][0]:+.1f}, {p[q]['ci95'][1]:+.1f}]: "
            f"{p[q]['verdict']}"
            for q in QUANTILES
        ]
        lines.append(
            f"| {p['a']} -> {p['b']} | {p['unit']} | {p['mann_whitney_p']:.3g} | "
            f"{p['a12']:.3f} | {p['cliffs_delta']:+.3f} | " + " | ".join(cells) + " |"
        )
    if note:
        lines += ["", A12_NOTE]
    return "\n".join(lines) + "\n"
