"""`collect_garbage` on a local folder and on a real S3-compatible server: only unreferenced,
old blobs go; one gc at a time; pushes running in another process meanwhile lose nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from modelserve_runtime.errors import StoreLocked
from modelserve_runtime.garbage import collect_garbage, referenced_blobs
from modelserve_runtime.manifest import ModelManifest, Variant
from modelserve_runtime.store import Registry, _blob_key
from tests.runtime.stores import registry, s3_endpoint, small_version, store_env

__all__ = ["registry", "s3_endpoint"]  # fixtures used below

ROOT = Path(__file__).resolve().parents[2]
PUSH_GRACE_S = 5.0  # a small push publishes well within this of uploading


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def stored(registry: Registry) -> set[str]:
    return {key.rsplit("/", 1)[-1] for key in registry.backend.listing("blobs/sha256")}


def wait_older_than(registry: Registry, digests: Iterable[str], seconds: float) -> None:
    """Until these blobs are `seconds` old by the store's clock (S3's LastModified counts
    whole seconds, hence the extra one)."""
    newest = max(registry.backend.modified(_blob_key(d)) for d in digests)
    assert wait_until(lambda: time.time() > newest + seconds + 1.0)


def weights(manifest: ModelManifest) -> str:
    return manifest.variants[Variant.ONNX_INT8].files[0].sha256


def test_gc_deletes_only_unreferenced_blobs_older_than_the_grace_period(
    registry: Registry, tmp_path: Path
) -> None:
    kept = small_version(registry, tmp_path / "a")
    removed = small_version(registry, tmp_path / "b", payload=b"only in version 2")
    registry.remove("demo", 2)
    orphan = weights(removed)
    assert orphan not in kept.blobs

    young = collect_garbage(registry, grace_seconds=3600)
    assert (young.deleted, young.kept_young, young.referenced) == ([], [orphan], 2)

    wait_older_than(registry, [orphan], 0)
    dry = collect_garbage(registry, grace_seconds=0, dry_run=True)
    assert dry.deleted == [orphan] and orphan in stored(registry)
    report = collect_garbage(registry, grace_seconds=0)
    assert report.deleted == [orphan] and report.freed_bytes == len(b"only in version 2")
    assert stored(registry) == kept.blobs == referenced_blobs(registry)
    assert registry.verify() == []


def test_a_push_reusing_an_orphaned_blob_makes_it_young_again(
    registry: Registry, tmp_path: Path
) -> None:
    removed = small_version(registry, tmp_path / "a", payload=b"content pushed twice")
    registry.remove("demo", 1)
    wait_older_than(registry, removed.blobs, 2)
    # the next push's first step: its blobs are already stored, so they are touched, not sent
    source = tmp_path / "again.onnx"
    source.write_bytes(b"content pushed twice")
    registry.put_file(source, "model.onnx")
    report = collect_garbage(registry, grace_seconds=2)
    assert weights(removed) in report.kept_young and weights(removed) in stored(registry)


HOLD_LOCK = """
import sys, time
from modelserve_runtime.store import Registry
with Registry.from_settings().backend.lock("gc", float(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_one_gc_at_a_time_and_a_dead_holder_does_not_block_forever(registry: Registry) -> None:
    env = store_env(registry)
    holder = subprocess.Popen(
        # a 20 s lease: long enough for the gc below to start on a slow machine while it
        # holds, short enough to wait out once the holder is dead
        [sys.executable, "-c", HOLD_LOCK, "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        gc = subprocess.run(
            [str(Path(sys.executable).parent / "registry"), "gc", "--grace-seconds", "0", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert gc.returncode == 11, gc.stderr
        assert "gc is already running" in gc.stderr and len(gc.stderr.strip().splitlines()) == 1
        with pytest.raises(StoreLocked):
            collect_garbage(registry, 0)
    finally:
        holder.kill()  # dies holding it: no release runs
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()

    def gc_runs() -> bool:
        try:
            collect_garbage(registry, 0)
        except StoreLocked:
            return False  # S3: until the dead holder's lease expires (20 s)
        return True

    assert wait_until(gc_runs, timeout=120)
    if registry.location.startswith("s3://"):
        assert registry.backend.children("locks/gc") == []  # released at the end


GC_LOOP = """
import json, sys, time, traceback
from pathlib import Path
from modelserve_runtime.garbage import collect_garbage
from modelserve_runtime.store import Registry
stop, ran = Path(sys.argv[1]), Path(sys.argv[2])
registry = Registry.from_settings()
runs = []
while not stop.exists():
    started = time.time()
    try:
        report = collect_garbage(registry, float(sys.argv[3]))
        runs.append({"started": started, "ended": time.time(), "deleted": report.deleted})
    except Exception:
        runs.append({"started": started, "error": traceback.format_exc()})
    ran.touch()
print(json.dumps(runs))
"""

PUSHES = """
import json, sys, time
from pathlib import Path
from modelserve_runtime.store import Registry
from tests.runtime.stores import small_version
work, ran, reused = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].encode()
deadline = time.monotonic() + 120
while not ran.exists() and time.monotonic() < deadline:  # gc is running before we start
    time.sleep(0.01)
registry = Registry.from_settings()
started = time.time()
versions = [small_version(registry, work / "reused", payload=reused).version]
for i in range(12):
    versions.append(small_version(registry, work / str(i), payload=b"push %d" % i * 300).version)
print(json.dumps({"versions": versions, "started": started, "ended": time.time()}))
"""


REUSED = "reused by a later push"


def test_gc_beside_pushes_in_another_process_loses_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    first = small_version(registry, tmp_path / "v1")
    second = small_version(registry, tmp_path / "v2", payload=REUSED.encode())
    registry.remove("demo", 2)
    crashed = tmp_path / "crashed.onnx"  # a push that uploaded and died before publishing
    crashed.write_bytes(b"never published")
    crashed_digest = registry.put_file(crashed, "model.onnx").sha256
    orphans = {weights(second), crashed_digest}
    wait_older_than(registry, orphans, PUSH_GRACE_S)  # garbage by the time gc starts

    env = store_env(registry)
    stop, ran = tmp_path / "stop", tmp_path / "gc-ran"
    gc_loop = subprocess.Popen(
        [sys.executable, "-c", GC_LOOP, str(stop), str(ran), str(PUSH_GRACE_S)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pushes = subprocess.run(
            [sys.executable, "-c", PUSHES, str(tmp_path / "pushes"), str(ran), REUSED],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop.touch()
        gc_out, _ = gc_loop.communicate(timeout=120)
    assert pushes.returncode == 0, pushes.stderr[-3000:]
    pushed = json.loads(pushes.stdout)
    runs = json.loads(gc_out)
    assert [r for r in runs if "error" in r] == []
    assert any(r["started"] < pushed["ended"] and r["ended"] > pushed["started"] for r in runs)
    assert pushed["versions"] == list(range(3, 16))  # 2 was removed: never given out again

    assert registry.verify() == []  # every published version is whole
    assert crashed_digest not in stored(registry)  # old garbage went meanwhile
    assert weights(second) in registry.manifest("demo:3").blobs  # the touched orphan
    assert weights(second) in stored(registry)

    registry.remove("demo", 5)  # one push's own blob becomes garbage
    garbage = stored(registry) - referenced_blobs(registry)
    assert len(garbage) == 1
    wait_older_than(registry, garbage, 0)
    assert collect_garbage(registry, grace_seconds=0).deleted == sorted(garbage)
    assert stored(registry) == referenced_blobs(registry)
    assert first.blobs <= stored(registry) and registry.verify() == []
