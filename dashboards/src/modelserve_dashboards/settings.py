"""`dashboards` defaults; each reads DASHBOARDS_<NAME>."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# dashboards/src/modelserve_dashboards/settings.py -> the repository root
REPO_ROOT = Path(__file__).resolve().parents[3]


class DashboardsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARDS_", extra="ignore")

    root: Path = REPO_ROOT
    prometheus_url: str = "http://127.0.0.1:9090"
