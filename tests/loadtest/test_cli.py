"""`loadtest run` for real: a real HTTP server on 127.0.0.1, the CLI in its own process (as
Locust's gevent patching requires), and the files it writes."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port

HERE = Path(__file__).parent


def start_stall_server(*args: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    command = [sys.executable, str(HERE / "stall_server.py"), "--port", str(port), *args]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return f"http://127.0.0.1:{port}", process


@pytest.fixture
def stalling_server() -> Iterator[str]:
    url, process = start_stall_server("--delay-ms", "5", "--stall-at", "2", "--stall-s", "1")
    yield url
    process.kill()
    process.wait(timeout=10)


def test_sweep_finds_the_capacity_of_a_serial_server(tmp_path: Path) -> None:
    url, process = start_stall_server("--delay-ms", "20", "--serial")  # capacity 50 req/s
    try:
        result = loadtest(
            "sweep",
            "--host",
            url,
            "--slo-p99-ms",
            "300",
            "--start-rate",
            "10",
            "--max-rate",
            "200",
            "--step-duration",
            "4",
            "--precision",
            "0.15",
            "--out",
            str(tmp_path),
        )
    finally:
        process.kill()
        process.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    # Above 50 req/s the backlog grows by (rate/50 - 1) s per second, so over a 4 s step the
    # last waits pass the 300 ms SLO only from about 50 * (1 + 0.3 / 4) = 54 req/s: a
    # capacity a little over 50 is the right answer for a short step, not an error.
    assert 20 <= sweep["capacity_rps"] <= 62
    rates = [s["rate"] for s in sweep["steps"]]
    assert rates[:3] == [10, 20, 40] and (tmp_path / "sweep.png").stat().st_size > 0
    assert "| rate (req/s) | p99 (ms) |" in result.stdout and "| 10.00 |" in result.stdout


def loadtest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "loadtest"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_open_loop_keeps_the_rate_through_a_stall_and_the_stall_shows(
    stalling_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = loadtest(
        "run",
        "--host",
        stalling_server,
        "--scenario",
        "steady",
        "--rate",
        "40",
        "--duration",
        "6",
        "--seed",
        "3",
        "--slo-ms",
        "100",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "requests.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert summary["requests"] == len(rows) and 180 < len(rows) < 300
    assert summary["failures"] == 0 and summary["dropped"] == 0
    sends = np.array([float(r["sent"]) for r in rows])
    intended = np.array([float(r["intended"]) for r in rows])
    # open loop: every request left on time, stall or not
    assert np.abs(sends - intended).max() < 0.1
    start = intended.min()
    in_stall = ((sends - start >= 2.1) & (sends - start < 2.9)).sum()
    assert in_stall >= 0.6 * 40 * 0.8  # the sender kept going while the server stalled
    latencies = np.array([float(r["latency_ms"]) for r in rows])
    assert summary["latency_ms"]["p99"] > 500  # the stall is in the tail...
    assert summary["latency_ms"]["p50"] < 100  # ...not in the median
    assert summary["latency_ms"]["p50"] == pytest.approx(np.percentile(latencies, 50), abs=1e-3)
    assert summary["latency_ms"]["max"] == pytest.approx(latencies.max(), abs=1e-3)
    assert summary["slo"]["attainment"] == pytest.approx((latencies <= 100).mean())
    assert summary["interarrival"]["theoretical_mean"] == pytest.approx(1 / 40)
    assert summary["nominal_rate"] == 40
    for name in (
        "interarrival.png",
        "latency_over_time.png",
        "throughput_over_time.png",
        "latency_cdf.png",
        "report.md",
    ):
        assert (out / name).stat().st_size > 0


def test_unreachable_server_counts_failures_not_crashes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = loadtest(
        "run",
        "--host",
        f"http://127.0.0.1:{free_port()}",
        "--rate",
        "20",
        "--duration",
        "1",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] > 5 and summary["failures"] == summary["requests"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario"),
        (["--duration", "0"], "positive"),
        (["--texts", "/no/such.csv"], "does not exist"),
        (["--endpoint", "oip"], "needs --model"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = loadtest("run", "--host", "http://127.0.0.1:9", "--out", str(tmp_path), *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_recorded_trace_is_replayed_time_scaled(stalling_server: str, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    stamps = [1000.0 + 0.1 * i for i in range(10)] + [1003.0]
    trace.write_text("timestamp\n" + "\n".join(map(str, stamps)) + "\n")
    out = tmp_path / "run"
    result = loadtest(
        "run",
        "--host",
        stalling_server,
        "--trace",
        str(trace),
        "--time-scale",
        "0.5",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    with open(out / "requests.csv", newline="") as handle:
        intended = np.array([float(r["intended"]) for r in csv.DictReader(handle)])
    np.testing.assert_allclose(
        # requests.csv keeps epoch seconds to the microsecond: two roundings apart
        intended - intended[0],
        [0.05 * i for i in range(10)] + [1.5],
        atol=2.5e-6,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"]["name"] == "trace" and summary["failures"] == 0
    bad = loadtest(
        "run", "--host", stalling_server, "--trace", str(tmp_path / "none.csv"), "--out", str(out)
    )
    assert bad.returncode == 2 and "cannot replay" in bad.stderr
