"""What this worker process holds: its memory and which ML frameworks it has imported. An
ONNX-only worker should have neither torch nor transformers loaded (hundreds of MB each)."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Any

FRAMEWORKS = ("onnxruntime", "tokenizers", "torch", "transformers")


def loaded_frameworks() -> dict[str, str | None]:
    """Each framework's version if this process imported it, else None."""
    return {
        name: str(getattr(sys.modules[name], "__version__", "unknown"))
        if name in sys.modules
        else None
        for name in FRAMEWORKS
    }


def memory_mb() -> dict[str, float]:
    """Resident set size now and at its peak (Linux /proc; the peak alone elsewhere)."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        kib = {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM") if key in fields}
        return {"rss_mb": kib["VmRSS"] / 1024, "peak_rss_mb": kib["VmHWM"] / 1024}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return {"peak_rss_mb": peak / 2**20}


def process_view() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        **{key: round(value, 1) for key, value in memory_mb().items()},
        "frameworks": loaded_frameworks(),
    }
