"""Progress lines of long jobs, as a log file sees them (stderr is not a terminal here)."""

from __future__ import annotations

import re

import pytest

from modelserve_registry.progress import steps


def test_long_jobs_log_one_line_per_step_with_elapsed_time_when_not_a_terminal(
    capsys: pytest.CaptureFixture,
) -> None:
    with steps() as step:
        step("sentiment-minilm: exporting to ONNX")
        step("sentiment-minilm: validating onnx-int8 on 2025 texts")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\[\s*\d+\.\d s\] sentiment-minilm: exporting to ONNX", lines[0])
    assert lines[1].endswith("validating onnx-int8 on 2025 texts")
