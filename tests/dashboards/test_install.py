"""The dashboards package alone: what it brings (read from the lock, installed offline into a
fresh environment) has no serving or ML stack, and builds the committed dashboards there."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ("--package", "modelserve-dashboards")
SERVING_STACK = {"torch", "onnxruntime", "onnxruntime-gpu", "bentoml", "transformers", "tokenizers"}


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv on PATH (the project's installer)")
    return uv


def test_dashboards_alone_install_without_the_serving_stack_and_build(tmp_path: Path) -> None:
    uv = _uv()
    exported = subprocess.run(
        [
            uv,
            "export",
            *PACKAGE,
            "--no-dev",
            "--frozen",
            "--no-hashes",
            "--no-header",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    requirements = [
        line.strip()
        for line in exported.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    names = {line.split("==")[0].split(";")[0].strip() for line in requirements}
    assert "grafana-foundation-sdk" in names and "-e ./packages/metric-names" in names
    assert not names & SERVING_STACK, names & SERVING_STACK
    assert len(requirements) < 30, requirements
    # Installed from the lock's own wheel URLs, which `uv sync` of the workspace has cached:
    # `uv pip install --offline -r` would need PyPI's index pages in the cache too, and a
    # clean machine that only ran `uv sync --locked` has none.
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "sync", "--frozen", "--offline", "--quiet", "--no-dev", *PACKAGE],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
        check=True,
        timeout=300,
    )
    built = subprocess.run(
        [str(venv / "bin" / "dashboards"), "build", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print([m for m in ('torch', 'onnxruntime', 'bentoml')"
            " if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "[]"
