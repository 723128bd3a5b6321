"""Regenerate grpc_predict_v2_pb2.py and grpc_predict_v2_pb2_grpc.py from the .proto (needs
grpcio-tools, a dev dependency; the served package only imports the generated modules)."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # .../src
PROTO = Path(__file__).with_name("grpc_predict_v2.proto")


def compile_to(out: Path) -> None:
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)  # protoc refuses a missing output folder
    args = [
        "grpc_tools.protoc",
        f"-I{PACKAGE_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO.relative_to(PACKAGE_ROOT)),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")


if __name__ == "__main__":
    compile_to(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE_ROOT)
