"""LitServe as its documentation recommends for batching: a LitAPI with max_batch_size 32
and a 5 ms batch_timeout, one inference worker on the CPU, its default API server process.
Requests are {"text": ...}; the answer is {"label", "scores"}.

    PEER_MODEL_DIR=... uv run --locked --project benchmarks/peers/litserve \\
        python benchmarks/peers/litserve/server.py --port 8000"""

from __future__ import annotations

import argparse

import litserve as ls
from peer_common import Classifier


class SentimentAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.classify = Classifier()

    def decode_request(self, request: dict) -> str:
        return request["text"]

    def predict(self, texts: list[str]) -> list[dict]:
        return self.classify(texts)

    def encode_response(self, output: dict) -> dict:
        return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    api = SentimentAPI(max_batch_size=32, batch_timeout=0.005, api_path="/analyze-sentiment")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=args.port, log_level="warning", generate_client_file=False)
