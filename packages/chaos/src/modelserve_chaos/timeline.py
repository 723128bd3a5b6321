"""The study's Figure 4, better: throughput, failures and p99 over time with every
disruption marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelserve_chaos.recovery import Request


def plot_timeline(
    requests: Sequence[Request], events: Sequence[dict], slo_ms: float, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(r.intended for r in requests)
    end = max(r.intended for r in requests)
    edges = np.arange(0, end - start + 2, 1.0)
    t = np.array([r.intended - start for r in requests])
    ok = np.array([r.ok for r in requests])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    top.hist(t[ok], bins=edges, label="ok / s", color="tab:blue")
    top.hist(t[~ok], bins=edges, label="failed / s", color="tab:red")
    top.set_ylabel("requests per second")
    top.legend(loc="upper right")
    centers, p99s = [], []
    for left in edges[:-1]:
        window = [
            r.latency_ms
            for r in requests
            if r.ok and r.latency_ms is not None and left <= r.intended - start < left + 5
        ]
        if window:
            centers.append(left + 2.5)
            p99s.append(np.percentile(window, 99))
    bottom.plot(centers, p99s, label="p99 (5 s window)")
    bottom.axhline(slo_ms, color="k", ls="--", label=f"SLO {slo_ms:g} ms")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds since the load started")
    bottom.legend(loc="upper right")
    for event in events:
        x = event["t"] - start
        for axis in (top, bottom):
            axis.axvline(x, color="purple", ls=":")
        top.annotate(
            event["action"],
            (x, top.get_ylim()[1] * 0.95),
            rotation=90,
            va="top",
            fontsize=8,
            color="purple",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
