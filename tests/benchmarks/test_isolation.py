"""One system on the CPU at a time (benchmarks/isolation.py), on real processes: a stand-in
server with a child of its own, stopped and continued as a whole, measured by a real
`loadtest run`, and a step that a CPU hog shares the machine with measured again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import pytest

from benchmarks import isolation, serving

STAND_IN = textwrap.dedent(
    """
    import subprocess, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])

    class Answer(BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"label": "positive"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    try:
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
    finally:
        child.kill()
    """
)


def stand_in(tmp_path: Path, name: str) -> serving.System:
    tmp_path.mkdir(exist_ok=True)
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    system = serving.System(name=name, description="stand-in", command=[], env={})
    system.command = [sys.executable, str(script), str(system.port)]
    return system


def statuses(system: serving.System) -> list[str]:
    return [p.status() for p in serving.tree(system.process.pid)]


def test_a_paused_system_is_stopped_whole_and_answers_again_once_continued(
    tmp_path: Path,
) -> None:
    system = stand_in(tmp_path, "stand-in")
    serving.start(system, tmp_path / "logs", timeout_s=60)
    pid = system.process.pid
    try:
        assert len(serving.tree(pid)) == 2  # the server and its child
        isolation.pause(system)
        assert system.paused
        assert statuses(system) == [psutil.STATUS_STOPPED] * 2
        with pytest.raises(httpx.TimeoutException):  # the kernel accepts; nobody answers
            httpx.get(system.host + "/readyz", timeout=1)
        isolation.resume(system, timeout_s=60)
        assert not system.paused
        assert psutil.STATUS_STOPPED not in statuses(system)
        assert httpx.get(system.host + "/readyz", timeout=10).status_code == 200
        isolation.pause(system)  # stopping a paused system continues it first
    finally:
        serving.stop(system)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_other_systems_are_stopped_while_one_is_measured(tmp_path: Path) -> None:
    systems = {name: stand_in(tmp_path / name, name) for name in ("measured", "idle")}
    texts = tmp_path / "texts.csv"
    texts.write_text("text\nI love it\nworst purchase ever\n")
    for system in systems.values():
        serving.start(system, tmp_path / "logs", timeout_s=60)
    try:
        isolation.pause(systems["measured"])  # left stopped by an earlier step
        record = isolation.measured_alone(
            systems, "measured", tmp_path / "step", rate=20, duration_s=2, texts=texts, seed=1
        )
        assert systems["idle"].paused and statuses(systems["idle"]) == [psutil.STATUS_STOPPED] * 2
        assert not systems["measured"].paused
    finally:
        for system in systems.values():
            serving.stop(system)
    assert record["failure_rate"] == 0 and record["requests"] >= 10


def test_a_step_that_shared_the_machine_is_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = stand_in(tmp_path, "measured")
    texts = tmp_path / "texts.csv"
    texts.write_text("text\nI love it\n")
    serving.start(system, tmp_path / "logs", timeout_s=60)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        monkeypatch.setattr(isolation, "ATTEMPTS", 2)
        kept = isolation.measured_alone(
            {"measured": system}, "measured", tmp_path / "step", rate=10, duration_s=2,
            texts=texts, seed=1,
        )  # fmt: skip
    finally:
        hog.kill()
        hog.wait()
        serving.stop(system)
    # the hog took a core (on a machine this busy or busier: still well over 0.1)
    assert kept["cores_other"] > isolation.CONTAMINATED_CORES
    assert (kept["attempts"], kept["contaminated"]) == (2, True)
    assert (tmp_path / "step").is_dir() and (tmp_path / "step-attempt2").is_dir()
