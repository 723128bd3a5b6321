from __future__ import annotations

from modelserve_dashboards.check import rate_interval
from modelserve_dashboards.promql import LABEL_VALUES, legend, substitute


def test_substitute_expands_grafana_variables_as_all_selected() -> None:
    expr = 'sum by (model) (rate(x{model=~"$model", variant=~"${variant}"}[$__rate_interval]))'
    assert substitute(expr, "8s") == 'sum by (model) (rate(x{model=~".*", variant=~".*"}[8s]))'


def test_rate_interval_follows_grafana() -> None:
    assert rate_interval(1.0, 2.0) == "4s"
    assert rate_interval(15.0, 60.0) == "75s"


def test_legend_fills_labels_and_falls_back_to_all_labels() -> None:
    assert legend("p99 {{ model }} {{device}}", {"model": "m", "device": "cpu"}) == "p99 m cpu"
    assert legend("", {"a": "1"}) == "a=1"


def test_label_values_pattern() -> None:
    match = LABEL_VALUES.match("label_values(predictor_model_info, model)")
    assert match and match["metric"] == "predictor_model_info" and match["label"] == "model"
    assert LABEL_VALUES.match("sum(x)") is None
