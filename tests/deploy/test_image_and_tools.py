"""The container image's entry point, and the commands the Jobs, the chaos helper and the
experiments run: each matches a real CLI, Service and RBAC rule."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from modelserve_chaos.experiment import load_experiment
from tests.deploy.conftest import ROOT, containers, find, pod_spec

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ACTIONS = (
    ROOT / "packages" / "chaos" / "src" / "modelserve_chaos" / "kubernetes_target" / "actions.py"
)
EXPERIMENTS = ROOT / "packages" / "chaos" / "experiments"


def instructions(stage: int | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined; `stage` picks
    one build stage (-1: the final image)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    parsed = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for name, args in parsed:
        if name.upper() == "FROM":
            stages.append([])
        stages[-1].append((name.upper(), args))
    return [i for s in stages for i in s] if stage is None else stages[stage]


def test_image_entry_point_is_the_predictor_cli() -> None:
    final = instructions(-1)
    (entry,) = [json.loads(args) for name, args in final if name == "ENTRYPOINT"]
    assert not [name for name, _ in final if name == "CMD"]
    program, *arguments = entry
    scripts = tomllib.loads((ROOT / "packages/predictor/pyproject.toml").read_text())["project"][
        "scripts"
    ]
    assert program in scripts
    assert arguments == ["serve"]
    # the console script the image runs accepts exactly these arguments
    done = subprocess.run(
        [str(Path(sys.executable).parent / program), *arguments, "--help"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (user,) = [args for name, args in final if name == "USER"]
    assert user.split(":")[0] == "10001"
    env = " ".join(args for name, args in final if name == "ENV")
    assert "PREDICTOR_HOST=0.0.0.0" in env and "/app/.venv/bin" in env


def test_image_installs_the_locked_workspace() -> None:
    build = instructions(0)
    runs = " ".join(args for name, args in build if name == "RUN")
    assert "uv sync --locked --no-dev --package modelserve-predictor" in runs
    copies = " ".join(args for name, args in build if name == "COPY")
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = [p.parent for g in workspace["members"] for p in ROOT.glob(f"{g}/pyproject.toml")]
    assert members
    for member in members:  # the dependency layer needs every member's pyproject
        assert f"{member.relative_to(ROOT)}/pyproject.toml" in copies, member


def _scripts(*members: str) -> set[str]:
    return {
        name
        for member in members
        for name in tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"].get(
            "scripts", {}
        )
    }


def test_workloads_run_programs_their_image_has(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """modelserve/predictor has the predictor only (see test_images); modelserve/tools has
    every workspace CLI."""
    programs = {
        "modelserve/predictor:latest": _scripts(
            "packages/predictor", "packages/runtime", "packages/metric-names"
        ),
        "modelserve/tools:latest": _scripts(
            *(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("packages/*/pyproject.toml")),
            "dashboards",
        ),
    }
    seen = set()
    for build in ("cpu", "tools", "chaos"):
        for doc in rendered[build]:
            if doc["kind"] not in ("Deployment", "Job", "Pod"):
                continue
            spec = doc["spec"] if doc["kind"] == "Pod" else pod_spec(doc)
            for container in containers(spec):
                if not container["image"].startswith("modelserve/"):
                    continue
                program = (container.get("command") or ["predictor"])[0]
                seen.add(container["image"])
                assert (
                    program in ("sh", "sleep", "python") or program in programs[container["image"]]
                ), (
                    container["image"],
                    program,
                )
    assert seen == set(programs)


def test_load_runner_job_targets_the_service_and_exposes_metrics(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    job = find(rendered["tools"], "Job", "load-runner")
    (container,) = pod_spec(job)["containers"]
    program, command, *arguments = container["command"]
    assert (program, command) == ("loadtest", "run")
    args = parse_loadtest_args([command, *arguments])
    service = find(rendered["cpu"], "Service", "predictor")
    port = service["spec"]["ports"][0]["port"]
    assert args.host == f"http://{service['metadata']['name']}.modelserve.svc:{port}"
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == args.metrics_port == 9646
    assert args.metrics_host == "0.0.0.0"


def parse_loadtest_args(argv: list[str]) -> argparse.Namespace:
    """The arguments as `loadtest` parses them, in a subprocess: importing it here would let
    Locust's gevent monkey-patch the test session."""
    script = (
        "import json, sys\n"
        "from modelserve_loadtest.cli import build_parser\n"
        "from modelserve_loadtest.settings import LoadtestSettings\n"
        "args = build_parser(LoadtestSettings()).parse_args(sys.argv[1:])\n"
        "print(json.dumps({k: v for k, v in vars(args).items() if k != 'handler'}, default=str))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return argparse.Namespace(**json.loads(done.stdout.splitlines()[-1]))


def required_rules() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every Kubernetes API call in actions.py."""
    calls = re.findall(r"clients\.(apps|core)\.(\w+)", ACTIONS.read_text())
    assert calls
    rules = set()
    for api, method in calls:
        verb, _, rest = method.partition("_namespaced_")
        resource, scale, _ = rest.partition("_scale")
        plural = resource.replace("_", "") + "s" + ("/scale" if scale else "")
        rules.add(("apps" if api == "apps" else "", plural, verb))
    return rules


def test_chaos_runner_role_grants_exactly_the_calls_of_the_actions(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["chaos"]
    role = find(docs, "Role", "chaos-runner")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == required_rules()
    binding = find(docs, "RoleBinding", "chaos-runner")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = find(docs, "ServiceAccount", "chaos-runner")
    helper = find(docs, "Pod", "chaos-node-helper")
    assert helper["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account["metadata"]["name"]]
    assert helper["spec"]["hostPID"] is True  # nsenter --target 1 reaches the node


@pytest.mark.parametrize(
    ("experiment", "overlay"),
    [("k3s-study-resilience.yaml", "cpu"), ("k3s-ha-resilience.yaml", "ha")],
)
def test_kubernetes_experiments_target_the_deployed_predictor(
    rendered: dict[str, list[dict[str, Any]]], experiment: str, overlay: str
) -> None:
    loaded = load_experiment(EXPERIMENTS / experiment)
    target, docs = loaded.target, rendered[overlay]
    deployment = find(docs, "Deployment", target.deployment)
    assert deployment["metadata"]["namespace"] == target.namespace
    key, _, value = target.label_selector.partition("=")
    assert deployment["spec"]["template"]["metadata"]["labels"][key] == value
    service = find(docs, "Service", "predictor")
    port = service["spec"]["ports"][0]["port"]
    assert target.url == f"http://predictor.{target.namespace}.svc:{port}"
    scales = [s for s in loaded.rollbacks if s.action == "scale"]
    assert [s.arguments["replicas"] for s in scales] == [deployment["spec"]["replicas"]]
