"""The registry: content-addressed blobs plus one immutable JSON manifest per version.

Layout under REGISTRY_URI:
    blobs/sha256/<2 hex>/<64 hex>        file contents, named by their digest
    models/<name>/versions/<n>.json      manifest of version n (written last, exclusively)
    models/<name>/allocated/<n>.json     marker: number n was given out (never deleted)
    models/<name>/aliases/<alias>.json   {"version": n}
    locks/                               the gc lock (garbage.py)

A version becomes visible only when its manifest exists, and the manifest is written after
every blob it names, so a reader never sees a half-pushed version. Removing a version deletes
its manifest only; `collect_garbage` (garbage.py) deletes blobs nothing references."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from modelserve_runtime.backends import Backend, open_backend
from modelserve_runtime.errors import (
    IntegrityError,
    InvalidReference,
    NotFound,
    UnsafeArtifact,
    VersionConflict,
)
from modelserve_runtime.manifest import FileEntry, ModelManifest, Variant
from modelserve_runtime.references import (
    ModelReference,
    validate_alias,
    validate_name,
    validate_version,
)
from modelserve_runtime.settings import StoreSettings

CHUNK = 1 << 20
# Formats that cannot run code when loaded. Pickle-based checkpoints (.bin, .pt, .pth, .ckpt,
# .pkl) are refused at push, so nothing from the store is ever unpickled.
SAFE_SUFFIXES = {".safetensors", ".onnx", ".data", ".json", ".txt", ".model", ".bpe"}
PULLED_MANIFEST = "manifest.json"

Progress = Callable[[int], None]


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def check_safe_file(path: str) -> None:
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts or not parts:
        raise UnsafeArtifact(f"refusing file path {path!r}: it must be relative, without '..'")
    if Path(path).suffix.lower() not in SAFE_SUFFIXES:
        raise UnsafeArtifact(
            f"refusing {path!r}: only safetensors, ONNX, JSON and text files are stored "
            "(pickle-based checkpoints could run code when loaded)"
        )


def _blob_key(digest: str) -> str:
    return f"blobs/sha256/{digest[:2]}/{digest}"


@dataclass(frozen=True)
class Problem:
    """One corrupt, truncated or missing blob found by `verify`."""

    model: str
    version: int
    file: str
    detail: str

    def __str__(self) -> str:
        return f"{self.model}:{self.version} {self.file}: {self.detail}"


class Registry:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, uri: str, *, s3_endpoint_url: str | None = None) -> Registry:
        return cls(open_backend(uri, s3_endpoint_url=s3_endpoint_url))

    @classmethod
    def from_settings(cls, settings: StoreSettings | None = None) -> Registry:
        settings = settings or StoreSettings()
        return cls.open(settings.uri, s3_endpoint_url=settings.s3_endpoint_url)

    @property
    def location(self) -> str:
        return self.backend.description

    # -- blobs -------------------------------------------------------------------------

    def put_file(
        self, local_path: Path, relative_path: str, progress: Progress | None = None
    ) -> FileEntry:
        """Store one file by content; returns its manifest entry. Idempotent.

        A blob that is already stored is touched instead: it may be an orphan of a removed
        version, and gc's grace period must count from now, when this push starts using it."""
        check_safe_file(relative_path)
        digest = sha256_file(local_path, progress)
        size = local_path.stat().st_size
        key = _blob_key(digest)
        try:
            stored = self.backend.size(key) == size
            if stored:
                self.backend.touch(key)
        except (OSError, NotFound):  # absent, deleted by gc meanwhile, or too big to touch
            stored = False
        if not stored:
            self.backend.upload(local_path, key)
        return FileEntry(path=relative_path, sha256=digest, size=size)

    def put_folder(
        self, folder: Path, prefix: str = "", progress: Progress | None = None
    ) -> list[FileEntry]:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            raise NotFound(f"{folder} holds no files")
        return [
            self.put_file(path, prefix + path.relative_to(folder).as_posix(), progress)
            for path in files
        ]

    def _stream(
        self, digest: str, out: BinaryIO | None, progress: Progress | None
    ) -> tuple[str, int]:
        """Read a blob through sha256 (copying it to `out` if given): (hex digest, bytes)."""
        digest_of = hashlib.sha256()
        size = 0
        with self.backend.open_read(_blob_key(digest)) as source:
            while chunk := source.read(CHUNK):
                digest_of.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
                if progress:
                    progress(len(chunk))
        return digest_of.hexdigest(), size

    @staticmethod
    def _mismatch(entry: FileEntry, digest: str, size: int) -> str | None:
        if size != entry.size:
            return (
                f"blob {entry.sha256[:12]} is truncated or padded ({size} bytes, "
                f"manifest says {entry.size})"
            )
        if digest != entry.sha256:
            return (
                f"blob {entry.sha256[:12]} is corrupt (sha256 {digest[:12]}... does not "
                "match the manifest)"
            )
        return None

    def _download(self, entry: FileEntry, target: Path, progress: Progress | None) -> None:
        """Stream one blob to `target`, hashing as it goes; raise naming the file if it differs."""
        with open(target, "wb") as out:
            digest, size = self._stream(entry.sha256, out, progress)
        if problem := self._mismatch(entry, digest, size):
            raise IntegrityError(f"{entry.path}: {problem}")

    # -- versions ----------------------------------------------------------------------

    def publish(self, draft: ModelManifest, attempts: int = 20) -> ModelManifest:
        """Give `draft` a new version number and write its manifest exclusively.

        The number is claimed first with an exclusive create of `allocated/<n>.json`, which
        `remove` never deletes: a removed version's number is never given out again (S3 has
        no atomic rename or compare-and-swap for a counter, but it has exclusive create). Two
        concurrent pushes of one name race on that create; the loser takes the next number."""
        validate_name(draft.name)
        missing = [d for d in draft.blobs if not self.backend.exists(_blob_key(d))]
        if missing:
            raise IntegrityError(f"cannot publish {draft.name}: blobs missing: {missing[:3]}")
        for _ in range(attempts):
            version = max([0, *self.versions(draft.name), *self._allocated(draft.name)]) + 1
            now = dt.datetime.now(dt.UTC)
            manifest = draft.model_copy(update={"version": version, "created_at": now})
            try:
                self.backend.write_bytes(
                    f"models/{draft.name}/allocated/{version}.json",
                    json.dumps({"version": version, "allocated_at": now.isoformat()}).encode(),
                    exclusive=True,
                )
                # Exclusive too: a store written before markers existed has versions without one.
                self.backend.write_bytes(
                    f"models/{draft.name}/versions/{version}.json",
                    manifest.model_dump_json(indent=2).encode(),
                    exclusive=True,
                )
                return manifest
            except FileExistsError:
                continue
        raise VersionConflict(
            f"could not allocate a version of {draft.name} after {attempts} tries"
        )

    def _allocated(self, name: str) -> list[int]:
        stems = [e.removesuffix(".json") for e in self.backend.children(f"models/{name}/allocated")]
        return [int(stem) for stem in stems if stem.isdigit()]

    def models(self) -> list[str]:
        return [n for n in self.backend.children("models") if self.versions(n)]

    def versions(self, name: str) -> list[int]:
        validate_name(name)
        found = []
        for entry in self.backend.children(f"models/{name}/versions"):
            stem = entry.removesuffix(".json")
            if entry.endswith(".json") and stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def aliases(self, name: str) -> dict[str, int]:
        validate_name(name)
        result = {}
        for entry in self.backend.children(f"models/{name}/aliases"):
            if entry.endswith(".json"):
                data = json.loads(self.backend.read_bytes(f"models/{name}/aliases/{entry}"))
                result[entry.removesuffix(".json")] = int(data["version"])
        return result

    def resolve(self, ref: ModelReference | str) -> int:
        ref = ModelReference.parse(ref) if isinstance(ref, str) else ref
        versions = self.versions(ref.name)
        if not versions:
            raise NotFound(f"model {ref.name!r} is not in the registry at {self.location}")
        if ref.alias is not None:
            aliases = self.aliases(ref.name)
            if ref.alias not in aliases:
                raise NotFound(f"{ref.name} has no alias {ref.alias!r} (has: {sorted(aliases)})")
            return aliases[ref.alias]
        if ref.version is not None:
            if ref.version not in versions:
                raise NotFound(f"{ref.name} has no version {ref.version} (has: {versions})")
            return ref.version
        return versions[-1]

    def manifest(self, ref: ModelReference | str) -> ModelManifest:
        ref = ModelReference.parse(ref) if isinstance(ref, str) else ref
        version = self.resolve(ref)
        raw = self.backend.read_bytes(f"models/{ref.name}/versions/{version}.json")
        try:
            return ModelManifest.model_validate_json(raw)
        except ValidationError as exc:
            raise IntegrityError(f"manifest of {ref.name}:{version} is unreadable: {exc}") from exc

    def tag(self, name: str, version: int | str, alias: str) -> None:
        name, alias, version = validate_name(name), validate_alias(alias), validate_version(version)
        self.resolve(ModelReference(name, version=version))
        self.backend.write_bytes(
            f"models/{name}/aliases/{alias}.json", json.dumps({"version": version}).encode()
        )

    def remove(self, name: str, version: int | str, *, force: bool = False) -> list[str]:
        """Delete a version's manifest (its number stays allocated, its blobs stay until
        `collect_garbage`). Returns the alias names that pointed at it (refused unless
        `force`)."""
        name, version = validate_name(name), validate_version(version)
        self.resolve(ModelReference(name, version=version))
        pointing = [a for a, v in self.aliases(name).items() if v == version]
        if pointing and not force:
            raise VersionConflict(
                f"{name}:{version} is tagged {', '.join(pointing)}; retag or pass --force"
            )
        for alias in pointing:
            self.backend.delete(f"models/{name}/aliases/{alias}.json")
        self.backend.delete(f"models/{name}/versions/{version}.json")
        return pointing

    # -- integrity -----------------------------------------------------------------------

    def verify(self, names: Iterable[str] = (), progress: Progress | None = None) -> list[Problem]:
        """Re-hash every blob that the named models' versions use (all models when empty)."""
        problems: list[Problem] = []
        for name in list(names) or self.models():
            for version in self.versions(name):
                manifest = self.manifest(ModelReference(name, version=version))
                entries = list(manifest.tokenizer_files)
                for variant in manifest.variants.values():
                    entries += variant.files
                for entry in entries:
                    detail = self._check_blob(entry, progress)
                    if detail:
                        problems.append(Problem(name, version, entry.path, detail))
        return problems

    def _check_blob(self, entry: FileEntry, progress: Progress | None) -> str | None:
        if not self.backend.exists(_blob_key(entry.sha256)):
            return f"blob {entry.sha256[:12]} is missing"
        return self._mismatch(entry, *self._stream(entry.sha256, None, progress))

    # -- pull ----------------------------------------------------------------------------

    def pull(
        self,
        ref: ModelReference | str,
        variant: Variant | str,
        dest: Path,
        progress: Progress | None = None,
    ) -> Path:
        """Download one variant and the tokenizer into `dest`, verifying every sha256.

        Files are staged in a hidden folder and moved in only when all of them verified, and
        `manifest.json` is written last: a folder with a manifest is complete."""
        return self.pull_manifest(self.manifest(ref), variant, dest, progress)

    def pull_manifest(
        self,
        manifest: ModelManifest,
        variant: Variant | str,
        dest: Path,
        progress: Progress | None = None,
    ) -> Path:
        """`pull` of a manifest already read: exactly the blobs it names."""
        chosen = manifest.variant(variant)
        entries = [*manifest.tokenizer_files, *chosen.files]
        dest.mkdir(parents=True, exist_ok=True)
        staging = dest / f".pull-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for entry in entries:
                check_safe_file(entry.path)
                target = staging / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                self._download(entry, target, progress)
            (dest / PULLED_MANIFEST).unlink(missing_ok=True)
            for entry in entries:
                final = dest / entry.path
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / entry.path, final)
            pulled = pulled_manifest(manifest, chosen.variant)
            (dest / PULLED_MANIFEST).write_text(pulled.model_dump_json(indent=2))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest


def pulled_manifest(manifest: ModelManifest, variant: Variant | str) -> ModelManifest:
    """What a pulled folder's `manifest.json` holds: the version with only that variant."""
    chosen = manifest.variant(variant)
    return manifest.model_copy(update={"variants": {chosen.variant: chosen}})


def read_pulled_manifest(folder: Path) -> ModelManifest:
    path = folder / PULLED_MANIFEST
    if not path.exists():
        raise NotFound(f"{folder} is not a pulled model folder (no {PULLED_MANIFEST})")
    try:
        return ModelManifest.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise InvalidReference(f"{path} is not a valid manifest: {exc}") from exc


def verify_pulled(folder: Path) -> ModelManifest:
    """Check a pulled folder against its manifest (used by a predictor's local cache)."""
    manifest = read_pulled_manifest(folder)
    for variant in manifest.variants.values():
        for entry in [*manifest.tokenizer_files, *variant.files]:
            path = folder / entry.path
            if not path.exists() or path.stat().st_size != entry.size:
                raise IntegrityError(f"{path}: missing or wrong size")
            if sha256_file(path) != entry.sha256:
                raise IntegrityError(f"{path}: sha256 does not match the manifest")
    return manifest
