"""What a run leaves behind: requests.csv (one row per arrival), summary.json, PNG plots and a
short Markdown report linking them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelserve_loadtest.arrivals import GammaArrivals
from modelserve_loadtest.records import Record, write_requests
from modelserve_loadtest.stats import interarrival_summary, latency_summary, slo_attainment


def summarize(
    records: list[Record],
    duration_s: float,
    process: GammaArrivals | None,
    slo_ms: float | None = None,
) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    dropped = sum(1 for r in records if r.error == "dropped")
    failures = sum(1 for r in records if not r.ok and r.error != "dropped")
    latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
    sends = [r.sent for r in records if r.sent is not None]
    summary: dict[str, Any] = {
        "requests": len(records),
        "failures": failures,
        "dropped": dropped,
        "throughput_rps": len(ok) / duration_s if duration_s > 0 else 0.0,
        "nominal_rate": process.rate if process else None,
        "achieved_send_rate": len(sends) / duration_s if duration_s > 0 else 0.0,
        "duration_s": duration_s,
        "latency_ms": latency_summary(latencies),
        "interarrival": interarrival_summary(sends, process),
    }
    if slo_ms is not None:
        summary["slo"] = {
            "threshold_ms": slo_ms,
            "attainment": slo_attainment(latencies, failures + dropped, slo_ms),
        }
    return summary


def plot(records: list[Record], process: GammaArrivals | None, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    start = min(r.intended for r in records)
    sends = np.sort([r.sent for r in records if r.sent is not None])
    gaps = np.diff(sends)
    if gaps.size > 2:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        positive = gaps[gaps > 0]
        # Densities per unit of ln(gap): readable on a log axis even for k < 1, whose linear
        # density is infinite at 0.
        edges = np.linspace(np.log(max(positive.min(), 1e-5)), np.log(positive.max()), 40)
        heights, _ = np.histogram(np.log(positive), bins=edges, density=True)
        axes[0].bar(
            np.exp(edges[:-1]),
            heights,
            width=np.diff(np.exp(edges)),
            align="edge",
            alpha=0.6,
            label="measured gaps",
        )
        if process is not None:
            grid = np.exp(np.linspace(edges[0], edges[-1], 300))
            axes[0].plot(
                grid,
                process.distribution().pdf(grid) * grid,
                "r-",
                label=f"Gamma(k={process.shape:g}) pdf",
            )
            axes[1].plot(grid, process.distribution().cdf(grid), "r-", label="theoretical CDF")
        axes[0].set_ylabel("density per unit of ln(gap)")
        axes[0].set_xscale("log")
        axes[0].set_xlabel("inter-arrival time (s)")
        axes[0].legend()
        axes[1].step(
            np.sort(gaps), np.linspace(0, 1, gaps.size), where="post", label="empirical CDF"
        )
        axes[1].set_xscale("log")
        axes[1].set_xlabel("inter-arrival time (s)")
        axes[1].legend()
        fig.suptitle("Inter-arrival times of the actual sends")
        fig.tight_layout()
        fig.savefig(out / "interarrival.png", dpi=110)
        plt.close(fig)
        files.append("interarrival.png")
    done = [r for r in records if r.finished is not None]
    if done:
        t = np.array([r.intended - start for r in done])
        latency = np.array([r.latency_ms for r in done])
        ok = np.array([r.ok for r in done])
        fig, ax = plt.subplots(figsize=(11, 4))
        ax.scatter(t[ok], latency[ok], s=6, label="ok")
        ax.scatter(t[~ok], latency[~ok], s=10, c="red", label="failed")
        ax.set_yscale("log")
        ax.set_xlabel("intended send time (s)")
        ax.set_ylabel("latency from intended send (ms)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency_over_time.png", dpi=110)
        plt.close(fig)
        files.append("latency_over_time.png")
        finished = np.array([r.finished - start for r in done])
        edges = np.arange(0, finished.max() + 1.0, 1.0)
        fig, ax = plt.subplots(figsize=(11, 4))
        ax.hist(finished[ok], bins=edges, label="ok per second")
        ax.hist(finished[~ok], bins=edges, color="red", label="failed per second")
        if process is not None:
            ax.axhline(process.rate, color="k", ls="--", label="nominal rate")
        ax.set_xlabel("time (s)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput_over_time.png", dpi=110)
        plt.close(fig)
        files.append("throughput_over_time.png")
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.step(np.sort(latency[ok]), np.linspace(0, 1, int(ok.sum())), where="post")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("fraction of requests")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "latency_cdf.png", dpi=110)
        plt.close(fig)
        files.append("latency_cdf.png")
    return files


def write_report(summary: dict[str, Any], plots: list[str], out: Path, title: str) -> None:
    latency = summary["latency_ms"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"# {title}",
        "",
        f"{summary['requests']} arrivals, {summary['failures']} failed, "
        f"{summary['dropped']} dropped; {summary['throughput_rps']:.2f} ok/s "
        f"(nominal {summary['nominal_rate'] or '-'} /s).",
        "",
        "| p50 | p90 | p95 | p99 | p99.9 | min | avg | max |",
        "|---|---|---|---|---|---|---|---|",
        "| "
        + " | ".join(
            fmt(latency[k]) for k in ("p50", "p90", "p95", "p99", "p999", "min", "avg", "max")
        )
        + " |",
        "",
        "Latency in ms, from the intended send time.",
        "",
    ]
    lines += [f"![{name}]({name})" for name in plots]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def save_run(
    records: list[Record],
    summary: dict[str, Any],
    process: GammaArrivals | None,
    out: Path,
    title: str,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_requests(records, out / "requests.csv")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, plot(records, process, out), out, title)
