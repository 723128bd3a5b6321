"""What each image's layers hold, without a Docker engine: stage the files the Dockerfile's
build stage COPYs, run its `uv sync` commands into a scratch environment (from uv's cache,
offline), and sum the file sizes. Prints a table; `--json` for machines.

    uv run python deploy/docker/image_sizes.py

The base image (python:3.11-slim-bookworm) is not measured here: it is the same for both."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {
    "modelserve/predictor": ROOT / "deploy" / "docker" / "Dockerfile",
    "modelserve/tools": ROOT / "deploy" / "docker" / "tools.Dockerfile",
}


def build_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the first stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, args = line.partition(" ")
        if name.upper() == "FROM":
            stages.append([])
        stages[-1].append((name.upper(), args.strip()))
    return stages[0]


def stage_venv(dockerfile: Path, scratch: Path) -> Path:
    """The image's /app/.venv, built here the way its build stage builds it."""
    src = scratch / "src"
    src.mkdir(parents=True)
    for name, args in build_stage(dockerfile):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if name == "COPY" and not args.startswith("--from"):
            *sources, dest = words
            for source in sources:
                # `COPY a b/` puts a file into the folder b; `COPY dir dir` copies the tree
                target = src / dest / Path(source).name if dest.endswith("/") else src / dest
                if (ROOT / source).is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
                    shutil.copytree(ROOT / source, target, ignore=ignore, dirs_exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, target)
        elif name == "RUN" and "uv sync" in args:
            command = shlex.split(args[args.index("uv sync") :])
            env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(scratch / "venv")}
            env.pop("VIRTUAL_ENV", None)
            subprocess.run(
                [*command, "--offline", "--quiet"], cwd=src, env=env, check=True, timeout=900
            )
    return scratch / "venv"


def tree_bytes(path: Path) -> int:
    seen: set[int] = set()
    total = 0
    for file in path.rglob("*"):
        stat = file.lstat()
        if file.is_file() and not file.is_symlink() and stat.st_ino not in seen:
            seen.add(stat.st_ino)
            total += stat.st_size
    return total


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3.*/site-packages")
    return found


def measure(venv: Path) -> dict:
    packages = site_packages(venv)
    sizes = {p.name: tree_bytes(p) for p in packages.iterdir() if p.is_dir()}
    nvidia = sorted(d.name.split("-")[0] for d in packages.glob("nvidia_*.dist-info"))
    return {
        "venv_mb": round(tree_bytes(venv) / 2**20),
        "nvidia_mb": round(sizes.get("nvidia", 0) / 2**20),
        "nvidia_libraries": nvidia,
        "largest": {
            k: round(v / 2**20) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]
        },
        "distributions": sorted(
            d.name.removesuffix(".dist-info").rsplit("-", 1)[0]
            for d in packages.glob("*.dist-info")
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    for image, dockerfile in IMAGES.items():
        with tempfile.TemporaryDirectory(prefix="image-") as scratch:
            results[image] = measure(stage_venv(dockerfile, Path(scratch)))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| image | /app/.venv | of which NVIDIA | largest packages (MB) |")
    print("|---|---|---|---|")
    for image, result in results.items():
        largest = ", ".join(f"{k} {v}" for k, v in list(result["largest"].items())[:6])
        print(f"| {image} | {result['venv_mb']} MB | {result['nvidia_mb']} MB | {largest} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
