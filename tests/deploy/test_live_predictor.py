"""The rendered predictor pod's configuration on a real `predictor serve`: its probes and
scrape path answer 200, and what it writes lands where the pod mounts emptyDirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelserve_registry.pipeline import export_and_push
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry
from tests.deploy.conftest import K3S, find, kustomize_build, pod_spec, predictor_env
from tests.e2e.conftest import Server, start_server, stop_server
from tests.model_registry.conftest import make_classifier

PATH_VARIABLES = ("HOME", "TMPDIR", "BENTOML_HOME", "REGISTRY_CACHE_DIR", "HF_HOME")
# Where the tiny test model and the ports come from instead of the cluster's registry.
NOT_FROM_THE_POD = {
    "PREDICTOR_MODELS",
    "PREDICTOR_HOST",
    "PREDICTOR_PORT",
    "PREDICTOR_GRPC_PORT",  # a free port from start_server: 8001 may be taken here
    "REGISTRY_URI",
    "REGISTRY_S3_ENDPOINT_URL",
}


@pytest.fixture(scope="module")
def cpu_pod() -> list[dict[str, Any]]:
    return kustomize_build(K3S / "overlays" / "cpu")


@pytest.fixture(scope="module")
def pod_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for the container's `/`: the pod's absolute paths are rebased under it."""
    return tmp_path_factory.mktemp("pod-root")


@pytest.fixture(scope="module")
def live(
    cpu_pod: list[dict[str, Any]], pod_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("live")
    registry = Registry.open(str(folder / "registry"))
    export_and_push(registry, make_classifier(folder / "clf"), "tiny", [Variant.ONNX_INT8])
    env = {k: v for k, v in predictor_env(cpu_pod).items() if k not in NOT_FROM_THE_POD}
    for key in PATH_VARIABLES:
        env[key] = str(pod_root / env[key].lstrip("/"))
        Path(env[key]).mkdir(parents=True, exist_ok=True)  # the emptyDirs exist at start
    env["PREDICTOR_WORKERS"] = "1"  # the pod runs 2; one is enough to answer probes here
    config = {"registry_uri": str(folder / "registry"), "models": [{"ref": "tiny"}]}
    server = start_server(folder, config, env_extra=env, timeout_s=120)
    yield server
    stop_server(server)


def test_probes_and_scrape_path_answer_on_a_real_predictor(
    cpu_pod: list[dict[str, Any]], live: Server
) -> None:
    deployment = find(cpu_pod, "Deployment", "predictor")
    (container,) = pod_spec(deployment)["containers"]
    paths = {
        container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    paths.add(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    for path in sorted(paths):
        assert live.get(path).status_code == 200, path
    assert live.get("/no-such-probe").status_code == 404  # the server does not say 200 to all


def test_what_the_predictor_writes_is_under_the_pods_empty_dirs(
    cpu_pod: list[dict[str, Any]], live: Server, pod_root: Path
) -> None:
    env = predictor_env(cpu_pod)
    bentoml_home = pod_root / env["BENTOML_HOME"].lstrip("/")
    cache = pod_root / env["REGISTRY_CACHE_DIR"].lstrip("/")
    # BentoML's multiprocess metrics and the pulled model went where the pod mounts them
    assert list(bentoml_home.glob("servers/*/prometheus_multiproc_dir/*.db"))  # one per server
    assert list((cache / "pulled" / "tiny").rglob("*.onnx"))
    mounts = {
        m["mountPath"]
        for m in pod_spec(find(cpu_pod, "Deployment", "predictor"))["containers"][0]["volumeMounts"]
    }
    written = {p for p in pod_root.rglob("*") if p.is_file()}
    assert written
    for path in written:
        inside = "/" + str(path.relative_to(pod_root))
        assert any(inside.startswith(m.rstrip("/") + "/") for m in mounts), inside
