"""A stand-in predictor for `chaos run` tests: answers GET /readyz and every POST with 200 and
JSON, and keeps two children whose command lines look like BentoML workers (`--worker-id`),
so the local target's actions have a real process tree to act on."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int) -> None:
        body = json.dumps({"ok": status == 200}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/readyz" else 404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(200)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    sleeper = "import time; time.sleep(600)"
    workers = [
        subprocess.Popen([sys.executable, "-c", sleeper, "--worker-id", str(i)]) for i in (1, 2)
    ]
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    try:
        server.serve_forever()
    finally:
        for worker in workers:
            worker.kill()


if __name__ == "__main__":
    main()
