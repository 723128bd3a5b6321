"""The lock installs on Linux x86_64 (GPU build), Linux aarch64 and macOS arm64 (CPU ONNX
Runtime), with one CUDA major. Read from uv.lock itself: every package a platform would
install, found by walking the dependency graph with that platform's markers, must have a wheel
for it (or an sdist)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PACKAGES = LOCK["package"]
GPU_MARKER = "platform_machine == 'x86_64' and sys_platform == 'linux'"


def _platform_tags(machine: str, system: str) -> list[str]:
    if system == "darwin":
        return [
            f"macosx_{major}_{minor}_{arch}"
            for major, minor in [(10, m) for m in range(9, 17)] + [(v, 0) for v in range(11, 16)]
            for arch in ("arm64", "universal2")
        ]
    return [f"manylinux_2_{m}_{machine}" for m in range(17, 40)] + [
        f"manylinux{v}_{machine}" for v in ("1", "2010", "2014")
    ]


PLATFORMS = {
    "linux-x86_64": ("x86_64", "linux"),
    "linux-aarch64": ("aarch64", "linux"),
    "macos-arm64": ("arm64", "darwin"),
}


def _environment(machine: str, system: str) -> dict[str, str]:
    return {
        "python_version": "3.12",
        "python_full_version": "3.12.8",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": system,
        "platform_system": {"linux": "Linux", "darwin": "Darwin"}[system],
        "platform_machine": machine,
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def _find(name: str, version: str | None, env: dict[str, str]) -> dict:
    candidates = [p for p in PACKAGES if p["name"] == name]
    if version:
        candidates = [p for p in candidates if p["version"] == version]
    if len(candidates) > 1:  # several versions split by python markers: pick ours
        candidates = [
            p
            for p in candidates
            if not p.get("resolution-markers")
            or any(Marker(m).evaluate(env) for m in p["resolution-markers"])
        ]
    (package,) = candidates
    return package


def _installed(env: dict[str, str]) -> Iterator[dict]:
    """Every package `uv sync` (with the dev group) installs on the platform of `env`."""
    root = next(p for p in PACKAGES if p["name"] == "modelserve-workspace")
    todo = [(root, ())]
    seen: set[tuple[str, str, tuple]] = set()
    while todo:
        package, extras = todo.pop()
        key = (package["name"], package["version"], extras)
        if key in seen:
            continue
        seen.add(key)
        yield package
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps += package.get("optional-dependencies", {}).get(extra, [])
        if package is root:
            for group in package.get("dev-dependencies", {}).values():
                deps += group
        for dep in deps:
            if "marker" in dep and not Marker(dep["marker"]).evaluate(env):
                continue
            found = _find(dep["name"], dep.get("version"), env)
            todo.append((found, tuple(sorted(dep.get("extra", [])))))


def _supported(machine: str, system: str) -> set[Tag]:
    platforms = _platform_tags(machine, system)
    return set(cpython_tags((3, 12), platforms=platforms)) | set(
        compatible_tags((3, 12), "cp312", platforms=platforms)
    )


def test_the_lock_requires_all_three_platforms() -> None:
    assert set(LOCK["required-markers"]) == {
        GPU_MARKER,
        "platform_machine == 'aarch64' and sys_platform == 'linux'",
        "platform_machine == 'arm64' and sys_platform == 'darwin'",
    }


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_package_installs_from_a_wheel_or_sdist(platform: str) -> None:
    machine, system = PLATFORMS[platform]
    env = _environment(machine, system)
    supported = _supported(machine, system)
    installed = {p["name"]: p for p in _installed(env)}
    missing = []
    for name, package in installed.items():
        if "sdist" in package or "registry" not in package["source"]:
            continue
        tags = {
            t
            for w in package.get("wheels", [])
            for t in parse_wheel_filename(w["url"].rsplit("/", 1)[-1])[3]
        }
        if not tags & supported:
            missing.append(f"{name} {package['version']}")
    assert not missing, f"no wheel for {platform}: {missing}"
    assert {"torch", "tokenizers", "bentoml", "modelserve-predictor"} <= set(installed)
    gpu = platform == "linux-x86_64"
    # onnxruntime and onnxruntime-gpu install into the same folder: exactly one of them.
    assert ("onnxruntime-gpu" in installed) is gpu
    assert ("onnxruntime" in installed) is not gpu
    nvidia = sorted(n for n in installed if n.startswith("nvidia-") and n != "nvidia-ml-py")
    assert bool(nvidia) is gpu


def test_one_cuda_major_for_torch_and_onnxruntime() -> None:
    env = _environment("x86_64", "linux")
    installed = {p["name"]: p for p in _installed(env)}
    cuda_libraries = [n for n in installed if n.startswith("nvidia-") and n != "nvidia-ml-py"]
    assert cuda_libraries and all(n.endswith("-cu12") for n in cuda_libraries), cuda_libraries
    assert installed["torch"]["version"].startswith("2.10.")
    # onnxruntime-gpu 1.27 and later link CUDA 13 (libcublas.so.13); 1.26 links CUDA 12.
    major, minor = map(int, installed["onnxruntime-gpu"]["version"].split(".")[:2])
    assert (major, minor) <= (1, 26)


@pytest.mark.parametrize(
    "target",
    ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "aarch64-apple-darwin"],
)
def test_uv_plans_an_install_from_the_lock_for(target: str, tmp_path: Path) -> None:
    """uv's own installer, asked for that platform (macOS 14, the oldest onnxruntime 1.26's
    wheels support), finds a wheel for every package: nothing is downloaded or installed."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv on PATH (the project's installer)")
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
        "MACOSX_DEPLOYMENT_TARGET": "14.0",
    }
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [uv, "sync", "--locked", "--offline", "--dry-run", "--python-platform", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    planned = done.stderr + done.stdout
    wanted = "onnxruntime-gpu==" if target.startswith("x86_64-unknown-linux") else "onnxruntime=="
    assert wanted in planned and "torch==2.10" in planned
