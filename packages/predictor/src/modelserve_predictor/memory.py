"""How much memory a device has free, and whether a second copy of a model fits beside the
first (pure policy apart from the probes)."""

from __future__ import annotations

import sys
from pathlib import Path

from modelserve_predictor.placement import Device

# A loaded ONNX Runtime session holds about its weights once more again in arenas and
# pre-packed kernels; keep a margin for activations of the largest batch on top.
LOADED_PER_WEIGHT_BYTE = 2.0
HEADROOM_BYTES = 256 << 20


def fits_beside(weight_bytes: int, free_bytes: int | None) -> bool:
    """Unknown free memory counts as fitting: the setting `swap: drain` is the way to say no."""
    if free_bytes is None:
        return True
    return weight_bytes * LOADED_PER_WEIGHT_BYTE + HEADROOM_BYTES <= free_bytes


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def host_available_bytes(
    proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """MemAvailable, lowered to the cgroup's room when a container limit is tighter."""
    found: list[int] = []
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    limit, used = _read_int(cgroup / "memory.max"), _read_int(cgroup / "memory.current")
    if limit is not None and used is not None:
        found.append(max(0, limit - used))
    return min(found) if found else None


def available_bytes(device: Device) -> int | None:
    if device.kind == "cpu":
        return host_available_bytes()
    torch = sys.modules.get("torch")  # only when this worker already uses torch
    if torch is not None and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device.index or 0)
        return int(free)
    return None
