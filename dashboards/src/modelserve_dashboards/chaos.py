"""Chaos: when each disruption hit (annotations), whether the target stayed ready, what the
users lost, how long recovery took; with the cluster's view (pod restarts, replicas) when
kube-state-metrics is scraped."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders

from modelserve_dashboards.panels import (
    GRAFANA,
    PROMETHEUS,
    RATE,
    base,
    graph,
    quantile,
    row,
    single,
)
from modelserve_metric_names import chaos as c
from modelserve_metric_names import loadtest as lt
from modelserve_metric_names import predictor as m

UID = "modelserve-chaos"
NAMESPACE = "modelserve"  # deploy/k3s puts the predictor here
DEPLOYMENT = "predictor"


def disruptions():
    return graph(
        "Disruptions injected",
        "Actions the chaos runner executed (chaos run --metrics-port), by action and result.",
        "short",
        [
            (
                f"sum by (action, result) (increase({c.DISRUPTIONS_TOTAL}[{RATE}]))",
                "{{action}} {{result}}",
            )
        ],
        bars=True,
    )


def target_ready():
    return graph(
        "Target ready (/readyz)",
        "1 while the predictor answered /readyz with 200, sampled every 0.5 s by the runner.",
        "short",
        [(f"min by (experiment) ({c.TARGET_READY})", "{{experiment}}")],
    )


def failed_requests():
    return graph(
        "Requests lost under disruption",
        "Load-generator outcomes other than ok, per second.",
        "reqps",
        [
            (
                f'sum by (outcome) (rate({lt.RESPONSES_TOTAL}{{outcome!="ok"}}[{RATE}]))',
                "{{outcome}}",
            )
        ],
        stacked=True,
    )


def client_p99():
    return graph(
        "Client p99 under disruption",
        "Open-loop latency from intended send time, with the run's SLO.",
        "s",
        [
            (quantile(0.99, lt.LATENCY_SECONDS, "", ""), "p99"),
            (f"max({lt.SLO_SECONDS})", "SLO"),
        ],
    )


def worker_processes():
    # Each worker process counts its own start; a dead process's count stays in the
    # multiprocess folder, so the sum per slot is the processes that have served it. A step up
    # is a worker that died and came back.
    return graph(
        "Worker processes started",
        "Processes that have served each worker slot: +1 at every worker restart.",
        "short",
        [
            (
                f"sum by (worker) ({m.WORKER_STARTS_TOTAL})",
                "worker {{worker}}",
            )
        ],
    )


def recovery_time():
    return single(
        "Time to recovery",
        "Injection until ready, error-free and within the SLO again (set when the run ends).",
        "s",
        [(f"max by (name) ({c.RECOVERY_SECONDS})", "{{name}}")],
        width=12,
    )


def pod_restarts():
    return graph(
        "Container restarts (kube-state-metrics)",
        "Restarts of the predictor's containers in the last 5 minutes.",
        "short",
        [
            (
                f"sum by (pod) (increase(kube_pod_container_status_restarts_total"
                f'{{namespace="{NAMESPACE}"}}[5m]))',
                "{{pod}}",
            )
        ],
        bars=True,
    )


def available_replicas():
    selector = f'namespace="{NAMESPACE}", deployment="{DEPLOYMENT}"'
    return graph(
        "Replicas: desired and available (kube-state-metrics)",
        "A deleted pod or ReplicaSet shows as available < desired until it is replaced.",
        "short",
        [
            (f"max(kube_deployment_spec_replicas{{{selector}}})", "desired"),
            (f"max(kube_deployment_status_replicas_available{{{selector}}})", "available"),
        ],
    )


def annotations_from_runner():
    return (
        builders.AnnotationQuery()
        .name("Chaos actions (Grafana annotations)")
        .datasource(GRAFANA)
        .enable(True)
        .icon_color("red")
        .target(builders.AnnotationTarget().type("tags").tags(["chaos"]).match_any(True).limit(200))
    )


def annotations_from_metrics():
    return (
        builders.AnnotationQuery()
        .name("Chaos actions (from chaos_* metrics)")
        .datasource(PROMETHEUS)
        .enable(True)
        .icon_color("orange")
        .expr(f'sum by (action) (increase({c.DISRUPTIONS_TOTAL}{{result="ok"}}[{RATE}])) > 0')
    )


def dashboard():
    return (
        base(
            UID,
            "Chaos: disruptions under load",
            "Disruptions (annotations), readiness, lost requests and recovery.",
            with_model_filter=False,
        )
        .annotation(annotations_from_runner())
        .annotation(annotations_from_metrics())
        .with_row(row("What users saw"))
        .with_panel(disruptions())
        .with_panel(target_ready())
        .with_panel(failed_requests())
        .with_panel(client_p99())
        .with_panel(worker_processes())
        .with_panel(recovery_time())
        .with_row(row("What the cluster did"))
        .with_panel(pod_restarts())
        .with_panel(available_replicas())
    )
