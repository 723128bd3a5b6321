"""PyTriton as its documentation recommends for batching: NVIDIA's Triton Inference Server
(the real `tritonserver` binary from the wheel, its Python backend proxying to this process)
with one model bound by `triton.bind`, an `@batch` inference callable, dynamic batching
(max_batch_size 32, 5 ms max queue delay), one instance on the CPU. The KServe v2 / OIP
protocol on Triton's HTTP port (= --port, 127.0.0.1); gRPC and metrics on free local ports.

    POST /v2/models/sentiment/infer
      {"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": ["..."]}]}
    -> {"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1, 1], "data": ["positive"]},
                    {"name": "scores", "datatype": "FP32", "shape": [1, 3], "data": [...]}], ...}
       (scores in the manifest's label order). Readiness: GET /v2/models/sentiment/ready (200
       once the model serves). Not /v2/health/ready: PyTriton loads the model only after
       tritonserver is up, and that answers 200 for a moment before the model exists.

    PEER_MODEL_DIR=... uv run --locked --project benchmarks/peers/pytriton \\
        python benchmarks/peers/pytriton/server.py --port 8000

numpy is 1.26.4 here, not peer-common's 2.x (see pyproject.toml: the backend stub in the
wheel corrupts BYTES inputs under numpy 2). SIGTERM (to this process, to `uv run` or to the
whole session) stops tritonserver and its Python backend stub in about 4 s and removes
PyTriton's workspace (~/.cache/pytriton) and shared memory."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sysconfig

import numpy as np
from peer_common import Classifier
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def own_libpython_first() -> None:
    """Triton's Python backend stub links `libpython3.X.so.1.0` by name and would load the
    system's (here Debian's 3.11.2) while running this interpreter's standard library (pyenv's
    3.11.7): multiprocessing then fails (`RLock` has no `_recursion_count`) and the model never
    loads. The stub inherits tritonserver's environment, so this interpreter's own library
    directory goes first on LD_LIBRARY_PATH."""
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    shared = sysconfig.get_config_var("Py_ENABLE_SHARED")
    if shared and libdir and soname and os.path.exists(os.path.join(libdir, soname)):
        paths = [libdir, *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":"))]
        os.environ["LD_LIBRARY_PATH"] = ":".join(paths)


def stop_once(signum: int, frame: object) -> None:
    """The first SIGTERM ends serve() as Ctrl-C does (Triton.stop() then stops tritonserver
    and cleans up); later ones are ignored, as a second one (`uv run` forwards the signal
    that a SIGTERM of the whole session already delivered) would interrupt that stop."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    own_libpython_first()
    classify = Classifier()
    labels = classify.labels

    @batch
    def infer(text: np.ndarray) -> dict[str, np.ndarray]:
        # text: (batch, 1) of bytes, one text per request
        results = classify([row[0].decode("utf-8") for row in text])
        return {
            "label": np.array([[r["label"].encode()] for r in results], dtype=np.object_),
            "scores": np.array([[r["scores"][k] for k in labels] for r in results], np.float32),
        }

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.port,
        grpc_address="127.0.0.1",
        grpc_port=free_port(),
        metrics_address="127.0.0.1",
        metrics_port=free_port(),
        exit_timeout_secs=5,
        log_verbose=0,
    )
    signal.signal(signal.SIGTERM, stop_once)
    with Triton(config=config) as triton:
        triton.bind(
            model_name="sentiment",
            infer_func=infer,
            inputs=[Tensor(name="text", dtype=np.bytes_, shape=(1,))],
            outputs=[
                Tensor(name="label", dtype=np.bytes_, shape=(1,)),
                Tensor(name="scores", dtype=np.float32, shape=(len(labels),)),
            ],
            config=ModelConfig(
                max_batch_size=32,
                batcher=DynamicBatcher(max_queue_delay_microseconds=5000),
            ),
            strict=True,
        )
        triton.serve()


if __name__ == "__main__":
    main()
