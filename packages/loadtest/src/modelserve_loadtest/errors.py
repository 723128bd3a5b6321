"""Errors of the load tester; each maps to the CLI's exit code."""

from __future__ import annotations


class LoadtestError(Exception):
    """Root of all load-test errors."""

    exit_code = 1


class BadArguments(LoadtestError):
    """Flags or files that cannot describe a run (exit 2)."""

    exit_code = 2


class NoRuns(LoadtestError):
    """A run folder without summary.json / requests.csv (exit 3)."""

    exit_code = 3
