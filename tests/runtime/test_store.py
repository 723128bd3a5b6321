"""The store's promises, checked on a local folder and on a real S3-compatible server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelserve_runtime.errors import (
    IntegrityError,
    InvalidReference,
    NotFound,
    UnsafeArtifact,
    VersionConflict,
)
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry, _blob_key, read_pulled_manifest, verify_pulled
from tests.runtime.stores import registry, s3_endpoint, small_version

__all__ = ["registry", "s3_endpoint"]  # fixtures used below


def test_versions_count_up_and_resolve_by_version_alias_and_latest(
    registry: Registry, tmp_path: Path
) -> None:
    first = small_version(registry, tmp_path / "a")
    second = small_version(registry, tmp_path / "b", payload=b"other")
    assert (first.version, second.version) == (1, 2)
    registry.tag("demo", 1, "production")
    assert registry.manifest("demo").version == 2
    assert registry.manifest("demo:1").variants == first.variants
    assert registry.manifest("demo@production").version == 1
    assert registry.models() == ["demo"]
    assert registry.aliases("demo") == {"production": 1}
    with pytest.raises(NotFound, match="no version 7"):
        registry.manifest("demo:7")
    with pytest.raises(NotFound, match="no alias"):
        registry.manifest("demo@staging")
    with pytest.raises(NotFound, match="not in the registry"):
        registry.manifest("absent")


def test_identical_content_is_stored_once(registry: Registry, tmp_path: Path) -> None:
    one = small_version(registry, tmp_path / "a")
    two = small_version(registry, tmp_path / "b")
    assert one.blobs == two.blobs and len(one.blobs) == 2


def test_pull_writes_verified_files_and_manifest_last(registry: Registry, tmp_path: Path) -> None:
    small_version(registry, tmp_path / "src")
    dest = registry.pull("demo", Variant.ONNX_INT8, tmp_path / "pulled")
    assert (dest / "model.onnx").read_bytes() == b"onnx-bytes" * 1000
    assert (dest / "tokenizer" / "tokenizer.json").exists()
    assert list(read_pulled_manifest(dest).variants) == [Variant.ONNX_INT8]
    verify_pulled(dest)
    (dest / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"model\.onnx"):
        verify_pulled(dest)


def test_pull_refuses_a_corrupt_blob_naming_the_file_and_leaves_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    manifest = small_version(registry, tmp_path / "src")
    weights = manifest.variants[Variant.ONNX_INT8].files[0]
    registry.backend.write_bytes(_blob_key(weights.sha256), b"X" + b"onnx-bytes"[1:] * 1000)
    dest = tmp_path / "pulled"
    with pytest.raises(IntegrityError, match=r"model\.onnx: .*(corrupt|truncated)"):
        registry.pull("demo", "onnx-int8", dest)
    assert sorted(p.name for p in dest.iterdir()) == []


def test_pull_refuses_a_truncated_blob(registry: Registry, tmp_path: Path) -> None:
    manifest = small_version(registry, tmp_path / "src")
    weights = manifest.variants[Variant.ONNX_INT8].files[0]
    registry.backend.write_bytes(_blob_key(weights.sha256), b"onnx-bytes" * 999)
    with pytest.raises(IntegrityError, match=r"model\.onnx: .*truncated"):
        registry.pull("demo", "onnx-int8", tmp_path / "pulled")
    problems = registry.verify()
    assert [p.file for p in problems] == ["model.onnx"]
    assert "truncated" in problems[0].detail


def test_verify_finds_a_single_changed_byte(registry: Registry, tmp_path: Path) -> None:
    manifest = small_version(registry, tmp_path / "src")
    assert registry.verify() == []
    token = manifest.tokenizer_files[0]
    original = registry.backend.read_bytes(_blob_key(token.sha256))
    registry.backend.write_bytes(_blob_key(token.sha256), original[:-1] + b"!")
    (problem,) = registry.verify(["demo"])
    assert problem.file == "tokenizer/tokenizer.json" and "corrupt" in problem.detail


def test_concurrent_pushes_get_distinct_versions_and_readers_never_see_half(
    registry: Registry, tmp_path: Path
) -> None:
    pushes = 6
    start = threading.Barrier(pushes + 1)
    stop = threading.Event()
    seen_errors: list[Exception] = []

    def reader() -> None:
        start.wait()
        while not stop.is_set():
            try:
                for version in registry.versions("demo"):
                    registry.manifest(f"demo:{version}")
            except Exception as exc:  # anything at all is a failure of atomicity
                seen_errors.append(exc)

    def push(index: int) -> int:
        start.wait()
        return small_version(registry, tmp_path / str(index), payload=bytes([index]) * 100).version

    watcher = threading.Thread(target=reader)
    watcher.start()
    with ThreadPoolExecutor(pushes) as pool:
        versions = list(pool.map(push, range(pushes)))
    stop.set()
    watcher.join()
    assert sorted(versions) == list(range(1, pushes + 1))
    assert seen_errors == []
    assert registry.versions("demo") == list(range(1, pushes + 1))


def test_rm_deletes_the_manifest_and_its_aliases_but_no_blob(
    registry: Registry, tmp_path: Path
) -> None:
    shared = small_version(registry, tmp_path / "a")
    own = small_version(registry, tmp_path / "b", payload=b"only-in-v2")
    registry.tag("demo", 2, "staging")
    with pytest.raises(VersionConflict, match="staging"):
        registry.remove("demo", 2)
    assert registry.remove("demo", 2, force=True) == ["staging"]
    assert registry.versions("demo") == [1] and registry.aliases("demo") == {}
    with pytest.raises(NotFound, match="no version 2"):
        registry.manifest("demo:2")
    # blobs go only with `collect_garbage` (test_garbage.py), never under a running push
    assert all(registry.backend.exists(_blob_key(d)) for d in shared.blobs | own.blobs)
    assert registry.verify() == []


def test_a_removed_version_number_is_never_given_out_again(
    registry: Registry, tmp_path: Path
) -> None:
    versions = [small_version(registry, tmp_path / n, payload=n.encode()).version for n in "ab"]
    assert versions == [1, 2]
    registry.remove("demo", 2)
    third = small_version(registry, tmp_path / "c", payload=b"new content")
    assert third.version == 3
    assert registry.manifest("demo:3") == third
    for version in (1, 3):  # even with no version left, the numbers stay taken
        registry.remove("demo", version)
    assert registry.versions("demo") == [] and registry.models() == []
    assert small_version(registry, tmp_path / "d", payload=b"again").version == 4


def test_a_store_without_allocation_markers_still_counts_on(
    registry: Registry, tmp_path: Path
) -> None:
    """Stores written before markers existed: the manifests alone set the next number."""
    small_version(registry, tmp_path / "a")
    small_version(registry, tmp_path / "b", payload=b"two")
    for version in (1, 2):
        registry.backend.delete(f"models/demo/allocated/{version}.json")
    assert small_version(registry, tmp_path / "c", payload=b"three").version == 3


def test_published_versions_cannot_be_overwritten(registry: Registry, tmp_path: Path) -> None:
    manifest = small_version(registry, tmp_path / "a")
    with pytest.raises(FileExistsError):
        registry.backend.write_bytes("models/demo/versions/1.json", b"{}", exclusive=True)
    assert registry.manifest("demo:1") == manifest


def test_unsafe_files_and_names_are_refused(registry: Registry, tmp_path: Path) -> None:
    pickle = tmp_path / "pytorch_model.bin"
    pickle.write_bytes(b"\x80\x04pickle")
    with pytest.raises(UnsafeArtifact, match="pickle"):
        registry.put_file(pickle, "pytorch_model.bin")
    with pytest.raises(UnsafeArtifact, match="relative"):
        registry.put_file(pickle, "../escape.json")
    with pytest.raises(InvalidReference):
        registry.tag("../x", 1, "production")
    with pytest.raises(InvalidReference):
        registry.versions("a/b")


def test_a_missing_bucket_or_unreachable_store_is_one_clear_error(s3_endpoint: str) -> None:
    from modelserve_runtime.errors import StoreUnavailable
    from tests.conftest import free_port

    with pytest.raises(StoreUnavailable, match="bucket 'absent' does not exist"):
        Registry.open("s3://absent/registry", s3_endpoint_url=s3_endpoint)
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        Registry.open("s3://bucket/x", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailable, match="unsupported registry URI"):
        Registry.open("gs://bucket/x")
