"""Building blocks shared by every dashboard: the datasource, the template variables, query
helpers (rates, ratios, histogram quantiles) and the two panel shapes we use.

Every query goes through these helpers, so the PromQL conventions (`$__rate_interval`, the
`$model`/`$variant` filters) live in one place and the live check can substitute them."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models.common import (
    DataSourceRef,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh

from modelserve_metric_names import predictor as predictor_metrics

# Provisioned with this uid in Kubernetes (deploy/k3s/monitoring) and in the compose setup.
DATASOURCE_UID = "prometheus"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
GRAFANA = DataSourceRef(type_val="grafana", uid="-- Grafana --")
RATE = "$__rate_interval"
MODEL_FILTER = 'model=~"$model", variant=~"$variant"'


def base(uid: str, title: str, description: str, with_model_filter: bool = True):
    """A dashboard with the platform's defaults: last 30 min, 10 s refresh, shared crosshair."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["modelserve", "generated"])
        .time("now-30m", "now")
        .refresh("10s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
    )
    if with_model_filter:
        board = board.with_variable(
            _label_variable("model", "Model", predictor_metrics.MODEL_INFO)
        ).with_variable(_label_variable("variant", "Variant", predictor_metrics.MODEL_INFO))
    return board


def _label_variable(name: str, label: str, metric: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def rate(metric: str, selector: str = MODEL_FILTER) -> str:
    return f"rate({metric}{{{selector}}}[{RATE}])"


def sum_rate(metric: str, by: str, selector: str = MODEL_FILTER) -> str:
    return f"sum by ({by}) ({rate(metric, selector)})"


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, 0 (not 'no data') when nothing happened in the window."""
    return f"({numerator}) / clamp_min({denominator}, 1e-9)"


def quantile(q: float, histogram: str, by: str, selector: str = MODEL_FILTER) -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) ({rate(histogram + '_bucket', selector)}))"


def mean(histogram: str, by: str, selector: str = MODEL_FILTER) -> str:
    return ratio(
        sum_rate(histogram + "_sum", by, selector), sum_rate(histogram + "_count", by, selector)
    )


def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .range()
        .datasource(PROMETHEUS)
    )


def _refs(queries: list[tuple[str, str]]) -> list[prometheus.Dataquery]:
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def graph(
    title: str,
    description: str,
    unit: str,
    queries: list[tuple[str, str]],
    *,
    stacked: bool = False,
    bars: bool = False,
    width: int = 12,
) -> timeseries.Panel:
    """A time series panel: one (PromQL, legend) pair per line."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .min(0)
        .height(8)
        .span(width)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .targets(_refs(queries))
    )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(40)
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    return panel


def single(
    title: str, description: str, unit: str, queries: list[tuple[str, str]], width: int = 6
) -> stat.Panel:
    """A stat panel: the latest value of each query."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .height(5)
        .span(width)
        .targets(_refs(queries))
    )


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)
