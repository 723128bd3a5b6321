"""Issue 3's two targets, measured in one run on this machine:

1. served throughput at saturation (sentiment-minilm, onnx-int8) >= 80% of the in-process
   throughput of the same variant at its best batch size;
2. at low load, served p50 within 5 ms of the in-process batch-1 latency.

Run: `uv run python -m benchmarks.predictor_targets` (needs the default registry; serve or
`registry bootstrap` once first). Uses Sp1786 validation texts when ../shared/data is there.
Prints a table and writes benchmarks/results/predictor_targets.{json,md}."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks import serving
from modelserve_predictor.bench import load_texts
from modelserve_registry.settings import find_shared_data
from modelserve_runtime.inference import TextModel

console = Console()
RESULTS = Path(__file__).parent / "results"


def in_process(model: TextModel, texts: list[str], batch_sizes: list[int]) -> dict:
    single = []
    for text in texts[:300]:
        started = time.perf_counter()
        model.predict([text])
        single.append(time.perf_counter() - started)
    throughput = {}
    for batch in batch_sizes:
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            model.predict(texts[start : start + batch])
        throughput[batch] = len(texts) / (time.perf_counter() - started)
    return {"batch1_p50_ms": 1000 * statistics.median(single), "texts_per_s": throughput}


def low_load(port: int, texts: list[str], count: int) -> float:
    """Sequential requests with pauses, over one keep-alive connection of the standard
    library's client (the lightest Python client: its own overhead is part of the figure)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    for text in texts[:count]:
        body = json.dumps({"text": text})
        started = time.perf_counter()
        connection.request("POST", "/analyze-sentiment", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        time.sleep(0.02)
    connection.close()
    return 1000 * statistics.median(latencies)


async def saturate(
    url: str, texts: list[str], seconds: float, concurrency: int, per_request: int
) -> dict:
    done = failed = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal done, failed
        index = offset
        while time.perf_counter() < deadline:
            chunk = [texts[(index + k) % len(texts)] for k in range(per_request)]
            index += per_request * concurrency
            response = await client.post(url, json={"texts": chunk})
            if response.status_code == 200:
                done += per_request
            else:
                failed += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, i * per_request) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"texts_per_s": done / elapsed, "failed_requests": failed}


def wrk_saturate(
    base: str, texts: list[str], seconds: float, concurrency: int, per_request: int
) -> dict:
    """Saturation measured with wrk (C, one thread): the client costs far less CPU than a
    Python one, so more of the 2 cores is left to the server being measured."""
    bodies = [
        json.dumps({"texts": texts[i : i + per_request]})
        for i in range(0, min(len(texts), 800 * per_request), per_request)
    ]
    bodies = [b for b in bodies if "]==]" not in b]
    script = RESULTS / "wrk_bodies.lua"
    RESULTS.mkdir(exist_ok=True)
    script.write_text(
        "local bodies = {\n" + ",\n".join(f"[==[{b}]==]" for b in bodies) + "\n}\n"
        "local i = 0\n"
        "request = function()\n  i = i + 1\n"
        '  return wrk.format("POST", "/analyze-sentiment", '
        '{["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])\nend\n'
    )
    run = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    script.unlink()
    rate = float(
        next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("Requests/sec"))
    )
    non_2xx = sum(int(line.split()[-1]) for line in run.stdout.splitlines() if "Non-2xx" in line)
    return {"texts_per_s": rate * per_request, "failed_requests": non_2xx, "client": "wrk"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    csv_path = find_shared_data("sp1786/val.csv")
    texts = load_texts(str(csv_path) if csv_path else None, 2000)
    model = serving.load_model("sentiment-minilm", "onnx-int8")
    model.predict(texts[:4])
    console.print("in-process ...")
    local = in_process(model, texts, [1, 2, 4, 8, 16, 32])
    best_batch = max(local["texts_per_s"], key=local["texts_per_s"].get)
    del model
    system = serving.predictor(args.workers, model="sentiment-minilm", variant="onnx-int8")
    console.print("starting the predictor ...")
    serving.start(system, Path(tempfile.mkdtemp(prefix="predictor-targets-")))
    port, base = system.port, system.host
    try:
        served_p50 = low_load(port, texts, 300)
        if shutil.which("wrk"):
            one = wrk_saturate(base, texts, args.seconds, args.concurrency, 1)
            eight = wrk_saturate(base, texts, args.seconds, args.concurrency // 4, 8)
        else:
            url = f"{base}/analyze-sentiment"
            one = asyncio.run(saturate(url, texts, args.seconds, args.concurrency, 1))
            eight = asyncio.run(saturate(url, texts, args.seconds, args.concurrency // 4, 8))
    finally:
        serving.stop(system)
    best = local["texts_per_s"][best_batch]
    result = {
        "texts": str(csv_path) if csv_path else "built-in probe texts",
        "in_process": local,
        "best_batch": best_batch,
        "served_low_load_p50_ms": served_p50,
        "served_saturation_1_text_per_request": one,
        "served_saturation_8_texts_per_request": eight,
        "target_throughput_ratio_1": one["texts_per_s"] / best,
        "target_throughput_ratio_8": eight["texts_per_s"] / best,
        "target_p50_gap_ms": served_p50 - local["batch1_p50_ms"],
        "workers": args.workers,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
    }
    table = Table(title="sentiment-minilm onnx-int8: served vs in-process (same run)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("in-process batch-1 p50", f"{local['batch1_p50_ms']:.2f} ms", "")
    table.add_row(f"in-process best (batch {best_batch})", f"{best:.0f} texts/s", "")
    table.add_row(
        "served p50 at low load",
        f"{served_p50:.2f} ms",
        f"gap {result['target_p50_gap_ms']:+.2f} ms (<= 5)",
    )
    table.add_row(
        "served saturation, 1 text/request",
        f"{one['texts_per_s']:.0f} texts/s",
        f"{100 * result['target_throughput_ratio_1']:.0f}% (>= 80%)",
    )
    table.add_row(
        "served saturation, 8 texts/request",
        f"{eight['texts_per_s']:.0f} texts/s",
        f"{100 * result['target_throughput_ratio_8']:.0f}% (>= 80%)",
    )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predictor_targets.json").write_text(json.dumps(result, indent=2))
    console.print(f"wrote {RESULTS / 'predictor_targets.json'}")


if __name__ == "__main__":
    main()
