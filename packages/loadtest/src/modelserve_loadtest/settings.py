"""Load-test defaults; every flag of `loadtest run` also reads LOADTEST_<FLAG>."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class LoadtestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOADTEST_", extra="ignore")

    host: str = "http://127.0.0.1:3000"
    scenario: str = "steady"
    rate: float | None = None
    shape: float | None = None
    duration: float = 60.0
    seed: int = 0
    endpoint: str = "analyze"
    model: str | None = None
    texts: str | None = None
    column: str = "text"
    max_in_flight: int = 1000
    slo_ms: float | None = None
    token: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_linger_s: float = 10.0
