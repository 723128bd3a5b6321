"""Running every dashboard query through a real Prometheus over a time window: does it parse,
and does it return series? The same results feed the rendered PNGs."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelserve_dashboards.build import DASHBOARDS, load
from modelserve_dashboards.errors import PrometheusError
from modelserve_dashboards.prometheus import Client
from modelserve_dashboards.promql import LABEL_VALUES, PanelQuery, queries, substitute


@dataclass
class QueryResult:
    query: PanelQuery
    expr: str  # as sent, variables substituted
    error: str | None = None
    series: list[dict] = field(default_factory=list)  # Prometheus matrix results

    @property
    def has_data(self) -> bool:
        return any(s.get("values") for s in self.series)

    def row(self) -> dict:
        return {
            "dashboard": self.query.dashboard,
            "panel": self.query.panel,
            "ref": self.query.ref,
            "expr": self.expr,
            "error": self.error,
            "series": len(self.series),
            "points": sum(len(s.get("values", [])) for s in self.series),
        }


def rate_interval(scrape_s: float, step_s: float) -> str:
    """Grafana's $__rate_interval: max(4 x scrape interval, step + scrape interval)."""
    return f"{max(4 * scrape_s, step_s + scrape_s):g}s"


def run_query(
    client: Client, query: PanelQuery, start: float, end: float, step: float, scrape_s: float
) -> QueryResult:
    variable = LABEL_VALUES.match(query.expr)
    if variable:  # a template variable: what Grafana's label_values() would list
        result = QueryResult(query, query.expr)
        try:
            values = client.label_values(variable["label"], variable["metric"], start, end)
            result.series = [
                {"metric": {variable["label"]: v}, "values": [[end, v]]} for v in values
            ]
        except PrometheusError as exc:
            result.error = str(exc)
        return result
    expr = substitute(query.expr, rate_interval(scrape_s, step), f"{step:g}s")
    result = QueryResult(query, expr)
    try:
        result.series = client.query_range(expr, start, end, step)
    except PrometheusError as exc:
        result.error = str(exc)
    return result


def check_all(
    client: Client, start: float, end: float, step: float = 2.0, scrape_s: float = 1.0
) -> list[QueryResult]:
    return [
        run_query(client, query, start, end, step, scrape_s)
        for name in DASHBOARDS
        for query in queries(name, load(name))
    ]


def markdown(results: list[QueryResult], unavailable: dict[str, str] | None = None) -> str:
    """One line per panel: whether it parsed and returned data, or why it cannot here."""
    unavailable = unavailable or {}
    by_panel: dict[tuple[str, str], list[QueryResult]] = {}
    for result in results:
        by_panel.setdefault((result.query.dashboard, result.query.panel), []).append(result)
    lines = ["| dashboard | panel | parses | data here |", "|---|---|---|---|"]
    for (board, panel), group in by_panel.items():
        errors = [r.error for r in group if r.error]
        if any(r.has_data for r in group):
            data = (
                "yes (" + ", ".join(f"{r.query.ref}: {len(r.series)} series" for r in group) + ")"
            )
        else:
            data = "no: " + unavailable.get(panel, "no series in this run")
        parses = "no: " + errors[0] if errors else "yes"
        lines.append(f"| {board} | {panel} | {parses} | {data} |")
    return "\n".join(lines) + "\n"
