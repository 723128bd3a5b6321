"""Progress of long jobs on stderr: one line per step with the time since the job started
(readable in a log file as on a terminal, where a spinner also shows the running step), and
byte bars for transfers. Used by the registry CLI, `predictor serve`'s first run and the
benchmarks that build models on demand."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

err = Console(stderr=True)


@contextmanager
def steps(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """One line per step of a long job, with the time since it started, so a log file reads
    as well as a terminal; on a terminal a spinner also shows the running step's time."""
    started = time.monotonic()

    def line(message: str) -> str:
        return f"[{time.monotonic() - started:6.1f} s] {message}"

    if not enabled:
        yield lambda _message: None
    elif not err.is_terminal:
        yield lambda message: err.print(line(message), highlight=False, soft_wrap=True)
    else:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("starting", total=None)

            def step(message: str) -> None:
                progress.console.print(line(message), highlight=False, soft_wrap=True)
                progress.update(task, description=message)

            yield step
        err.print(line("done"), highlight=False)


@contextmanager
def byte_bar(label: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=not enabled,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
