"""What a chaos run knows, exported live as Prometheus metrics (`chaos run --metrics-port`):
when each disruption was injected, whether the target answered /readyz, and, once the run is
measured, how long each disruption took to recover from. Names live in
modelserve_metric_names.chaos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelserve_metric_names.chaos import (
    DISRUPTIONS_TOTAL,
    LABELS,
    RECOVERY_SECONDS,
    TARGET_READY,
)


@dataclass
class ChaosMetrics:
    experiment: str
    registry: Any
    disruptions: Any
    target_ready: Any
    recovery: Any

    @classmethod
    def create(cls, experiment: str, actions: list[str] = ()) -> ChaosMetrics:
        """`actions`: the method's actions, whose counters start at 0 so that the first
        injection shows as an increase (a counter born at 1 has no increase to show)."""
        from prometheus_client import CollectorRegistry, Counter, Gauge

        registry = CollectorRegistry()
        metrics = cls(
            experiment=experiment,
            registry=registry,
            disruptions=Counter(
                DISRUPTIONS_TOTAL,
                "Disruptions injected, by action and result (ok: the action ran)",
                (*LABELS, "action", "result"),
                registry=registry,
            ),
            target_ready=Gauge(
                TARGET_READY,
                "1 while the target answers /readyz with 200",
                LABELS,
                registry=registry,
            ),
            recovery=Gauge(
                RECOVERY_SECONDS,
                "Injection until ready, error-free and within the SLO again (after the run)",
                (*LABELS, "action", "name"),
                registry=registry,
            ),
        )
        for action in actions:
            for result in ("ok", "failed"):
                metrics.disruptions.labels(experiment, action, result)
        return metrics

    def disrupted(self, action: str, ok: bool) -> None:
        self.disruptions.labels(self.experiment, action, "ok" if ok else "failed").inc()

    def ready(self, ok: bool) -> None:
        self.target_ready.labels(self.experiment).set(1 if ok else 0)

    def recovered(self, action: str, name: str, seconds: float | None) -> None:
        # NaN for "never recovered": the series exists, and no panel mistakes it for 0 s.
        value = float("nan") if seconds is None else seconds
        self.recovery.labels(self.experiment, action, name).set(value)

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
