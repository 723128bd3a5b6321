"""Overload, a worker SIGKILL and server restarts, on the real sentiment-minilm (issue 13).

    uv run python -m benchmarks.reliability [--out benchmarks/results/reliability]
        [--only overload,kill,restart] [--step-s 15] [--rates 20,40,...] [--quick]

`predictor serve --model sentiment-minilm --workers 2` on 127.0.0.1 (a fresh one per part);
the load is `loadtest run --trace` in its own process (open loop, latency from the intended
send time), one text per POST /analyze-sentiment, texts from ../shared/data/sp1786/val.csv
when there, else a fixed set of 50.

1. Overload: 15 s Poisson steps up the rates until one has p99 > 200 ms or >= 1% not
   admitted; S is the step before it. Then one schedule: 10 s at S, 20 s at 3xS, 15 s at S;
   recovered from the first moment (0.5 s steps) after which the rest of the run, pooled,
   has p99 <= 1.25x the p99 before the burst and sheds <= 1%.
2. Kill: 30 req/s for 40 s, SIGKILL worker 1 at 15 s; /placement/ polled over fresh
   connections until a new pid of that worker answers ready.
3. Restart, three times: SIGTERM `predictor serve`, time its exit, start it again with the
   same arguments, time until /readyz is 200.

A full run takes about 8 minutes on 2 cores, most of it the rate steps (each also pays
about 5 s for the generator's start-up and report); --quick (about 3 minutes) shortens every
part, for a smoke test. Writes reliability.json,
reliability.md, reliability.png and the servers' logs under --out."""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from benchmarks.serving import free_port
from modelserve_loadtest.records import read_requests

MODEL = "sentiment-minilm"
BIN = Path(sys.executable).parent
DATA = Path(__file__).resolve().parents[2] / "shared/data/sp1786/val.csv"
TIMEOUT_S = 10.0  # an answer later than this counts as a client timeout
RECOVERY_WINDOW_S = 2.0
SUBJECTS = "The delivery|Customer support|This phone|The hotel room|Our flight|The new update|"
SUBJECTS += "Dinner last night|The battery|This movie|The checkout page"
VERDICTS = "was fantastic, I would recommend it to anyone!|was awful and nobody cared.|"
VERDICTS += "was fine, nothing special really.|broke after two days #fail|beat my hopes :)"
COLUMNS = ["requests", "admitted", "p50 ms", "p99 ms", "shed", "failed", "send lag p99 ms"]
console = Console(width=None if sys.stdout.isatty() else 120)


def cpu_probe_s() -> float:
    """Seconds one core takes for a fixed pure-Python loop (best of 3): this shared VM's
    speed drifts up to 3x between hours, so every part records how fast the machine was."""
    best = float("inf")
    for _ in range(3):
        start, total = time.perf_counter(), 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best, 4)


def cpu_model() -> str:
    """The host CPU's name: this VM has been an AMD EPYC on some days and an Intel Xeon on
    others, and the same model runs up to 3x slower on one than on the other."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def stats(values: list[float]) -> dict:
    p50, p99 = np.percentile(values, [50, 99]).tolist() if values else (None, None)
    return {"n": len(values), "p50_ms": p50, "p99_ms": p99}


class Server:
    """One `predictor serve` in its own session, with the same arguments on every start."""

    def __init__(self, log: Path) -> None:
        self.url, self.log, self.process = f"http://127.0.0.1:{free_port()}", log, None
        port = self.url.rsplit(":", 1)[1]
        self.args = [
            str(BIN / "predictor"),
            *f"serve --model {MODEL} --workers 2 --grpc-port 0 --port {port}".split(),
        ]

    def start(self) -> float:
        """Seconds from spawning to /readyz 200."""
        started = time.perf_counter()
        with open(self.log, "ab") as sink:
            self.process = subprocess.Popen(
                self.args, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        while time.perf_counter() - started < 300 and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"predictor did not start:\n{self.log.read_text()[-2000:]}")

    def terminate(self) -> tuple[float, int]:
        """SIGTERM the server process alone: seconds until it exited, processes it left."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        took = time.perf_counter() - started
        left = len(self.group())
        self.stop()
        return took, left

    def group(self) -> list[psutil.Process]:
        """The processes still in the server's process group (its session)."""
        self.process.poll()  # reap the server itself once it exited
        return [p for p in psutil.process_iter() if _pgid(p.pid) == self.process.pid]

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            if self.process is None or not self.group():
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            deadline = time.monotonic() + wait
            while self.group() and time.monotonic() < deadline:
                time.sleep(0.2)

    def workers(self) -> dict[int, psutil.Process]:
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                line = child.cmdline()
                if "--worker-id" in line and child.status() != psutil.STATUS_ZOMBIE:
                    found[int(line[line.index("--worker-id") + 1])] = child
            except (psutil.Error, ValueError, IndexError):
                continue
        return found


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def poisson(segments: list[tuple[float, float]], seed: int) -> np.ndarray:
    """Arrival offsets of consecutive Poisson segments (seconds, req/s); the first at 0."""
    rng, parts, start = np.random.default_rng(seed), [np.zeros(1)], 0.0
    for duration, rate in segments:
        times = start + np.cumsum(rng.exponential(1 / rate, int(duration * rate * 1.5) + 50))
        parts.append(times[times < start + duration])
        start += duration
    return np.concatenate(parts)


def load(url: str, offsets: np.ndarray, texts: Path, work: Path, started: Path | None = None):
    """Start `loadtest run` replaying `offsets`; returns the process."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "trace.csv").write_text("timestamp\n" + "".join(f"{t:.6f}\n" for t in offsets))
    command = [str(BIN / "loadtest"), "run", "--host", url, "--trace", str(work / "trace.csv")]
    command += ["--texts", str(texts), "--out", str(work), "--quiet"]
    command += ["--started-file", str(started)] if started else []
    with open(work / "loadtest.log", "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def started(process: subprocess.Popen, marker: Path) -> float:
    """Wait for the load's first arrival; its epoch time."""
    while not marker.exists() or not marker.read_text().strip():
        if process.poll() is not None:
            return time.time()
        time.sleep(0.01)
    return float(marker.read_text())


def drive(url: str, offsets: np.ndarray, texts: Path, work: Path) -> tuple[list[dict], float]:
    """One run to its end; also the CPU the generator used per second while sending (it
    shares the cores with the server), without its start-up and report."""
    process = load(url, offsets, texts, work, work / "started")
    start = started(process, work / "started")
    try:
        generator = psutil.Process(process.pid)
        before = sum(generator.cpu_times()[:2])
        time.sleep(max(0.0, start + float(offsets[-1]) - time.time()))
        cpu = (sum(generator.cpu_times()[:2]) - before) / max(float(offsets[-1]), 1e-9)
    except psutil.Error:
        cpu = None
    return finish(process, work), cpu


def finish(process: subprocess.Popen, work: Path) -> list[dict]:
    if process.wait() != 0:
        raise SystemExit(f"loadtest failed:\n{(work / 'loadtest.log').read_text()[-2000:]}")
    found = read_requests(work / "requests.csv")
    start = min(r.intended for r in found)
    return [
        {
            "t": round(r.intended - start, 4),
            "ms": None if r.latency_ms is None else round(r.latency_ms, 2),
            "lag_ms": None if r.sent is None else round(1000 * (r.sent - r.intended), 2),
            # from the actual send: the server's share, without the generator's own lag
            "served_ms": None
            if r.sent is None or r.finished is None
            else round(1000 * (r.finished - r.sent), 2),
            "status": r.status,
            "error": None if r.ok else r.error,
        }
        for r in found
    ]


def failed(r: dict) -> bool:
    """No answer in time: a connection error, a timeout, or an answer after TIMEOUT_S."""
    return r["status"] == 0 or r["ms"] is None or r["ms"] > TIMEOUT_S * 1000


def window(records: list[dict], lo: float, hi: float) -> dict:
    """Requests sent in [lo, hi): admitted (200) and shed (429/503) latencies, failures."""
    inside = [r for r in records if lo <= r["t"] < hi]
    other = collections.Counter(
        str(r["status"]) for r in inside if r["status"] not in (0, 200, 429, 503)
    )
    return {
        "requests": len(inside),
        "admitted": stats([r["ms"] for r in inside if r["status"] == 200 and not failed(r)]),
        "shed": stats([r["ms"] for r in inside if r["status"] in (429, 503)]),
        "failed": sum(failed(r) for r in inside),
        "other": dict(other),
        "lag_p99_ms": stats([r["lag_ms"] for r in inside if r["lag_ms"] is not None])["p99_ms"],
    }


def sliding(records: list[dict], lo: float, hi: float) -> list[dict]:
    """The RECOVERY_WINDOW_S windows inside [lo, hi), one every 0.5 s."""
    count = int(2 * (hi - lo - RECOVERY_WINDOW_S)) + 1
    return [window(records, lo + 0.5 * k, lo + 0.5 * k + RECOVERY_WINDOW_S) for k in range(count)]


def row(w: dict) -> list:
    a, shed = w["admitted"], w["shed"]["n"]
    return [w["requests"], a["n"], a["p50_ms"], a["p99_ms"], shed, w["failed"], w["lag_p99_ms"]]


def overload(server: Server, texts: Path, work: Path, args: argparse.Namespace) -> dict:
    steps, sustainable = [], None
    for index, rate in enumerate(args.rates):
        out = work / f"step-{rate:g}"
        records, cpu = drive(server.url, poisson([(args.step_s, rate)], index), texts, out)
        w = window(records, 0, 1e9) | {"generator_cpu": cpu}
        p99, refused = w["admitted"]["p99_ms"], w["requests"] - w["admitted"]["n"]
        w |= {
            "rate": rate,
            "passes": p99 is not None and p99 <= 200 and refused < 0.01 * w["requests"],
        }
        steps.append(w)
        figures = ", ".join(f"{c} {fmt(v)}" for c, v in zip(COLUMNS, row(w), strict=True))
        console.print(f"step {rate:g} req/s: {figures} -> {'ok' if w['passes'] else 'over'}")
        if not w["passes"]:
            break
        sustainable = rate
        time.sleep(2)  # let the queue empty before the next step
    rate, (pre, burst, post) = sustainable or args.rates[0], args.burst_spans
    console.print(
        f"burst: {pre:g} s at {rate:g}, {burst:g} s at {3 * rate:g}, {post:g} s at {rate:g} req/s"
    )
    time.sleep(2)
    schedule = poisson([(pre, rate), (burst, 3 * rate), (post, rate)], 99)
    records, cpu = drive(server.url, schedule, texts, work / "burst")
    end = pre + burst
    before, during = window(records, 0, pre), window(records, pre, end)
    # Recovered at the first k (0.5 s steps, within the first half of what follows the
    # burst) from which everything sent until the end, pooled, has its admitted p99 within
    # 1.25x the p99 before the burst and sheds <= 1% (what S itself allows): a burst whose
    # effect lingers for a second puts ~7% of what follows past that p99. The 2-s windows
    # are reported and plotted; a rule that every later window stay under the worst one
    # before compared two maxima of one distribution (S is the edge of what passes: its 2-s
    # p99 swung 20-60 ms with no burst at all) and failed by chance about half the time.
    normal = [w["admitted"]["p99_ms"] for w in sliding(records, RECOVERY_WINDOW_S, pre)]
    seconds = [w["admitted"]["p99_ms"] for w in sliding(records, end, end + post)]
    bound = 1.25 * (before["admitted"]["p99_ms"] or 0)
    rest = [window(records, end + 0.5 * k, end + post) for k in range(int(post) + 1)]
    good = [
        w["admitted"]["p99_ms"] is not None
        and w["admitted"]["p99_ms"] <= bound
        and w["shed"]["n"] <= 0.01 * w["requests"]
        for w in rest
    ]
    recovered = next((k for k, ok in enumerate(good) if ok), None)
    by_status = {s: stats([r["ms"] for r in records if r["status"] == s]) for s in (429, 503)}
    ratio = None
    if during["admitted"]["p99_ms"] and before["admitted"]["p99_ms"]:
        ratio = during["admitted"]["p99_ms"] / before["admitted"]["p99_ms"]
    return {
        "steps": steps,
        "sustainable_rps": sustainable,
        "burst_base_rps": rate,
        "generator_cpu": cpu,
        "spans_s": [pre, burst, post],
        "windows": {"before": before, "during": during, "after": window(records, end, end + post)},
        "p99_ratio": ratio,
        "rejections": stats([r["ms"] for r in records if r["status"] in (429, 503)]),
        "rejections_from_send": stats(
            [
                r["served_ms"]
                for r in records
                if r["status"] in (429, 503) and r["served_ms"] is not None
            ]
        ),
        "admitted_during_from_send": stats(
            [
                r["served_ms"]
                for r in records
                if pre <= r["t"] < end and r["status"] == 200 and r["served_ms"] is not None
            ]
        ),
        "rejections_by_status": by_status,
        "shed_fraction_during": during["shed"]["n"] / max(1, during["requests"]),
        "failed": sum(failed(r) for r in records),
        "errors": dict(collections.Counter(r["error"] for r in records if r["error"])),
        "recovery_bound_ms": bound,
        "p99_2s_windows_before_ms": normal,
        "p99_2s_windows_after_ms": seconds,
        "recovery_s": None if recovered is None else 0.5 * recovered,
        "records": records,
    }


def kill(server: Server, texts: Path, work: Path, args: argparse.Namespace) -> dict:
    (duration, at), index, marker = args.kill_spans, 1, work / "kill-started"
    process = load(server.url, poisson([(duration, 30.0)], 7), texts, work / "kill", marker)
    start = started(process, marker)
    time.sleep(max(0.0, start + at - time.time()))
    victim = server.workers()[index]
    killed = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    console.print(f"[{killed - start:5.2f} s] SIGKILL worker {index} (pid {victim.pid})")
    spawned = replaced = None
    polls: collections.Counter[str] = collections.Counter()
    client = httpx.Client(timeout=1, limits=httpx.Limits(max_keepalive_connections=0))
    while replaced is None and time.time() - killed < 60:
        if spawned is None and index in (now := server.workers()) and now[index].pid != victim.pid:
            spawned = time.time()
        try:
            body = client.get(f"{server.url}/placement/").json()
            polls[f"worker {body['worker']}"] += 1
            if body["worker"] == index and body["process"]["pid"] != victim.pid and body["ready"]:
                replaced = time.time()
                pid = body["process"]["pid"]
                console.print(f"[{replaced - start:5.2f} s] worker {index} serving (pid {pid})")
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            polls[type(exc).__name__] += 1
        time.sleep(0.02)  # several polls per 100 ms, each on a fresh connection
    client.close()
    records = finish(process, work / "kill")
    kill_t, serving = killed - start, None if replaced is None else replaced - killed
    until = kill_t + (serving if serving is not None else duration) + 2
    return {
        "rate_rps": 30.0,
        "duration_s": duration,
        "kill_at_s": kill_t,
        "killed_pid": victim.pid,
        "worker": index,
        "respawn_seen_s": None if spawned is None else spawned - killed,
        "serving_s": serving,
        "polls": dict(polls),
        "windows": {
            "before": window(records, 0, kill_t),
            "kill to serving + 2 s": window(records, kill_t, until),
            "after": window(records, until, duration),
        },
        "failed": sum(failed(r) for r in records),
        "errors": dict(collections.Counter(r["error"] for r in records if r["error"])),
        "records": records,
    }


def restart(server: Server, reps: int) -> dict:
    rounds = []
    for rep in range(reps):
        exit_s, left = server.terminate()
        ready_s = server.start()
        rounds.append({"exit_s": exit_s, "left_behind": left, "ready_s": ready_s})
        console.print(
            f"restart {rep + 1}: exit {exit_s:.2f} s ({left} processes left), ready {ready_s:.2f} s"
        )
    return {
        "rounds": rounds,
        "median_exit_s": float(np.median([r["exit_s"] for r in rounds])),
        "median_ready_s": float(np.median([r["ready_s"] for r in rounds])),
    }


def targets(report: dict) -> list[dict]:
    found = []
    o, k, r = (report.get(part) for part in ("overload", "kill", "restart"))
    for part, name, value, bound in [
        (o, "burst: admitted p99 during / p99 at S", o and o["p99_ratio"], 2),
        (o, "burst: rejection (429/503) p99 ms", o and o["rejections"]["p99_ms"], 20),
        (o, "burst: timeouts + connection errors", o and o["failed"], 0),
        (o, "burst: recovery s", o and o["recovery_s"], 2),
        (k, "kill: replacement serving s", k and k["serving_s"], 5),
        (
            k,
            "kill: p99 ms, kill to serving + 2 s",
            k and k["windows"]["kill to serving + 2 s"]["admitted"]["p99_ms"],
            250,
        ),
        (r, "restart: median s to /readyz 200", r and r["median_ready_s"], 5),
    ]:
        met = value is not None and value <= bound
        found += [dict(target=name, value=value, bound=bound, met=met)] if part else []
    return found


def fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tables(report: dict) -> list[tuple[str, list[str], list[list]]]:
    met = [
        [t["target"], t["value"], t["bound"], "yes" if t["met"] else "NO"]
        for t in report["targets"]
    ]
    out = [("Targets", ["target", "value", "bound", "met"], met)]
    if o := report.get("overload"):
        steps = [[s["rate"], *row(s), s["generator_cpu"], s["passes"]] for s in o["steps"]]
        out.append(("Overload steps", ["rate", *COLUMNS, "load CPU/s", "within"], steps))
        pre, burst, post = o["spans_s"]
        title = f"Burst: S = {o['sustainable_rps']} req/s; {pre:g} s at S, {burst:g} at 3xS, "
        title += f"{post:g} at S"
        out.append((title, ["window", *COLUMNS], [[n, *row(w)] for n, w in o["windows"].items()]))
        figures = [
            [f"{s} n / p50 / p99 ms", " / ".join(map(fmt, v.values()))]
            for s, v in o["rejections_by_status"].items()
        ]
        figures += [
            [
                "from the actual send (no generator lag): 429/503 p50 / p99 ms",
                " / ".join(fmt(o["rejections_from_send"][k]) for k in ("p50_ms", "p99_ms")),
            ],
            [
                "from the actual send: admitted during the burst p50 / p99 ms",
                " / ".join(fmt(o["admitted_during_from_send"][k]) for k in ("p50_ms", "p99_ms")),
            ],
            ["shed fraction during the burst", o["shed_fraction_during"]],
            ["admitted req/s during the burst", o["windows"]["during"]["admitted"]["n"] / burst],
            ["load generator CPU s per s", o["generator_cpu"]],
            ["recovery bound ms (1.25x the p99 before the burst)", o["recovery_bound_ms"]],
            [
                "admitted p99, 2-s windows every 0.5 s before the burst (from 2 s)",
                ", ".join(map(fmt, o["p99_2s_windows_before_ms"])),
            ],
            [
                "admitted p99, 2-s windows every 0.5 s after the burst",
                ", ".join(map(fmt, o["p99_2s_windows_after_ms"])),
            ],
            ["errors", json.dumps(o["errors"]) if o["errors"] else "none"],
        ]
        out.append(("Rejections and recovery", ["figure", "value"], figures))
    if k := report.get("kill"):
        title = f"Worker SIGKILL: pid {k['killed_pid']} at {k['kill_at_s']:.2f} s; respawned "
        title += f"after {fmt(k['respawn_seen_s'])} s, serving after {fmt(k['serving_s'])} s"
        out.append((title, ["window", *COLUMNS], [[n, *row(w)] for n, w in k["windows"].items()]))
        figures = [
            ["request errors", json.dumps(k["errors"])],
            ["/placement/ polls", json.dumps(k["polls"])],
        ]
        out.append(("Kill: errors and polls", ["figure", "value"], figures))
    if r := report.get("restart"):
        rounds = [
            [i + 1, x["exit_s"], x["left_behind"], x["ready_s"]] for i, x in enumerate(r["rounds"])
        ]
        rounds.append(["median", r["median_exit_s"], "", r["median_ready_s"]])
        out.append(
            (
                "Restart: SIGTERM, then start again",
                ["round", "exit s", "left behind", "ready s"],
                rounds,
            )
        )
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Reliability of {MODEL}: overload, worker SIGKILL, restart ({m['date']})",
        "",
        f"`uv run python -m benchmarks.reliability {report['argv']}` on {m['cpus']} CPUs "
        f"({m.get('cpu_model', '?')}), Python "
        f"{m['python']}, {m['platform']}. 2 workers, one text per request, open-loop `loadtest "
        "run --trace`, latency from the intended send time; shed = 429 + 503. Machine speed "
        "before each part (s for a fixed Python loop, lower is faster; it drifts up to 3x): "
        + ", ".join(f"{k} {v:g}" for k, v in report.get("cpu_probe_s", {}).items())
        + ".",
        "",
    ]
    for title, headers, rows in tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows] + [""]
    return "\n".join([*lines, "![reliability](reliability.png)", ""])


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("overload", "kill") if report.get(p)]
    if not parts:
        return
    fig, axes = plt.subplots(len(parts), 1, figsize=(11, 4 * len(parts)), squeeze=False)
    for ax, part in zip(axes[:, 0], parts, strict=True):
        data, records = report[part], report[part]["records"]
        ok = [r for r in records if r["status"] == 200 and r["ms"]]
        ax.scatter([r["t"] for r in ok], [r["ms"] for r in ok], s=3, label="admitted (200)")
        for status, color in ((429, "red"), (503, "darkorange")):
            if mine := [r for r in records if r["status"] == status]:
                ts, ms = [r["t"] for r in mine], [max(r["ms"], 0.1) for r in mine]
                ax.scatter(ts, ms, s=8, marker="x", color=color, label=f"rejected {status}")
        if bad := [r["t"] for r in records if failed(r)]:
            ax.scatter(
                bad,
                [TIMEOUT_S * 1000] * len(bad),
                marker="v",
                color="black",
                label="timeout / connection error",
            )
        if part == "overload":
            pre, burst, _ = data["spans_s"]
            ax.axvspan(pre, pre + burst, color="grey", alpha=0.2, label="3 x S")
            ax.axhline(data["recovery_bound_ms"], color="green", ls=":", label="1.25 x p99 before")
            if data["recovery_s"] is not None:
                ax.axvline(pre + burst + data["recovery_s"], color="green", label="recovered")
            ax.set_title(f"overload: S = {data['burst_base_rps']:g} req/s, 3 x S for {burst:g} s")
        else:
            ax.axvline(data["kill_at_s"], color="red", ls="--", label="SIGKILL worker")
            if data["serving_s"] is not None:
                ax.axvline(
                    data["kill_at_s"] + data["serving_s"],
                    color="green",
                    label="replacement serving",
                )
            ax.set_title("worker SIGKILL at 30 req/s, 2 workers")
        ax.set(
            yscale="log", xlabel="seconds into the run (intended send time)", ylabel="latency, ms"
        )
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def texts_file(root: Path) -> Path:
    if DATA.exists():
        return DATA
    path = root / "texts.csv"
    pairs = [f'"{s} {v}"\n' for s in SUBJECTS.split("|") for v in VERDICTS.split("|")]
    path.write_text("text\n" + "".join(pairs))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability"))
    parser.add_argument("--only", default="overload,kill,restart")
    parser.add_argument("--step-s", type=float, default=15.0, help="seconds per overload step")
    parser.add_argument("--rates", default=",".join(str(r) for r in range(20, 801, 20)))
    parser.add_argument("--quick", action="store_true", help="shortened smoke configuration")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.rates = [float(r) for r in args.rates.split(",")]
    args.burst_spans, args.kill_spans, reps = (20.0, 20.0, 15.0), (40.0, 15.0), 3
    if args.quick:
        args.step_s, args.burst_spans, args.kill_spans = 5.0, (5.0, 8.0, 6.0), (20.0, 8.0)
        args.rates = [r for r in args.rates if r % 40 == 0]
    machine = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    machine |= {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }
    report: dict = {"argv": " ".join(sys.argv[1:]), "machine": machine}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        root = Path(scratch)
        for part in [p for p in ("overload", "kill", "restart") if p in args.only.split(",")]:
            console.rule(part)
            report.setdefault("cpu_probe_s", {})[part] = cpu_probe_s()
            server = Server(args.out / f"server-{part}.log")
            try:
                console.print(f"server ready in {server.start():.2f} s at {server.url}")
                if part == "overload":
                    report[part] = overload(server, texts_file(root), root / part, args)
                elif part == "kill":
                    report[part] = kill(server, texts_file(root), root, args)
                else:
                    report[part] = restart(server, reps)
            finally:
                server.stop()
    report["targets"], report["wall_s"] = targets(report), time.perf_counter() - started
    # per-request records feed the plot only: the JSON keeps the figures (it was 2.7 MB)
    figures = {
        part: {k: v for k, v in data.items() if k != "records"} if isinstance(data, dict) else data
        for part, data in report.items()
    }
    (args.out / "reliability.json").write_text(json.dumps(figures, indent=1))
    for title, headers, rows in tables(report):
        table = Table(*headers, title=title, title_justify="left")
        for r in rows:
            table.add_row(*(fmt(v) for v in r))
        console.print(table)
    (args.out / "reliability.md").write_text(markdown(report))
    plot(report, args.out / "reliability.png")
    console.print(f"{report['wall_s']:.0f} s; wrote reliability.json, .md and .png in {args.out}")


if __name__ == "__main__":
    main()
