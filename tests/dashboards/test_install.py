"""The dashboards package alone: what `uv pip install ./dashboards` brings (read from the
lock, installed offline into a fresh environment) has no serving or ML stack, and builds the
committed dashboards there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
            "--package",
            "modelserve-dashboards",
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
    (tmp_path / "requirements.txt").write_text(exported)
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--offline",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(tmp_path / "requirements.txt"),
        ],
        cwd=ROOT,
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
