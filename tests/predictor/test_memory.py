"""Whether a second copy fits beside the first: the policy and the probes it reads."""

from __future__ import annotations

from modelserve_predictor.memory import HEADROOM_BYTES, fits_beside, host_available_bytes


def test_a_second_copy_needs_twice_its_weights_plus_headroom() -> None:
    weights = 100 << 20
    assert fits_beside(weights, 2 * weights + HEADROOM_BYTES)
    assert not fits_beside(weights, 2 * weights + HEADROOM_BYTES - 1)
    assert fits_beside(weights, None)  # unknown: `swap: drain` is how to say no


def test_the_tighter_of_meminfo_and_the_cgroup_counts(tmp_path) -> None:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    cgroup.mkdir()
    (proc / "meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable:  2000000 kB\n")
    assert host_available_bytes(proc, cgroup) == 2_000_000 * 1024
    (cgroup / "memory.max").write_text(str(1 << 30))
    (cgroup / "memory.current").write_text(str(1 << 29))
    assert host_available_bytes(proc, cgroup) == 1 << 29
    (cgroup / "memory.max").write_text("max")  # no limit
    assert host_available_bytes(proc, cgroup) == 2_000_000 * 1024
    assert host_available_bytes(tmp_path / "none", tmp_path / "none") is None
