"""Shared helpers: the data folder the whole suite may read, and free ports for servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def e2e_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny models exported into a temporary registry, shared by every real-server test."""
    from modelserve_registry.pipeline import export_and_push
    from modelserve_runtime.store import Registry
    from tests.e2e.conftest import VARIANTS, make_big_classifier
    from tests.model_registry.conftest import make_classifier, make_embedder

    root = tmp_path_factory.mktemp("e2e")
    registry = Registry.open(str(root / "registry"))
    export_and_push(registry, make_classifier(root / "clf"), "tiny-sentiment", VARIANTS)
    export_and_push(registry, make_embedder(root / "emb"), "tiny-embed", VARIANTS)
    big = export_and_push(registry, make_big_classifier(root / "big"), "big-batch", VARIANTS)
    registry.publish(big.model_copy(update={"name": "big-slow"}))  # same blobs, new name
    return root / "registry"


@pytest.fixture(scope="session")
def server_control_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the session server's workers share (repository state, the load board)."""
    return tmp_path_factory.mktemp("server-control")


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, e2e_registry: Path, server_control_dir: Path
) -> Iterator:
    """A real `predictor serve` (2 workers, 4 models) on 127.0.0.1, for the whole session."""
    from tests.e2e.conftest import start_server, stop_server

    config = {
        "registry_uri": str(e2e_registry),
        "control_dir": str(server_control_dir),
        "workers": 2,
        "max_texts_per_request": 8,
        "max_text_chars": 5000,
        "max_request_bytes": 65536,
        "body_timeout_s": 2,
        "models": [
            # This one server answers most e2e tests, several of them bursts of concurrent
            # requests on a busy CI machine, where the 50 ms default wait budget would rightly
            # shed a few: a 429 there is not what those tests are about (the budget has its
            # own tests in tests/predictor/test_batcher.py).
            {"ref": "tiny-sentiment", "max_queue_wait_ms": 2000},
            {"ref": "tiny-embed", "max_queue_wait_ms": 2000},
            # queues allowed to build (the batching and disconnect tests): the deadline alone
            # bounds admission here, not the queue-wait budget, and it is long, so a slow
            # machine still queues a burst (40 x 8 long texts) instead of refusing most of it
            {
                "ref": "big-batch",
                "max_batch_size": 16,
                "max_queue_wait_ms": None,
                "deadline_ms": 20000,
            },
            {"ref": "big-slow", "max_batch_size": 1, "max_queue": 2, "max_queue_wait_ms": None},
        ],
    }
    running = start_server(tmp_path_factory.mktemp("server"), config)
    yield running
    stop_server(running)
