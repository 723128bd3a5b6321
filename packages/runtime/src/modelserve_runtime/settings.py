"""Where the registry is and where pulled variants are cached, read once from REGISTRY_*
environment variables (or a .env file): the same variables the registry CLI reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_home() -> Path:
    return Path.home() / ".local" / "share" / "modelserve"


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", env_file=".env", extra="ignore")

    uri: str = Field(
        default_factory=lambda: str(default_data_home() / "registry"),
        description="Local directory (embedded store) or s3://bucket/prefix.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: default_data_home() / "cache",
        description="Where pulled variants and bootstrap sources are kept on this machine.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, moto); AWS when unset."
    )
