"""A tiny real HTTP server for load-test tests: answers POSTs with JSON after `--delay-ms`;
requests arriving between `--stall-at` and `--stall-at + --stall-s` seconds after the first
request are held until the stall ends (a stalled server, as in a GC pause or a restart)."""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

first_request: list[float] = []
lock = threading.Lock()


def make_handler(delay_s: float, stall_at: float, stall_s: float, serial: bool = False) -> type:
    worker = threading.Lock() if serial else contextlib.nullcontext()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            now = time.monotonic()
            with lock:
                if not first_request:
                    first_request.append(now)
            since = now - first_request[0]
            if stall_s and stall_at <= since < stall_at + stall_s:
                time.sleep(stall_at + stall_s - since)
            with worker:  # serial: one request served at a time, capacity 1 / delay
                time.sleep(delay_s)
            body = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=5)
    parser.add_argument("--stall-at", type=float, default=0)
    parser.add_argument("--stall-s", type=float, default=0)
    parser.add_argument("--serial", action="store_true", help="one request at a time")
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port),
        make_handler(args.delay_ms / 1000, args.stall_at, args.stall_s, args.serial),
    )
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
