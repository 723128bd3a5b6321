"""Shared helpers: the data folder the whole suite may read, and free ports for servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sp1786_val() -> Path:
    path = SHARED_DATA / "sp1786" / "val.csv"
    if not path.exists():
        pytest.skip(f"needs {path} (the shared Sp1786 data, not part of the repository)")
    return path
