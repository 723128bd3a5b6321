"""Keeps a server process running: starts it, and starts it again whenever it exits, like
systemd or a kubelet would. The chaos runner kills what this supervises."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil


class Supervisor:
    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        log: Path | None = None,
        restart_delay_s: float = 0.5,
    ) -> None:
        self.command = list(command)
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.restart_delay_s = restart_delay_s
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        # BentoML's arbiter and workers leave the process group; remember them to clean up
        self._descendants: list[psutil.Process] = []

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        sink = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        with self._lock:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tree(self) -> list[psutil.Process]:
        """The server and every process below it (refreshed while it runs)."""
        if self.pid is None:
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def kill_tree(self, sig: signal.Signals = signal.SIGKILL) -> None:
        for process in [*self.tree(), *self._descendants]:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self.process
            if process is not None and process.poll() is None:
                self._descendants = self.tree()[1:] or self._descendants
            if process is not None and process.poll() is not None:
                self.kill_tree()  # orphaned arbiter and workers go too
                self._descendants = []
                time.sleep(self.restart_delay_s)
                if not self._stopping.is_set():
                    self.restarts += 1
                    self._spawn()
            time.sleep(0.1)

    def replace_env(self, **env: str) -> None:
        """Used by restart-with-variant: the next start runs with these variables."""
        self.env.update(env)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def workers(self) -> list[psutil.Process]:
        """BentoML worker processes of the current server."""
        if self.pid is None:
            return []
        found = []
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "--worker-id" in " ".join(
                    child.cmdline()
                ):
                    found.append(child)
            except psutil.Error:
                continue
        return sorted(found, key=lambda p: p.pid)

    @staticmethod
    def _kill_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def stop(self) -> None:
        self._stopping.set()
        # the watcher may be between "it exited" and spawning a successor: let it finish, or
        # that successor would outlive stop() unwaited
        if self._thread.is_alive():
            self._thread.join(timeout=self.restart_delay_s + 5)
        process = self.process
        if process is not None and process.poll() is None:
            self._kill_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.kill_tree()
