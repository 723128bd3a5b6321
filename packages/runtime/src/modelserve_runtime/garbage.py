"""Deleting blobs that no manifest references, safely beside concurrent pushes.

A push uploads (or touches, when the content is already stored) its blobs first and writes
the manifest last, so for a while its blobs are referenced by nothing. The grace period is
what protects them: gc deletes only unreferenced blobs last modified more than
`grace_seconds` before its lock was taken (by the store's clock), and checks each again just
before deleting it. A push must therefore publish within the grace period of uploading.

Order matters: blobs are listed before the manifests are read, so a blob uploaded after the
listing is never a candidate, and a manifest published before the read protects its blobs.
One gc at a time: the `gc` lock of the backend (flock locally, an exclusive-create object
with an expiry on S3); two gc runs that did overlap would only delete the same garbage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pydantic import ValidationError

from modelserve_runtime.errors import IntegrityError, NotFound, StoreLocked
from modelserve_runtime.manifest import ModelManifest
from modelserve_runtime.store import Registry

DEFAULT_GRACE_SECONDS = 3600.0
LOCK_TTL_S = 3600.0


@dataclass
class GcReport:
    grace_seconds: float
    dry_run: bool
    referenced: int = 0
    deleted: list[str] = field(default_factory=list)  # digests (would be, when dry_run)
    freed_bytes: int = 0
    kept_young: list[str] = field(default_factory=list)  # unreferenced, inside the grace
    stale_temp_files: int = 0


def referenced_blobs(registry: Registry) -> set[str]:
    """Every digest some manifest names. An unreadable manifest stops gc: what it references
    is unknown, so nothing may be deleted."""
    used: set[str] = set()
    for name in registry.backend.children("models"):
        for version in registry.versions(name):
            key = f"models/{name}/versions/{version}.json"
            try:
                raw = registry.backend.read_bytes(key)
            except NotFound:
                continue  # removed while we read: it references nothing any more
            try:
                used |= ModelManifest.model_validate_json(raw).blobs
            except ValidationError as exc:
                raise IntegrityError(f"gc stopped: {key} is unreadable: {exc}") from None
    return used


def collect_garbage(
    registry: Registry,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    *,
    dry_run: bool = False,
    lock_ttl_s: float = LOCK_TTL_S,
) -> GcReport:
    """Delete blobs no manifest references that are older than `grace_seconds`, and upload
    temp files that old (a crashed push's)."""
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds}")
    backend = registry.backend
    report = GcReport(grace_seconds, dry_run)
    with backend.lock("gc", lock_ttl_s) as lease:
        cutoff = lease.started - grace_seconds
        stored = backend.listing("blobs/sha256")
        used = referenced_blobs(registry)
        report.referenced = len(used & {key.rsplit("/", 1)[-1] for key in stored})
        for key, info in sorted(stored.items()):
            digest = key.rsplit("/", 1)[-1]
            if digest in used:
                continue
            if info.modified >= cutoff:
                report.kept_young.append(digest)
                continue
            if not dry_run:
                if time.time() > lease.expires:
                    raise StoreLocked(f"gc outlived its lock ({lock_ttl_s:g} s); run it again")
                try:
                    if backend.modified(key) >= cutoff:  # a push touched it since the listing
                        report.kept_young.append(digest)
                        continue
                except NotFound:
                    continue
                backend.delete(key)
            report.deleted.append(digest)
            report.freed_bytes += info.size
        for key, info in backend.listing("tmp").items():
            if info.modified < cutoff:
                report.stale_temp_files += 1
                if not dry_run:
                    backend.delete(key)
    return report
