"""An experiment is data, in the spirit of Chaos Toolkit: a steady-state hypothesis (probes
with tolerances) checked before and after, the load to run meanwhile, a method (actions at
offsets from the start of the load), and rollbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelserve_chaos.errors import ActionFailed, InvalidExperiment


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Probe(_Strict):
    """Reads the world: readiness, error rate or p99 over a window of the running load, or a
    Prometheus query; `tolerance` is what counts as healthy."""

    name: str
    kind: Literal["http", "error_rate", "p99_ms", "prometheus"]
    url: str | None = None
    query: str | None = None
    window_s: float = Field(default=10.0, gt=0)
    tolerance: float | int | list[float] = Field(
        description="http: expected status; error_rate / p99_ms: maximum; prometheus: [lo, hi]"
    )


class Hypothesis(_Strict):
    title: str
    probes: list[Probe] = Field(min_length=1)


class Load(_Strict):
    scenario: str = "steady"
    rate: float = Field(default=10.0, gt=0)
    shape: float | None = None
    duration_s: float = Field(default=120.0, gt=0)
    seed: int = 0
    endpoint: Literal["analyze", "oip"] = "analyze"
    model: str | None = None
    slo_ms: float = Field(default=250.0, gt=0)


class Action(_Strict):
    """Changes the world. `at_s` is the offset from the start of the load; `pause_after_s` a
    wait before the next step."""

    name: str
    action: str = Field(description="one of `chaos list`")
    at_s: float = Field(default=0.0, ge=0)
    arguments: dict[str, Any] = Field(default_factory=dict)
    pause_after_s: float = Field(default=0.0, ge=0)


class Target(_Strict):
    kind: Literal["local", "kubernetes"]
    namespace: str = "default"
    label_selector: str = "app=predictor"
    deployment: str = "predictor"
    url: str = "http://127.0.0.1:3000"


class Experiment(_Strict):
    title: str
    description: str = ""
    target: Target
    steady_state_hypothesis: Hypothesis
    load: Load = Field(default_factory=Load)
    method: list[Action] = Field(min_length=1)
    rollbacks: list[Action] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_actions(self) -> Experiment:
        from modelserve_chaos.actions import ACTIONS, REGISTRY_ACTIONS

        for step in [*self.method, *self.rollbacks]:
            known = ACTIONS.get(self.target.kind, {})
            if step.action not in known:
                raise ValueError(
                    f"action {step.action!r} is not a {self.target.kind} action "
                    f"(have: {', '.join(sorted(known))})"
                )
            if step.action in REGISTRY_ACTIONS:
                # Checked here too, so a typo fails `chaos validate`, not a run half-way.
                from modelserve_chaos.registry_actions import CHECKS

                try:
                    CHECKS[step.action](step.arguments)
                except ActionFailed as exc:
                    raise ValueError(f"{step.name}: {exc}") from None
        return self


def load_experiment(path: Path) -> Experiment:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidExperiment(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidExperiment(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidExperiment(f"{path}: {where}: {first['msg']}") from None
