"""Registry settings, read once from REGISTRY_* environment variables (or a .env file): the
store's (modelserve_runtime.settings) plus what export and bootstrap validate against."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from modelserve_runtime.garbage import DEFAULT_GRACE_SECONDS
from modelserve_runtime.settings import StoreSettings


def find_shared_data(relative: str) -> Path | None:
    """`../shared/data/<relative>` seen from the working directory or any parent of it."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder.parent / "shared" / "data" / relative
        if candidate.exists():
            return candidate
    return None


class RegistrySettings(StoreSettings):
    eval_csv: Path | None = Field(
        default_factory=lambda: find_shared_data("sp1786/val.csv"),
        description="Labelled CSV (text,label) scored by export/bootstrap; Sp1786 when present.",
    )
    eval_limit: int | None = Field(
        default=None, ge=1, description="Score only the first N rows of the eval CSV."
    )
    gc_grace_seconds: float = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=0,
        description="`registry gc` keeps unreferenced blobs younger than this (pushes in "
        "progress upload blobs before their manifest references them).",
    )
