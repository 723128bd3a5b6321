"""Registry settings, read once from REGISTRY_* environment variables (or a .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def find_shared_data(relative: str) -> Path | None:
    """`../shared/data/<relative>` seen from the working directory or any parent of it."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder.parent / "shared" / "data" / relative
        if candidate.exists():
            return candidate
    return None


def _default_data_home() -> Path:
    return Path.home() / ".local" / "share" / "modelserve"


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", env_file=".env", extra="ignore")

    uri: str = Field(
        default_factory=lambda: str(_default_data_home() / "registry"),
        description="Local directory (embedded store) or s3://bucket/prefix.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: _default_data_home() / "cache",
        description="Where pulled variants and bootstrap sources are kept on this machine.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, moto); AWS when unset."
    )
    eval_csv: Path | None = Field(
        default_factory=lambda: find_shared_data("sp1786/val.csv"),
        description="Labelled CSV (text,label) scored by export/bootstrap; Sp1786 when present.",
    )
    eval_limit: int | None = Field(
        default=None, ge=1, description="Score only the first N rows of the eval CSV."
    )
