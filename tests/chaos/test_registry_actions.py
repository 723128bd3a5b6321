"""promote-alias against a real registry on the local filesystem (two small published versions
of one model), through the function, through the runner's executor for both target kinds, and
in the example experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelserve_chaos.actions import ACTIONS
from modelserve_chaos.errors import ActionFailed, InvalidExperiment
from modelserve_chaos.experiment import Action, Experiment, load_experiment
from modelserve_chaos.registry_actions import promote_alias
from modelserve_chaos.runner import Executor
from modelserve_runtime.store import Registry
from tests.runtime.stores import small_version

EXPERIMENTS = Path(__file__).parents[2] / "packages/chaos/experiments"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry.open(str(tmp_path / "registry"))
    small_version(registry, tmp_path / "v1", name="demo")
    small_version(registry, tmp_path / "v2", name="demo", payload=b"version two")
    registry.tag("demo", 1, "production")
    return registry


def experiment(kind: str, arguments: dict) -> Experiment:
    return Experiment.model_validate(
        {
            "title": "release",
            "target": {"kind": kind},
            "steady_state_hypothesis": {
                "title": "t",
                "probes": [{"name": "p", "kind": "error_rate", "tolerance": 0}],
            },
            "method": [{"name": "release", "action": "promote-alias", "arguments": arguments}],
        }
    )


def test_promote_alias_moves_the_alias_and_reports_old_and_new(registry: Registry) -> None:
    event = promote_alias("demo", 2, registry_uri=registry.location)
    assert event == {
        "model": "demo",
        "alias": "production",
        "old_version": 1,
        "new_version": 2,
        "registry": registry.location,
    }
    assert registry.resolve("demo@production") == 2
    first = promote_alias("demo", "1", alias="staging", registry_uri=registry.location)
    assert (first["old_version"], first["new_version"]) == (None, 1)
    assert registry.aliases("demo") == {"production": 2, "staging": 1}


@pytest.mark.parametrize("kind", ["local", "kubernetes"])
def test_both_target_kinds_dispatch_it_to_the_registry_of_the_settings(
    registry: Registry, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_URI", registry.location)
    assert "promote-alias" in ACTIONS[kind]
    chosen = experiment(kind, {"model": "demo", "version": 2})
    event = Executor(chosen)(chosen.method[0])
    assert (event["old_version"], event["new_version"]) == (1, 2)
    assert registry.resolve("demo@production") == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model": "demo", "version": 7}, "demo has no version 7"),
        ({"model": "absent", "version": 1}, "'absent' is not in the registry"),
    ],
)
def test_an_unknown_version_or_model_is_an_action_failure_and_moves_nothing(
    registry: Registry, arguments: dict, message: str
) -> None:
    chosen = experiment("local", {**arguments, "registry_uri": registry.location})
    with pytest.raises(ActionFailed, match=message):
        Executor(chosen)(chosen.method[0])
    assert registry.aliases("demo") == {"production": 1}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model": "demo"}, "promote-alias needs version"),
        ({"version": 2}, "promote-alias needs model"),
        ({"model": "demo", "version": 2, "versoin": 3}, "takes no versoin"),
        ({"model": "demo", "version": "two"}, "invalid version 'two'"),
        ({"model": "demo", "version": 2, "alias": "Prod!"}, "invalid alias"),
    ],
)
def test_bad_arguments_fail_validation_and_the_executor(
    registry: Registry,
    arguments: dict,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGISTRY_URI", registry.location)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "title: x\ntarget: {kind: kubernetes}\nsteady_state_hypothesis: {title: t, "
        "probes: [{name: p, kind: http, tolerance: 200}]}\n"
        f"method: [{{name: release, action: promote-alias, arguments: {arguments}}}]\n"
    )
    with pytest.raises(InvalidExperiment, match=message):
        load_experiment(bad)
    chosen = experiment("local", {"model": "demo", "version": 2})
    step = Action(name="release", action="promote-alias", arguments=arguments)
    with pytest.raises(ActionFailed, match=message):
        Executor(chosen)(step)
    assert registry.aliases("demo") == {"production": 1}


def test_the_release_experiment_validates() -> None:
    release = load_experiment(EXPERIMENTS / "local-release-under-load.yaml")
    assert release.target.kind == "local"
    assert (release.load.endpoint, release.load.model) == ("oip", "sentiment-minilm")
    moves = [(s.at_s, s.action, s.arguments["version"]) for s in release.method]
    assert moves == [(15, "promote-alias", 2), (35, "promote-alias", 1)]
    kinds = {p.kind for p in release.steady_state_hypothesis.probes}
    assert {"error_rate", "p99_ms"} <= kinds
