"""A release under load, and what gRPC costs against REST, on the real sentiment-minilm.

    uv run python -m benchmarks.release [--out benchmarks/results/release] [--rate 20]

1. A scratch registry gets sentiment-minilm (onnx-int8) as version 1 and the same artifacts
   republished as version 2; `predictor serve` (2 workers) follows `@production`, polling the
   alias every second.
2. One text per call, interleaved round by round: OIP REST JSON (httpx, keep-alive), OIP REST
   with Triton's binary tensors (tritonclient.http) and OIP gRPC (tritonclient.grpc): p50/p99.
3. Open-loop Poisson load (fixed seed) for 90 s; the alias moves to 2 at 30 s and back to 1 at
   60 s. Per window (before / the 10 s after each move / after): requests, failures, p50 and
   p99; each worker's time to swap from its log; worker memory before and after.

Writes release.json, release.md and release.png under --out."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil

from benchmarks.serving import free_port

MODEL = "sentiment-minilm"
TEXT = "The delivery was late but the support team sorted it out quickly."
MOVES = {30.0: 2, 60.0: 1}
DURATION_S = 90.0


def build_registry(root: Path) -> str:
    from modelserve_registry.bootstrap import bootstrap
    from modelserve_runtime.manifest import Variant
    from modelserve_runtime.store import Registry

    registry = Registry.open(str(root / "registry"))
    print("building sentiment-minilm onnx-int8 (version 1) ...", flush=True)
    bootstrap(registry, root / "cache", names=[MODEL], variants=[Variant.ONNX_INT8])
    first = registry.manifest(f"{MODEL}:1")
    registry.publish(first.model_copy(update={"description": "republished for the benchmark"}))
    return str(root / "registry")


def start(root: Path, registry_uri: str) -> tuple[subprocess.Popen, str, str, Path]:
    port, grpc_port = free_port(), free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "PREDICTOR_MODELS": f"{MODEL}@production=onnx-int8",
        "PREDICTOR_WORKERS": "2",
        "PREDICTOR_PORT": str(port),
        "PREDICTOR_GRPC_PORT": str(grpc_port),
        "PREDICTOR_ALIAS_POLL_S": "1",
        "PREDICTOR_REGISTRY_URI": registry_uri,
        "REGISTRY_CACHE_DIR": str(root / "pulled"),
    }
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "predictor"), "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url, f"127.0.0.1:{grpc_port}", log
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    raise SystemExit(f"predictor did not start:\n{log.read_text()[-2000:]}")


def protocol_costs(url: str, grpc_address: str, rounds: int) -> dict:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [TEXT]}]}
    rest = httpx.Client(timeout=30)
    triton_http = httpclient.InferenceServerClient(url.removeprefix("http://"))
    triton_grpc = grpcclient.InferenceServerClient(grpc_address)

    def rest_json() -> None:
        assert rest.post(f"{url}/v2/models/{MODEL}/infer", json=body).status_code == 200

    def rest_binary() -> None:
        tensor = httpclient.InferInput("text", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([TEXT.encode()], dtype=object))
        triton_http.infer(MODEL, [tensor])

    def over_grpc() -> None:
        tensor = grpcclient.InferInput("text", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([TEXT.encode()], dtype=object))
        triton_grpc.infer(MODEL, [tensor])

    calls = {
        "REST JSON (httpx)": rest_json,
        "REST binary (tritonclient.http)": rest_binary,
        "gRPC (tritonclient.grpc)": over_grpc,
    }
    for call in calls.values():  # warm connections and sessions
        for _ in range(20):
            call()
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(rounds):  # interleaved, order rotating every round
        names = list(calls)
        for name in names[index % 3 :] + names[: index % 3]:
            started = time.perf_counter()
            calls[name]()
            timings[name].append((time.perf_counter() - started) * 1000)
    rest.close()
    triton_http.close()
    triton_grpc.close()
    return {
        name: {"p50_ms": float(np.median(v)), "p99_ms": float(np.percentile(v, 99)), "n": len(v)}
        for name, v in timings.items()
    }


def worker_rss_mb(server: subprocess.Popen) -> dict[int, float]:
    found = {}
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            if "--worker-id" in " ".join(child.cmdline()):
                found[child.pid] = child.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return found


def release_under_load(url: str, registry_uri: str, rate: float, seed: int) -> list[dict]:
    from modelserve_runtime.store import Registry

    registry = Registry.open(registry_uri)
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.exponential(1 / rate, int(rate * DURATION_S * 1.2)))
    offsets = offsets[offsets < DURATION_S]
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [TEXT]}]}
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
    records: list[dict] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def send(offset: float) -> None:
        sent = time.perf_counter()
        try:
            response = client.post(f"{url}/v2/models/{MODEL}/infer", json=body)
            ok = response.status_code == 200
            answer = response.json() if ok else {}
            record = {
                "t": offset,
                "ms": (time.perf_counter() - sent) * 1000,
                "status": response.status_code,
                "version": answer.get("model_version"),
                "worker": answer.get("parameters", {}).get("worker"),
            }
        except httpx.HTTPError as exc:
            record = {"t": offset, "ms": None, "status": 0, "error": str(exc)}
        with lock:
            records.append(record)

    def moves() -> None:
        for at, version in sorted(MOVES.items()):
            time.sleep(max(0.0, start + at - time.perf_counter()))
            registry.tag(MODEL, version, "production")
            print(f"[{at:5.1f} s] production -> {version}", flush=True)

    mover = threading.Thread(target=moves)
    mover.start()
    with ThreadPoolExecutor(64) as pool:
        for offset in offsets:
            time.sleep(max(0.0, start + offset - time.perf_counter()))
            pool.submit(send, float(offset))
    mover.join()
    client.close()
    return sorted(records, key=lambda r: r["t"])


def windows(records: list[dict]) -> list[dict]:
    spans = [
        ("before", 5.0, 30.0),
        ("move to 2 (+10 s)", 30.0, 40.0),
        ("between", 40.0, 60.0),
        ("move to 1 (+10 s)", 60.0, 70.0),
        ("after", 70.0, DURATION_S),
    ]
    rows = []
    for name, lo, hi in spans:
        inside = [r for r in records if lo <= r["t"] < hi]
        ok = [r["ms"] for r in inside if r["status"] == 200]
        rows.append(
            {
                "window": name,
                "from_s": lo,
                "to_s": hi,
                "requests": len(inside),
                "failed": len(inside) - len(ok),
                "p50_ms": float(np.median(ok)) if ok else None,
                "p99_ms": float(np.percentile(ok, 99)) if ok else None,
                "versions": sorted({r["version"] for r in inside if r.get("version")}),
            }
        )
    return rows


def switch_delays(records: list[dict]) -> list[dict]:
    """Per alias move and worker: seconds from the move to that worker's first answer by the
    new version (alias poll + pull + load + warm-up, as clients see it)."""
    found = []
    for at, version in sorted(MOVES.items()):
        for worker in sorted({r.get("worker") for r in records if r.get("worker")}):
            first = next(
                (
                    r["t"]
                    for r in records
                    if r["t"] >= at
                    and r.get("worker") == worker
                    and r.get("version") == str(version)
                ),
                None,
            )
            found.append(
                {
                    "move_at_s": at,
                    "version": version,
                    "worker": worker,
                    "seconds": None if first is None else round(first - at, 3),
                }
            )
    return found


def swap_times(log: Path) -> list[dict]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r"model (\S+) now serving version (\d+) \((\S+)\) after ([\d.]+) s", line)
        worker = re.search(r"\[entry_service:predictor:(\d+)\]", line)
        if match and worker:
            found.append(
                {
                    "worker": int(worker.group(1)),
                    "version": int(match.group(2)),
                    "seconds": float(match.group(4)),
                }
            )
    return found


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    for version, color in (("1", "tab:blue"), ("2", "tab:orange")):
        mine = [r for r in records if r.get("version") == version]
        ax.scatter(
            [r["t"] for r in mine],
            [r["ms"] for r in mine],
            s=4,
            color=color,
            label=f"answered by version {version}",
        )
    failed = [r["t"] for r in records if r["status"] != 200]
    if failed:
        ax.scatter(failed, [1] * len(failed), marker="x", color="red", label="failed")
    for at, version in MOVES.items():
        ax.axvline(at, color="grey", linestyle="--")
        ax.text(at, ax.get_ylim()[1] * 0.9, f" production -> {version}", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("seconds into the run (open-loop Poisson)")
    ax.set_ylabel("latency, ms")
    ax.set_title(f"{MODEL} release under load: 2 workers, alias moves at 30 s and 60 s")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(report: dict) -> str:
    lines = [
        f"# Release under load and protocol cost ({report['date']})",
        "",
        f"`uv run python -m benchmarks.release` on {report['machine']}. {MODEL} onnx-int8, "
        "2 workers, one text per request; one run.",
        "",
        "## One text per call (interleaved, keep-alive)",
        "",
        "| protocol | p50 ms | p99 ms | calls |",
        "|---|---:|---:|---:|",
    ]
    for name, row in report["protocols"].items():
        lines.append(f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['n']} |")
    lines += [
        "",
        f"## Release under open-loop Poisson load ({report['rate']} req/s, {DURATION_S:.0f} s)",
        "",
        "| window | s | requests | failed | p50 ms | p99 ms | versions answering |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in report["windows"]:
        p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else "-"
        p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] is not None else "-"
        lines.append(
            f"| {row['window']} | {row['from_s']:.0f}-{row['to_s']:.0f} | {row['requests']} | "
            f"{row['failed']} | {p50} | {p99} | {', '.join(row['versions'])} |"
        )
    lines += ["", "Time to swap per worker (pull + verify + load + warm-up, from its log):", ""]
    lines += [
        f"- worker {s['worker']} -> version {s['version']}: {s['seconds']:.2f} s"
        for s in report["swaps"]
    ]
    lines += [
        "",
        "From the alias move to each worker's first answer by the new version (alias polled "
        "every 1 s):",
        "",
    ]
    lines += [
        f"- {d['move_at_s']:.0f} s -> version {d['version']}, worker {d['worker']}: "
        f"{d['seconds']} s"
        for d in switch_delays(report["records"])
    ]
    lines += [
        "",
        "Version 2 is version 1's artifacts republished; the registry is a local folder, so its "
        "first pull is a local copy with sha256 checks (back to version 1 is a verified cache "
        "hit); from S3 the download adds its own time.",
        "",
        f"Worker RSS (MB) before: {report['rss_before_mb']}, after: {report['rss_after_mb']}",
        "",
        "![release](release.png)",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/release"))
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="redo md/png from the JSON")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report = json.loads((args.out / "release.json").read_text())
        plot(report["records"], args.out / "release.png")
        (args.out / "release.md").write_text(markdown(report))
        print(markdown(report))
        return
    with tempfile.TemporaryDirectory(prefix="release-bench-") as scratch:
        root = Path(scratch)
        registry_uri = build_registry(root)
        server, url, grpc_address, log = start(root, registry_uri)
        try:
            print("protocol costs ...", flush=True)
            protocols = protocol_costs(url, grpc_address, args.rounds)
            rss_before = sorted(round(v) for v in worker_rss_mb(server).values())
            print(f"release under load at {args.rate} req/s ...", flush=True)
            records = release_under_load(url, registry_uri, args.rate, args.seed)
            time.sleep(3)
            rss_after = sorted(round(v) for v in worker_rss_mb(server).values())
            swaps = swap_times(log)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "rate": args.rate,
        "protocols": protocols,
        "windows": windows(records),
        "failed_total": sum(1 for r in records if r["status"] != 200),
        "swaps": swaps,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "records": records,
    }
    (args.out / "release.json").write_text(json.dumps(report, indent=1))
    plot(records, args.out / "release.png")
    (args.out / "release.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
