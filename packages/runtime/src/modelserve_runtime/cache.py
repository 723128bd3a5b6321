"""A machine's local cache of pulled variants: `<cache>/<name>/<version>/<variant>-<key>/`,
where `key` is a digest of the manifest it was pulled from (which names every file's sha256).
The folder's identity is its content: a store that gave one version number to different
content (a recreated store, or one written before numbers were kept) gets a folder of its own.

A pull hashes every byte; afterwards `<folder>.verified.json` records each file's size,
mtime and sha256, so a later start trusts files whose size and mtime still match and re-hashes
only the others (`verify=True` re-hashes all)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from modelserve_runtime.errors import RegistryError
from modelserve_runtime.manifest import FileEntry, ModelManifest, Variant
from modelserve_runtime.store import Registry, pulled_manifest, read_pulled_manifest, sha256_file

STAMP_SUFFIX = ".verified.json"


def cache_folder(cache: Path, manifest: ModelManifest, variant: Variant | str) -> Path:
    pulled = pulled_manifest(manifest, variant)
    key = hashlib.sha256(pulled.model_dump_json().encode()).hexdigest()[:16]
    (chosen,) = pulled.variants
    return cache / manifest.name / str(manifest.version) / f"{chosen.value}-{key}"


def pull_cached(
    registry: Registry,
    manifest: ModelManifest,
    variant: Variant,
    cache: Path,
    *,
    verify: bool = False,
) -> Path:
    """The cached folder of `variant` of exactly this manifest, pulled (sha256-verified) when
    it is missing or its files do not match the manifest. Safe when several workers race to
    fill it."""
    folder = cache_folder(cache, manifest, variant)
    stamp = folder.with_name(folder.name + STAMP_SUFFIX)
    entries = [*manifest.tokenizer_files, *manifest.variant(variant).files]
    if folder.exists():
        if _intact(folder, pulled_manifest(manifest, variant), entries, stamp, verify):
            return folder
        _discard(folder, stamp)  # corrupt or changed: pull again
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}-{uuid.uuid4().hex}")
    registry.pull_manifest(manifest, variant, staging)
    try:
        os.rename(staging, folder)  # atomic; another worker may have won the race
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    else:
        _write_stamp(stamp, {e.path: _seen(folder / e.path, e) for e in entries})
    return folder


def _seen(path: Path, entry: FileEntry) -> list[int | str]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, entry.sha256]


def _intact(
    folder: Path, pulled: ModelManifest, entries: list[FileEntry], stamp: Path, verify: bool
) -> bool:
    try:
        if read_pulled_manifest(folder) != pulled:
            return False
    except RegistryError:
        return False
    try:
        trusted = json.loads(stamp.read_text())
    except (OSError, ValueError):
        trusted = {}  # no stamp yet (its writer is not done, or crashed): hash every file
    if not isinstance(trusted, dict):
        trusted = {}
    seen = {}
    for entry in entries:
        path = folder / entry.path
        try:
            seen[entry.path] = _seen(path, entry)
        except FileNotFoundError:
            return False
        if seen[entry.path][0] != entry.size:
            return False
        if (verify or trusted.get(entry.path) != seen[entry.path]) and (
            sha256_file(path) != entry.sha256
        ):
            return False
    if seen != trusted:
        _write_stamp(stamp, seen)
    return True


def _write_stamp(stamp: Path, seen: dict[str, list[int | str]]) -> None:
    temp = stamp.with_name(f".{stamp.name}-{uuid.uuid4().hex}")
    temp.write_text(json.dumps(seen))
    os.replace(temp, stamp)


def _discard(folder: Path, stamp: Path) -> None:
    # Renamed first: the folder goes at once, not file by file under a worker reading it.
    trash = folder.with_name(f".{folder.name}-trash-{uuid.uuid4().hex}")
    stamp.unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
