"""deploy/k3s rendered by kustomize: valid for the Kubernetes version K3s ships, and holding
the properties the platform relies on (security, probes, shutdown, selectors, GPUs, HA)."""

from __future__ import annotations

import os
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from modelserve_predictor.plan import worker_plans
from modelserve_predictor.settings import PredictorSettings, load_settings
from tests.deploy.conftest import (
    BUILDS,
    K3S,
    OVERLAYS,
    containers,
    find,
    pod_spec,
    predictor_env,
)

# The one place the target version lives; deploy/k3s/README.md must name the same.
KUBERNETES_VERSION = "1.34.0"
K3S_NAME = "K3s v" + ".".join(KUBERNETES_VERSION.split(".")[:2])


def predictor(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return find(docs, "Deployment", "predictor")


def predictor_settings(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> PredictorSettings:
    """The settings `predictor serve` would resolve from the pod's ConfigMap, for real."""
    for key in [k for k in os.environ if k.startswith("PREDICTOR_")]:
        monkeypatch.delenv(key)
    for key, value in find(docs, "ConfigMap", "predictor-config")["data"].items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_readme_names_the_validated_version() -> None:
    readme = (K3S / "README.md").read_text()
    assert K3S_NAME in readme
    found = set(re.findall(r"K3s v(\d+\.\d+)", readme))
    assert found == {K3S_NAME.removeprefix("K3s v")}, f"README names other versions: {found}"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_document_validates_strictly(
    rendered: dict[str, list[dict[str, Any]]], build: str
) -> None:
    assert rendered[build]
    for doc in rendered[build]:
        where = f"{build}: {doc['kind']} {doc['metadata']['name']}"
        try:
            version = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        assert version == "1.34", where  # not silently an older schema


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_deploys_the_whole_platform(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    for name in ("predictor", "minio", "prometheus", "grafana"):
        find(docs, "Deployment", name)
        find(docs, "Service", name)
    find(docs, "Job", "registry-bootstrap")
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} <= {
        "modelserve",
        None,  # cluster-scoped: the Namespace, Prometheus's ClusterRole(Binding)
    }
    # the chaos helper is privileged: only deploy/k3s/chaos may create it
    assert not [d for d in docs if d["metadata"]["name"] == "chaos-node-helper"]


@pytest.mark.parametrize("build", [*OVERLAYS, "tools"])
def test_workloads_run_as_non_root_on_a_read_only_root(
    rendered: dict[str, list[dict[str, Any]]], build: str
) -> None:
    workloads = [d for d in rendered[build] if d["kind"] in ("Deployment", "Job")]
    assert workloads
    for workload in workloads:
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, workload["metadata"]["name"]
        assert pod.get("runAsUser", 0) != 0
        for container in containers(spec):
            where = f"{workload['metadata']['name']}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "memory" in container["resources"]["limits"], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_path_the_predictor_writes_is_an_empty_dir(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    spec = pod_spec(predictor(docs))
    empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    env = predictor_env(docs)
    # What a real `predictor serve` writes (strace): TMPDIR, BENTOML_HOME (with its
    # prometheus_multiproc_dir), the registry cache (pulled models), HOME/.cache, HF_HOME.
    written = [
        env["TMPDIR"],
        env["BENTOML_HOME"],
        env["REGISTRY_CACHE_DIR"],
        env["HOME"],
        env["HF_HOME"],
    ]
    for container in containers(spec):
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get("/tmp") in empty
        for path in written:
            covering = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
            assert covering and mounts[max(covering, key=len)] in empty, (container["name"], path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_predictor_probes_rollout_and_shutdown(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered[overlay]
    deployment = predictor(docs)
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = predictor_settings(docs, monkeypatch)
    assert ports["http"] == settings.port == 3000
    assert ports["grpc"] == settings.grpc_port == 8001  # OIP gRPC, in every worker
    assert settings.host == "0.0.0.0"
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"  # ready = every model warmed up
    for probe in probes.values():
        assert ports[probe["port"]] == 3000
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # after the preStop sleep, SIGTERM must leave the drain and the shutdown hooks their time
    # before the kubelet's SIGKILL
    from modelserve_predictor.supervisor import HOOKS_MARGIN_S

    assert spec["terminationGracePeriodSeconds"] > pre_stop + settings.drain_s + HOOKS_MARGIN_S
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_holds_only_real_predictor_settings(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = find(rendered[overlay], "ConfigMap", "predictor-config")["data"]
    for key in data:
        # PredictorSettings ignores unknown variables: a typo would silently do nothing
        assert key.startswith("PREDICTOR_"), key
        assert key.removeprefix("PREDICTOR_").lower() in PredictorSettings.model_fields, key
    settings = predictor_settings(rendered[overlay], monkeypatch)
    assert settings.request_timeout_s == float(data["PREDICTOR_REQUEST_TIMEOUT_S"])
    assert [m.ref for m in settings.models] == data["PREDICTOR_MODELS"].split(",")
    assert worker_plans(settings)  # the placement the pod will compute is a valid one


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_pdb_and_hpa_select_the_predictor_pods(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    deployment = predictor(docs)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels["app.kubernetes.io/name"] == "predictor"
    service = find(docs, "Service", "predictor")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"http", "grpc"}
    assert ports["http"]["port"] == 3000 and ports["http"]["targetPort"] == "http"
    assert ports["grpc"]["port"] == 8001 and ports["grpc"]["targetPort"] == "grpc"
    (container,) = pod_spec(deployment)["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["targetPort"] for p in ports.values()} <= set(named)  # each reaches a port
    pdb = find(docs, "PodDisruptionBudget", "predictor")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for hpa in [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", "predictor")


def test_cpu_overlay_uses_no_gpu(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered["cpu"]
    spec = pod_spec(predictor(docs))
    assert "runtimeClassName" not in spec
    assert "nvidia.com/gpu" not in str(spec)
    settings = predictor_settings(docs, monkeypatch)
    assert settings.gpus == []
    assert {p.device.kind for p in worker_plans(settings)} == {"cpu"}
    assert len(worker_plans(settings)) == settings.workers == 2


@pytest.mark.parametrize("overlay", ["gpu", "multi-gpu"])
def test_gpu_overlays_request_exactly_the_gpus_their_worker_map_uses(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered[overlay]
    spec = pod_spec(predictor(docs))
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    resources = spec["containers"][0]["resources"]
    gpus = int(resources["limits"]["nvidia.com/gpu"])
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
    settings = predictor_settings(docs, monkeypatch)
    # the runtime numbers the pod's GPUs from 0: the settings must name exactly those
    assert settings.gpus == list(range(gpus))
    plans = worker_plans(settings)
    assert len(plans) == gpus * settings.workers_per_gpu
    used = {d.index for p in plans for d in p.models.values()}
    assert used == set(range(gpus))
    if overlay == "multi-gpu":
        assert gpus > 1 and settings.gpu_map
        assert settings.workers_per_gpu > 1


def test_ha_overlay_survives_one_pod_and_autoscales(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["ha"]
    deployment = predictor(docs)
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    spec = pod_spec(deployment)
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    # a hard rule would strand replicas Pending on the single-node K3s of the study
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    anti = spec["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"]
    pdb = find(docs, "PodDisruptionBudget", "predictor")["spec"]
    assert pdb == {**pdb, "maxUnavailable": 1} and "minAvailable" not in pdb
    hpa = find(docs, "HorizontalPodAutoscaler", "predictor")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == replicas <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    container = spec["containers"][0]
    assert "cpu" in container["resources"]["requests"]  # Utilization is relative to it


def test_in_flight_hpa_uses_the_metric_the_adapter_serves(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    hpa = find(rendered["ha-in-flight"], "HorizontalPodAutoscaler", "predictor")
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    (metric,) = pods
    values = yaml.safe_load(
        (K3S / "components" / "hpa-in-flight" / "prometheus-adapter-values.yaml").read_text()
    )
    (rule,) = values["rules"]["custom"]
    assert rule["name"]["as"] == metric["metric"]["name"]
    series = re.match(r"(\w+)\{", rule["seriesQuery"]).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(rule["name"]["matches"], series)
    assert series == "bentoml_service_request_in_progress"  # BentoML's, as served at /metrics
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
