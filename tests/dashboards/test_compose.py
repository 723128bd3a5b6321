"""The Docker compose setup cannot run here (no Docker engine): its files are checked instead.
Every mounted file exists, Prometheus's config passes promtool, and Grafana is provisioned
with the datasource uid and dashboard folder the generated dashboards expect."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from modelserve_dashboards.build import DASHBOARDS, JSON_DIR, load
from modelserve_dashboards.panels import DATASOURCE_UID
from modelserve_predictor.settings import PredictorSettings
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "dashboards" / "compose.yaml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _mounts(service: str) -> dict[str, Path]:
    """container path -> host path, for a service's bind mounts."""
    mounts = {}
    for volume in _compose()["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_every_mounted_path_exists() -> None:
    for service in ("prometheus", "grafana"):
        for target, source in _mounts(service).items():
            assert source.exists(), f"{service}: {source} (mounted at {target}) is missing"


def test_prometheus_config_is_valid_and_scrapes_the_predictor_port() -> None:
    promtool = require_tool("promtool")
    config = _mounts("prometheus")["/etc/prometheus/prometheus.yml"]
    checked = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = {j["job_name"]: j for j in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert set(jobs) == {"predictor", "loadtest", "chaos"}
    predictor_target = jobs["predictor"]["static_configs"][0]["targets"][0]
    assert predictor_target.endswith(f":{PredictorSettings().port}")
    assert (
        "host.docker.internal:host-gateway" in _compose()["services"]["prometheus"]["extra_hosts"]
    )


def test_grafana_is_provisioned_like_the_cluster() -> None:
    mounts = _mounts("grafana")
    datasources = yaml.safe_load(
        mounts["/etc/grafana/provisioning/datasources/modelserve.yaml"].read_text()
    )["datasources"]
    assert [d["uid"] for d in datasources] == [DATASOURCE_UID]
    assert datasources[0]["url"] == "http://prometheus:9090"  # the compose service name
    providers = yaml.safe_load(
        mounts["/etc/grafana/provisioning/dashboards/modelserve.yaml"].read_text()
    )["providers"]
    folder = providers[0]["options"]["path"]
    assert mounts[folder] == (ROOT / JSON_DIR).resolve()
    assert sorted(p.stem for p in mounts[folder].glob("*.json")) == sorted(DASHBOARDS)
    for name in DASHBOARDS:
        assert load(name)["uid"].startswith("modelserve-")
