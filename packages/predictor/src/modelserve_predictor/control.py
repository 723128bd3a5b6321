"""How the workers of one predictor agree on what to serve.

BentoML's workers share one listening socket, so a repository request reaches one worker at
random. That worker writes the wanted state (per model: reference, variant, loaded or not)
under a new generation number into a directory all workers share, and waits until every
worker reports that generation applied. Each worker polls the file (a stat per tick), applies
changes, then writes its own report atomically. A worker that restarts reads the wanted state
before loading, so it comes back serving what the others serve."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelserve_predictor.errors import NotReady

WANTED = "wanted.json"


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class ControlDir:
    def __init__(self, path: Path, worker: int, workers: int) -> None:
        self.path = path
        self.worker = worker
        self.workers = workers
        self._seen: tuple[int, int, int] | None = None
        path.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def changed(self) -> bool:
        """Whether the wanted file was rewritten since the last call: one stat per tick
        instead of reading and parsing it ten times a second in every worker."""
        try:
            stat = (self.path / WANTED).stat()
        except FileNotFoundError:
            return False
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen == self._seen:
            return False
        self._seen = seen
        return True

    def wanted(self) -> dict[str, Any]:
        return read_json(self.path / WANTED) or {"generation": 0, "models": {}}

    def change(self, update: Callable[[dict[str, Any]], None]) -> int:
        """Apply `update` to the models map under the lock; returns the new generation."""
        with self._locked():
            state = self.wanted()
            update(state["models"])
            state["generation"] += 1
            write_atomically(self.path / WANTED, state)
            return state["generation"]

    def report(self, generation: int, models: dict[str, Any]) -> None:
        write_atomically(
            self.path / f"worker-{self.worker}.json",
            {"generation": generation, "pid": os.getpid(), "models": models},
        )

    def reports(self) -> dict[int, dict[str, Any]]:
        found = {}
        for index in range(1, self.workers + 1):
            report = read_json(self.path / f"worker-{index}.json")
            if report is not None:
                found[index] = report
        return found

    async def wait_for(self, generation: int, timeout_s: float) -> dict[int, dict[str, Any]]:
        """Every worker's report once all have applied `generation`."""
        deadline = time.monotonic() + timeout_s
        while True:
            reports = self.reports()
            if len(reports) == self.workers and all(
                r["generation"] >= generation for r in reports.values()
            ):
                return reports
            if time.monotonic() > deadline:
                behind = [
                    str(i)
                    for i in range(1, self.workers + 1)
                    if reports.get(i, {}).get("generation", -1) < generation
                ]
                raise NotReady(
                    f"workers {', '.join(behind)} did not apply the change within {timeout_s:.0f} s"
                )
            await asyncio.sleep(0.05)
