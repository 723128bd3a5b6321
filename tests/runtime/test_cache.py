"""The local cache of pulled variants: keyed by content, trusted by size and mtime after one
verified pull, re-pulled when a file changed."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelserve_runtime import cache as cache_module
from modelserve_runtime.cache import STAMP_SUFFIX, pull_cached
from modelserve_runtime.manifest import ModelManifest, Variant
from modelserve_runtime.store import Registry, read_pulled_manifest
from tests.runtime.stores import registry, s3_endpoint, small_version

__all__ = ["registry", "s3_endpoint"]  # fixtures used below

VARIANT = Variant.ONNX_INT8


class Counts:
    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.blobs_read = 0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Callable[[Registry], Counts]:
    """Counts the cache's file hashing and the blobs read from a registry's backend."""
    seen = Counts()
    real_hash = cache_module.sha256_file

    def hashing(path: Path, progress: object = None) -> str:
        seen.hashed.append(path.name)
        return real_hash(path)

    monkeypatch.setattr(cache_module, "sha256_file", hashing)

    def watch(registry: Registry) -> Counts:
        real_read = registry.backend.open_read

        def reading(key: str):
            seen.blobs_read += 1
            return real_read(key)

        monkeypatch.setattr(registry.backend, "open_read", reading)
        return seen

    return watch


def reset(seen: Counts) -> None:
    seen.hashed.clear()
    seen.blobs_read = 0


def test_one_version_number_with_new_content_is_served_the_new_content(
    registry: Registry, tmp_path: Path
) -> None:
    old = small_version(registry, tmp_path / "a", payload=b"old weights" * 100)
    first = pull_cached(registry, old, VARIANT, tmp_path / "cache")
    assert (first / "model.onnx").read_bytes() == b"old weights" * 100
    # A store that gave number 1 out again (recreated, or written by an older client):
    new = small_version(registry, tmp_path / "b", payload=b"new weights" * 100)
    reused = new.model_copy(update={"version": 1})
    registry.backend.write_bytes("models/demo/versions/1.json", reused.model_dump_json().encode())
    assert registry.manifest("demo:1") == reused
    second = pull_cached(registry, registry.manifest("demo:1"), VARIANT, tmp_path / "cache")
    assert second != first and second.parent == first.parent  # <cache>/demo/1/
    assert (second / "model.onnx").read_bytes() == b"new weights" * 100
    pulled = read_pulled_manifest(second).variants[VARIANT].files[0]
    assert pulled == new.variants[VARIANT].files[0]


def test_a_cache_hit_reads_no_blob_and_hashes_nothing_unless_asked(
    tmp_path: Path, counts: Callable[[Registry], Counts]
) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    manifest = small_version(registry, tmp_path / "src", payload=b"w" * (1 << 20))
    seen = counts(registry)
    cache = tmp_path / "cache"
    folder = pull_cached(registry, manifest, VARIANT, cache)
    assert seen.blobs_read == 2  # tokenizer and weights, hashed while streamed
    assert folder.with_name(folder.name + STAMP_SUFFIX).exists()

    reset(seen)
    assert pull_cached(registry, manifest, VARIANT, cache) == folder
    assert (seen.blobs_read, seen.hashed) == (0, [])

    assert pull_cached(registry, manifest, VARIANT, cache, verify=True) == folder
    assert sorted(seen.hashed) == ["model.onnx", "tokenizer.json"] and seen.blobs_read == 0

    # a new mtime (same bytes): that one file is hashed again, found good, and re-stamped
    stat = (folder / "model.onnx").stat()
    os.utime(folder / "model.onnx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    reset(seen)
    assert pull_cached(registry, manifest, VARIANT, cache) == folder
    assert (seen.hashed, seen.blobs_read) == (["model.onnx"], 0)
    reset(seen)
    pull_cached(registry, manifest, VARIANT, cache)
    assert (seen.hashed, seen.blobs_read) == ([], 0)


@pytest.mark.parametrize("damage", ["truncate", "same-size-new-mtime", "delete"])
def test_a_damaged_cached_file_is_detected_and_pulled_again(
    tmp_path: Path, counts: Callable[[Registry], Counts], damage: str
) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    manifest = small_version(registry, tmp_path / "src")
    seen = counts(registry)
    folder = pull_cached(registry, manifest, VARIANT, tmp_path / "cache")
    weights = folder / "model.onnx"
    if damage == "truncate":
        weights.write_bytes(b"short")
    elif damage == "delete":
        weights.unlink()
    else:
        original = weights.read_bytes()
        stat = weights.stat()
        weights.write_bytes(b"X" + original[1:])
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    reset(seen)
    assert pull_cached(registry, manifest, VARIANT, tmp_path / "cache") == folder
    assert weights.read_bytes() == b"onnx-bytes" * 1000
    assert seen.blobs_read == 2


def test_same_size_and_mtime_is_trusted_until_verify_is_asked(
    tmp_path: Path, counts: Callable[[Registry], Counts]
) -> None:
    """The trade-off, stated: damage that keeps size and mtime is found only by `verify`."""
    registry = Registry.open(str(tmp_path / "registry"))
    manifest = small_version(registry, tmp_path / "src")
    seen = counts(registry)
    folder = pull_cached(registry, manifest, VARIANT, tmp_path / "cache")
    weights = folder / "model.onnx"
    stat = weights.stat()
    weights.write_bytes(b"X" + weights.read_bytes()[1:])
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reset(seen)
    pull_cached(registry, manifest, VARIANT, tmp_path / "cache")
    assert seen.blobs_read == 0 and weights.read_bytes()[:1] == b"X"
    pull_cached(registry, manifest, VARIANT, tmp_path / "cache", verify=True)
    assert seen.blobs_read == 2 and weights.read_bytes() == b"onnx-bytes" * 1000


def test_without_a_stamp_every_file_is_hashed_once(
    tmp_path: Path, counts: Callable[[Registry], Counts]
) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    manifest = small_version(registry, tmp_path / "src")
    seen = counts(registry)
    folder = pull_cached(registry, manifest, VARIANT, tmp_path / "cache")
    folder.with_name(folder.name + STAMP_SUFFIX).unlink()  # its writer died after the rename
    reset(seen)
    pull_cached(registry, manifest, VARIANT, tmp_path / "cache")
    assert sorted(seen.hashed) == ["model.onnx", "tokenizer.json"] and seen.blobs_read == 0
    reset(seen)
    pull_cached(registry, manifest, VARIANT, tmp_path / "cache")
    assert seen.hashed == []


def test_workers_racing_to_fill_the_cache_all_get_the_complete_folder(
    registry: Registry, tmp_path: Path
) -> None:
    manifest: ModelManifest = small_version(registry, tmp_path / "src")
    with ThreadPoolExecutor(6) as pool:
        folders = set(
            pool.map(
                lambda _: pull_cached(registry, manifest, VARIANT, tmp_path / "cache"), range(6)
            )
        )
    (folder,) = folders
    assert (folder / "model.onnx").read_bytes() == b"onnx-bytes" * 1000
    assert read_pulled_manifest(folder) == manifest.model_copy(
        update={"variants": {VARIANT: manifest.variants[VARIANT]}}
    )
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
