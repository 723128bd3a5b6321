"""What a load run measures, exported live as Prometheus metrics (`loadtest run
--metrics-port`), so Grafana shows achieved against nominal rate and SLO attainment next to
the predictor's own view. Names live in modelserve_metric_names.loadtest (shared with
the dashboards).

Latency is counted from the intended send time, like the run's records, so the live view and
the final report agree. Free of Locust: importing it never triggers gevent's patching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelserve_loadtest.records import Record
from modelserve_metric_names.loadtest import (
    ARRIVALS_TOTAL,
    IN_FLIGHT,
    LABELS,
    LAG_BUCKETS,
    LATENCY_BUCKETS,
    LATENCY_SECONDS,
    NOMINAL_RATE,
    OUTCOMES,
    RESPONSES_TOTAL,
    SEND_LAG_SECONDS,
    SLO_SECONDS,
    WITHIN_SLO_TOTAL,
)


def outcome(record: Record) -> str:
    if record.sent is None:
        return "dropped"
    if record.ok:
        return "ok"
    if record.status in (429, 503):
        return "rejected"
    return "failed"


@dataclass
class LoadMetrics:
    """One run's metrics in their own registry (never the process-global one)."""

    scenario: str
    slo_s: float | None
    registry: Any
    arrivals: Any
    responses: Any
    latency: Any
    within_slo: Any
    in_flight: Any
    send_lag: Any

    @classmethod
    def create(cls, scenario: str, nominal_rate: float | None, slo_s: float | None) -> LoadMetrics:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry()
        nominal = Gauge(
            NOMINAL_RATE,
            "Mean arrival rate the schedule intends (req/s)",
            LABELS,
            registry=registry,
        )
        if nominal_rate is not None:
            nominal.labels(scenario).set(nominal_rate)
        slo = Gauge(SLO_SECONDS, "Latency objective of this run", LABELS, registry=registry)
        if slo_s is not None:
            slo.labels(scenario).set(slo_s)
        metrics = cls(
            scenario=scenario,
            slo_s=slo_s,
            registry=registry,
            arrivals=Counter(
                ARRIVALS_TOTAL,
                "Arrivals whose intended send time has come",
                LABELS,
                registry=registry,
            ),
            responses=Counter(
                RESPONSES_TOTAL,
                "Finished arrivals by outcome: " + ", ".join(OUTCOMES),
                (*LABELS, "outcome"),
                registry=registry,
            ),
            latency=Histogram(
                LATENCY_SECONDS,
                "Intended send to response, every answered request",
                LABELS,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            within_slo=Counter(
                WITHIN_SLO_TOTAL,
                "Successful requests answered within the SLO",
                LABELS,
                registry=registry,
            ),
            in_flight=Gauge(
                IN_FLIGHT, "Requests sent and not yet answered", LABELS, registry=registry
            ),
            send_lag=Histogram(
                SEND_LAG_SECONDS,
                "How late the generator sent each request (open-loop health: should stay ~0)",
                LABELS,
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
        )
        for name in OUTCOMES:  # every outcome exists from the start, so rates read 0, not gaps
            metrics.responses.labels(scenario, name)
        metrics.within_slo.labels(scenario)
        return metrics

    def arrival(self) -> None:
        self.arrivals.labels(self.scenario).inc()

    def sending(self, record_intended: float, sent: float) -> None:
        self.in_flight.labels(self.scenario).inc()
        self.send_lag.labels(self.scenario).observe(max(0.0, sent - record_intended))

    def finished(self, record: Record) -> None:
        result = outcome(record)
        if result != "dropped":
            self.in_flight.labels(self.scenario).dec()
        self.responses.labels(self.scenario, result).inc()
        if record.finished is not None and record.status:
            latency_s = record.finished - record.intended
            self.latency.labels(self.scenario).observe(latency_s)
            if result == "ok" and self.slo_s is not None and latency_s <= self.slo_s:
                self.within_slo.labels(self.scenario).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Expose /metrics on host:port; returns the server (call .shutdown() to stop)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
