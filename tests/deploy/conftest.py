"""Rendering deploy/k3s with kustomize, once per session, and finding objects in the output."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
K3S = ROOT / "deploy" / "k3s"
OVERLAYS = ["cpu", "gpu", "multi-gpu", "ha", "ha-in-flight"]
# Applied on their own, never by an overlay.
EXTRAS = {"base": K3S / "base", "chaos": K3S / "chaos", "tools": K3S / "tools"}
BUILDS = {**{name: K3S / "overlays" / name for name in OVERLAYS}, **EXTRAS}


def kustomize_build(folder: Path) -> list[dict[str, Any]]:
    kustomize = require_tool("kustomize")
    done = subprocess.run(
        [kustomize, "build", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kustomize build {folder} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize_build(folder) for name, folder in BUILDS.items()}


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of this kind whose name is `name` (or, for generated ConfigMaps and
    Secrets, `name-<hash>`)."""
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and (d["metadata"]["name"] == name or d["metadata"]["name"].rsplit("-", 1)[0] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def predictor_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The predictor container's environment as the kubelet builds it: envFrom ConfigMaps
    (Secrets skipped), then env."""
    spec = pod_spec(find(docs, "Deployment", "predictor"))
    container = spec["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if ref := source.get("configMapRef"):
            (config_map,) = [
                d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == ref["name"]
            ]
            env.update(config_map["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env
