"""Load test: what the open-loop generator offered, what came back, and SLO attainment,
from the runner's own metrics (`loadtest run --metrics-port`)."""

from __future__ import annotations

from modelserve_dashboards.panels import RATE, base, graph, ratio, row
from modelserve_metric_names import loadtest as m

UID = "modelserve-loadtest"


def _by_scenario(metric: str, selector: str = "") -> str:
    return f"sum by (scenario) (rate({metric}{{{selector}}}[{RATE}]))"


def achieved_vs_nominal():
    return graph(
        "Offered, answered and nominal rate",
        "Nominal: the schedule's mean rate. Offered: arrivals due per second (bursty under "
        "Gamma k<1). Goodput: successful answers per second.",
        "reqps",
        [
            (f"sum by (scenario) ({m.NOMINAL_RATE})", "nominal {{scenario}}"),
            (_by_scenario(m.ARRIVALS_TOTAL), "offered {{scenario}}"),
            (_by_scenario(m.RESPONSES_TOTAL, 'outcome="ok"'), "goodput {{scenario}}"),
        ],
    )


def slo_attainment():
    return graph(
        "SLO attainment",
        "Share of finished arrivals that succeeded within the run's latency objective.",
        "percentunit",
        [
            (
                ratio(_by_scenario(m.WITHIN_SLO_TOTAL), _by_scenario(m.RESPONSES_TOTAL)),
                "{{scenario}}",
            )
        ],
    )


def client_latency():
    def q(p: float) -> str:
        return (
            f"histogram_quantile({p}, sum by (le, scenario) "
            f"(rate({m.LATENCY_SECONDS}_bucket[{RATE}])))"
        )

    return graph(
        "Client latency p50 / p95 / p99 (from intended send)",
        "Open-loop latency as the user sees it, counted from when the request was due.",
        "s",
        [
            (q(0.5), "p50 {{scenario}}"),
            (q(0.95), "p95 {{scenario}}"),
            (q(0.99), "p99 {{scenario}}"),
            (f"max by (scenario) ({m.SLO_SECONDS})", "SLO {{scenario}}"),
        ],
    )


def outcomes():
    return graph(
        "Outcomes",
        "ok; rejected (429/503: shed as designed); failed; dropped (generator's cap was full).",
        "reqps",
        [(f"sum by (outcome) (rate({m.RESPONSES_TOTAL}[{RATE}]))", "{{outcome}}")],
        stacked=True,
    )


def in_flight():
    return graph(
        "In flight at the client",
        "Requests sent and not answered yet: grows without bound when the server falls behind.",
        "short",
        [(f"sum by (scenario) ({m.IN_FLIGHT})", "{{scenario}}")],
    )


def generator_lag():
    return graph(
        "Generator lag p99",
        "How late the generator itself sent requests: must stay near 0 for the figures to be "
        "open-loop (else the load test, not the server, is the bottleneck).",
        "s",
        [
            (
                f"histogram_quantile(0.99, sum by (le, scenario) "
                f"(rate({m.SEND_LAG_SECONDS}_bucket[{RATE}])))",
                "p99 {{scenario}}",
            )
        ],
    )


def dashboard():
    return (
        base(
            UID,
            "Load test: open-loop runs",
            "The load generator's own measurements (loadtest run --metrics-port).",
            with_model_filter=False,
        )
        .with_row(row("Rate and objective"))
        .with_panel(achieved_vs_nominal())
        .with_panel(slo_attainment())
        .with_panel(client_latency())
        .with_panel(outcomes())
        .with_row(row("Generator health"))
        .with_panel(in_flight())
        .with_panel(generator_lag())
    )
