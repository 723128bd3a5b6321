"""Prometheus and Grafana as rendered for the cluster: the scrape configuration checked by
promtool and its relabelling run by a real Prometheus, the provisioning Grafana reads."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.deploy.conftest import find, pod_spec
from tests.tools import require_tool


@pytest.fixture(scope="module")
def base(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["base"]


@pytest.fixture(scope="module")
def prometheus_config(base: list[dict[str, Any]]) -> dict[str, Any]:
    """prometheus.yml from the rendered ConfigMap, checked to be the file Prometheus reads."""
    config_map = find(base, "ConfigMap", "prometheus-config")
    spec = pod_spec(find(base, "Deployment", "prometheus"))
    (container,) = spec["containers"]
    (volume,) = [v for v in spec["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    (key,) = config_map["data"]
    assert f"--config.file={mount['mountPath']}/{key}" in container["args"]
    return yaml.safe_load(config_map["data"][key])


def as_file_sd(config: dict[str, Any], targets_file: Path) -> dict[str, Any]:
    """The same configuration with Kubernetes discovery replaced by a file: Debian's
    Prometheus and promtool are built without the Kubernetes SD, and a file can carry the
    same __meta_kubernetes_* labels, so the relabelling still runs for real."""
    config = copy.deepcopy(config)
    for job in config["scrape_configs"]:
        if sd := job.pop("kubernetes_sd_configs", None):
            assert [s["role"] for s in sd] == ["pod"], job["job_name"]
            job["file_sd_configs"] = [{"files": [str(targets_file)]}]
    return config


def test_promtool_accepts_the_configuration(
    prometheus_config: dict[str, Any], tmp_path: Path
) -> None:
    promtool = require_tool("promtool")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(as_file_sd(prometheus_config, tmp_path / "pods.json")))
    (tmp_path / "pods.json").write_text("[]")
    done = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def pod(name: str, ip: str, labels: dict[str, str], annotations: dict[str, str]) -> dict:
    meta = {
        "__meta_kubernetes_namespace": "modelserve",
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_node_name": "node-a",
    }
    for key, value in labels.items():
        meta["__meta_kubernetes_pod_label_" + key.replace(".", "_").replace("/", "_")] = value
    for key, value in annotations.items():
        meta["__meta_kubernetes_pod_annotation_" + key.replace(".", "_").replace("/", "_")] = value
    return {"targets": [f"{ip}:8080"], "labels": meta}


@pytest.fixture(scope="module")
def relabelled(
    prometheus_config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[dict[str, Any]]]:
    """Prometheus's active targets for a cluster of fake pods (nothing is scraped: the
    addresses are unroutable; only the labels and addresses after relabelling matter)."""
    prometheus = require_tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}
    pods = [
        pod(
            "predictor-abc",
            "192.0.2.1",
            {"app.kubernetes.io/name": "predictor"},
            {**scrape, "prometheus.io/port": "3000"},
        ),
        pod(
            "load-runner-xyz",
            "192.0.2.2",
            {"app.kubernetes.io/name": "load-runner"},
            {**scrape, "prometheus.io/port": "9646"},
        ),
        pod("minio-def", "192.0.2.3", {"app.kubernetes.io/name": "minio"}, {}),
        pod("dcgm-exporter-1", "192.0.2.4", {"app.kubernetes.io/name": "dcgm-exporter"}, {}),
        pod("nvidia-dcgm-exporter-2", "192.0.2.5", {"app": "nvidia-dcgm-exporter"}, {}),
    ]
    (folder / "pods.json").write_text(json.dumps(pods))
    config = as_file_sd(prometheus_config, folder / "pods.json")
    config["scrape_configs"] = [j for j in config["scrape_configs"] if "file_sd_configs" in j]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        active: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(active) < 4:
            time.sleep(0.3)
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5)
                active = answer.json()["data"]["activeTargets"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        yield active
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_annotated_pods_are_scraped_where_they_say_with_namespace_pod_app(
    relabelled: list[dict[str, Any]],
) -> None:
    pods = {t["labels"]["pod"]: t for t in relabelled if t["labels"]["job"] == "kubernetes-pods"}
    assert set(pods) == {"predictor-abc", "load-runner-xyz"}  # minio is not annotated
    predictor = pods["predictor-abc"]
    assert predictor["scrapeUrl"] == "http://192.0.2.1:3000/metrics"
    assert predictor["labels"]["namespace"] == "modelserve"
    assert predictor["labels"]["app"] == "predictor"
    assert pods["load-runner-xyz"]["scrapeUrl"] == "http://192.0.2.2:9646/metrics"
    assert pods["load-runner-xyz"]["labels"]["app"] == "load-runner"


def test_dcgm_exporters_are_found_by_either_label(relabelled: list[dict[str, Any]]) -> None:
    dcgm = {t["labels"]["pod"]: t for t in relabelled if t["labels"]["job"] == "dcgm-exporter"}
    assert set(dcgm) == {"dcgm-exporter-1", "nvidia-dcgm-exporter-2"}
    assert dcgm["dcgm-exporter-1"]["scrapeUrl"] == "http://192.0.2.4:9400/metrics"
    assert {t["labels"]["app"] for t in dcgm.values()} == {"dcgm-exporter"}


def test_exporters_keep_the_pod_labels_they_report(prometheus_config: dict[str, Any]) -> None:
    # DCGM's pod/namespace name the pod using the GPU; kube-state-metrics' the object it
    # describes: the scrape must not overwrite them with the exporter's own pod
    jobs = {j["job_name"]: j for j in prometheus_config["scrape_configs"]}
    assert jobs["dcgm-exporter"]["honor_labels"] is True
    assert jobs["kube-state-metrics"]["honor_labels"] is True
    assert not jobs["kubernetes-pods"].get("honor_labels")


def test_grafana_provisions_the_datasource_and_dashboards(base: list[dict[str, Any]]) -> None:
    provisioning = find(base, "ConfigMap", "grafana-provisioning")["data"]
    (datasource,) = yaml.safe_load(provisioning["grafana-datasources.yaml"])["datasources"]
    assert (datasource["name"], datasource["uid"], datasource["type"]) == (
        "Prometheus",
        "prometheus",
        "prometheus",
    )
    service = find(base, "Service", "prometheus")
    assert datasource["url"] == f"http://prometheus:{service['spec']['ports'][0]['port']}"
    (provider,) = yaml.safe_load(provisioning["grafana-dashboard-providers.yaml"])["providers"]
    spec = pod_spec(find(base, "Deployment", "grafana"))
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    dashboards = mounts[provider["options"]["path"]]
    assert volumes[dashboards["name"]]["configMap"]["name"] == "grafana-dashboards"
    for kind, key in (
        ("datasources", "grafana-datasources.yaml"),
        ("dashboards", "grafana-dashboard-providers.yaml"),
    ):
        (mount,) = [
            m for p, m in mounts.items() if p.startswith(f"/etc/grafana/provisioning/{kind}/")
        ]
        assert mount["subPath"] == key
    for name, text in (find(base, "ConfigMap", "grafana-dashboards").get("data") or {}).items():
        assert name.endswith(".json")
        json.loads(text)
