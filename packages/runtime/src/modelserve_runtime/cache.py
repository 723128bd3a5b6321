"""A machine's local cache of pulled variants: `<cache>/<name>/<version>/<variant>/`, each
folder complete and verified against its manifest before it is used."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from modelserve_runtime.errors import RegistryError
from modelserve_runtime.manifest import ModelManifest, Variant
from modelserve_runtime.store import Registry, verify_pulled


def pull_cached(registry: Registry, manifest: ModelManifest, variant: Variant, cache: Path) -> Path:
    """The cached folder of `variant` of this exact version, pulled (sha256-verified) when it
    is missing or fails verification. Safe when several workers race to fill it."""
    folder = cache / manifest.name / str(manifest.version) / variant.value
    if folder.exists():
        try:
            verify_pulled(folder)
            return folder
        except RegistryError:
            shutil.rmtree(folder, ignore_errors=True)  # corrupt cache: pull again
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}-{uuid.uuid4().hex}")
    registry.pull(f"{manifest.name}:{manifest.version}", variant, staging)
    try:
        os.rename(staging, folder)  # atomic; another worker may have won the race
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
