"""Errors of the chaos runner; each maps to the CLI's exit code."""

from __future__ import annotations


class ChaosError(Exception):
    """Root of all chaos errors."""

    exit_code = 1


class InvalidExperiment(ChaosError):
    """The experiment file is not valid YAML or does not match the schema (exit 2)."""

    exit_code = 2


class ActionFailed(ChaosError):
    """An action could not be carried out (target missing, API refused) (exit 4)."""

    exit_code = 4


class ExperimentAborted(ChaosError):
    """The run stopped on an unexpected failure; rollbacks ran and the journal records the
    error (exit 5)."""

    exit_code = 5
