"""Each workspace member declares what it imports, nothing more and nothing less (deptry:
no missing, unused or merely transitive dependencies)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = sorted(
    p.parent
    for p in [*ROOT.glob("packages/*/pyproject.toml"), ROOT / "dashboards" / "pyproject.toml"]
)


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_declared_dependencies_are_what_the_package_imports(member: Path) -> None:
    deptry = shutil.which("deptry", path=str(Path(sys.executable).parent))
    assert deptry, "deptry is in the dev group: run `uv sync`"
    done = subprocess.run(
        [deptry, "."],
        cwd=member,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
