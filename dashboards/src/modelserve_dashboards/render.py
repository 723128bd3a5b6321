"""Drawing each dashboard's panels with matplotlib from the same Prometheus data the live
check queried, so a reviewer sees the dashboards without a Grafana."""

from __future__ import annotations

import math
from pathlib import Path

from modelserve_dashboards.build import load
from modelserve_dashboards.check import QueryResult
from modelserve_dashboards.promql import legend, panels_of

SCALES = {"s": (1000.0, "ms"), "percentunit": (100.0, "%")}


def render_dashboard(
    name: str,
    results: list[QueryResult],
    path: Path,
    events: list[tuple[float, str]] = (),
    unavailable: dict[str, str] | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unavailable = unavailable or {}
    board = load(name)
    panels = [p for p in panels_of(board) if p.get("type") != "row"]
    by_panel: dict[str, list[QueryResult]] = {}
    for result in results:
        if result.query.dashboard == name:
            by_panel.setdefault(result.query.panel, []).append(result)
    times = [float(v[0]) for r in results for s in r.series for v in s.get("values", [])]
    origin = min(times) if times else 0.0
    columns = 2
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(14, 3.3 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        unit = (panel.get("fieldConfig", {}).get("defaults", {}) or {}).get("unit", "")
        scale, shown_unit = SCALES.get(unit, (1.0, unit))
        drawn = 0
        for result in by_panel.get(panel["title"], []):
            for series in result.series:
                values = series.get("values", [])
                if not values:
                    continue
                xs = [float(t) - origin for t, _ in values]
                ys = [float(v) * scale for _, v in values]
                label = legend(result.query.legend, series.get("metric", {}))
                ax.plot(xs, ys, lw=1.3, label=label[:40])
                drawn += 1
        for at, label in events:
            ax.axvline(at - origin, color="red", ls="--", lw=0.9, alpha=0.7)
            ax.text(
                at - origin,
                1.0,
                f" {label}",
                color="red",
                fontsize=7,
                transform=ax.get_xaxis_transform(),
                va="top",
            )
        if not drawn:
            reason = unavailable.get(panel["title"], "no series in this run")
            ax.text(
                0.5,
                0.5,
                f"no data here:\n{reason}",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
                color="gray",
                wrap=True,
            )
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.set_xlabel("seconds into the run", fontsize=8)
            if drawn <= 8:
                ax.legend(fontsize=7, loc="upper left")
        ax.set_title(panel["title"] + (f" ({shown_unit})" if shown_unit else ""), fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(board["title"], fontsize=13)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
