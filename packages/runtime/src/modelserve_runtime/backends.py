"""Two storage backends with one behaviour: a local directory (the embedded store) and an
S3-compatible bucket through s3fs. Keys are '/'-separated and already validated.

The only primitives the registry needs are atomic whole-object writes and one exclusive
create (for allocating version numbers and taking the gc lock); both exist natively on a
POSIX filesystem (rename, link) and on S3 (PUT is atomic; If-None-Match: * is exclusive).
Every object has a modification time (mtime; S3 LastModified) that `touch` refreshes: gc's
grace period is measured with it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from modelserve_runtime.errors import NotFound, StoreLocked, StoreUnavailable


class ObjectInfo(NamedTuple):
    modified: float  # seconds since the epoch, by the store's clock
    size: int


@dataclass(frozen=True)
class Lease:
    """A held store lock: `started` is the store's clock when it was taken (the lock object's
    own modification time, so a skewed client clock does not matter); `expires` is this
    machine's clock (infinite for a local lock, which the kernel drops if its holder dies)."""

    key: str
    started: float
    expires: float


def _holder(ttl_s: float) -> bytes:
    return json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "expires": time.time() + ttl_s}
    ).encode()


class Backend(Protocol):
    description: str

    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes, *, exclusive: bool = False) -> None: ...
    def upload(self, local_path: Path, key: str) -> None: ...
    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def children(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def touch(self, key: str) -> None: ...
    def modified(self, key: str) -> float: ...
    def listing(self, prefix: str) -> dict[str, ObjectInfo]: ...
    def lock(self, name: str, ttl_s: float) -> contextlib.AbstractContextManager[Lease]: ...


class LocalBackend:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.description = str(self.root)
        try:
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create registry at {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        return self.root / key

    def _temp(self) -> Path:
        return self.root / "tmp" / f"{uuid.uuid4().hex}.part"

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None

    def write_bytes(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp()
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            if exclusive:
                os.link(temp, target)  # fails with FileExistsError if someone else won
            else:
                os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def upload(self, local_path: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp()
        try:
            with open(local_path, "rb") as source, open(temp, "wb") as handle:
                shutil.copyfileobj(source, handle, length=1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None
        with handle:
            yield handle

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def children(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def touch(self, key: str) -> None:
        try:
            os.utime(self._path(key))
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None

    def modified(self, key: str) -> float:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None

    def listing(self, prefix: str) -> dict[str, ObjectInfo]:
        found = {}
        for path in self._path(prefix).rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # deleted while we list
                stat = path.stat()
                if path.is_file():
                    found[path.relative_to(self.root).as_posix()] = ObjectInfo(
                        stat.st_mtime, stat.st_size
                    )
        return found

    @contextlib.contextmanager
    def lock(self, name: str, ttl_s: float) -> Iterator[Lease]:
        """An exclusive flock on `locks/<name>.lock`. The file stays (deleting a flocked file
        lets a second holder lock a fresh inode); the kernel releases it if we die."""
        path = self._path(f"locks/{name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = handle.read().decode(errors="replace").strip() or "holder unknown"
                raise StoreLocked(
                    f"{name} is already running on {self.description} ({holder})"
                ) from None
            handle.truncate(0)
            handle.write(_holder(ttl_s))
            handle.flush()
            yield Lease(f"locks/{name}.lock", os.fstat(handle.fileno()).st_mtime, math.inf)


class S3Backend:
    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        import s3fs  # imported here: the local store must not pay for botocore

        self.base = uri.removeprefix("s3://").strip("/")
        if not self.base:
            raise StoreUnavailable(f"invalid S3 registry URI {uri!r}: expected s3://bucket/prefix")
        self.description = f"s3://{self.base}"
        self.endpoint_url = endpoint_url
        client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
        self.fs = s3fs.S3FileSystem(
            client_kwargs=client_kwargs,
            use_listings_cache=False,
            config_kwargs={"connect_timeout": 5, "retries": {"max_attempts": 2}},
        )
        bucket = self.base.split("/", 1)[0]
        try:
            self.fs.ls(bucket, refresh=True)
        except FileNotFoundError:
            raise StoreUnavailable(
                f"bucket {bucket!r} does not exist at {endpoint_url or 'AWS'}"
            ) from None
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach {self.description}: {exc}") from exc

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None

    def write_bytes(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        path = self._path(key)
        if not exclusive:
            self.fs.pipe_file(path, data)
            return
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            raise
        except OSError as exc:
            # Some S3-compatible servers report the failed precondition without naming it.
            if self.exists(key):
                raise FileExistsError(path) from exc
            raise

    def upload(self, local_path: Path, key: str) -> None:
        # A PUT (or a completed multipart upload) appears atomically: readers never see half.
        self.fs.put_file(str(local_path), self._path(key))

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            handle = self.fs.open(self._path(key), "rb", block_size=8 << 20)
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None
        with handle:
            yield handle

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def size(self, key: str) -> int:
        return int(self.fs.size(self._path(key)))

    def children(self, prefix: str) -> list[str]:
        try:
            entries = self.fs.ls(self._path(prefix), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    def touch(self, key: str) -> None:
        # S3 has no utime: a server-side copy onto itself (new metadata) sets LastModified.
        # It fails for objects over 5 GB; the registry then uploads the file again.
        try:
            self.fs.setxattr(self._path(key), touched=str(time.time()))
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None

    def modified(self, key: str) -> float:
        try:
            return self.fs.info(self._path(key))["LastModified"].timestamp()
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.description}") from None

    def listing(self, prefix: str) -> dict[str, ObjectInfo]:
        try:
            entries = self.fs.find(self._path(prefix), detail=True)
        except FileNotFoundError:
            return {}
        return {
            path.removeprefix(f"{self.base}/"): ObjectInfo(
                info["LastModified"].timestamp(), int(info["size"])
            )
            for path, info in entries.items()
            if info.get("type") == "file"
        }

    @contextlib.contextmanager
    def lock(self, name: str, ttl_s: float) -> Iterator[Lease]:
        """An exclusive-create lock object holding its expiry, deleted at the end."""
        lease = self._take_lock(f"locks/{name}", ttl_s)
        try:
            yield lease
        finally:
            self.delete(lease.key)

    def _take_lock(self, folder: str, ttl_s: float, attempts: int = 5) -> Lease:
        """Generations `<folder>/<n>.json`: the highest is the lock. An expired holder (it
        crashed) is taken over by creating generation n+1, so two takers cannot both win; a
        lock released while we looked is looked at again."""
        for _ in range(attempts):
            held = sorted(
                int(entry.removesuffix(".json"))
                for entry in self.children(folder)
                if entry.removesuffix(".json").isdigit()
            )
            generation = held[-1] if held else 0
            if held:
                try:
                    holder = json.loads(self.read_bytes(f"{folder}/{generation}.json"))
                except NotFound:
                    continue
                except ValueError:
                    holder = {}
                if not isinstance(holder, dict):
                    holder = {}  # unreadable: treated as expired
                if float(holder.get("expires", 0)) > time.time():
                    raise StoreLocked(
                        f"{folder.rsplit('/', 1)[-1]} is already running on "
                        f"{self.description} (host {holder.get('host')}, pid "
                        f"{holder.get('pid')}, lock expires at {holder.get('expires')})"
                    )
            key = f"{folder}/{generation + 1}.json"
            data = _holder(ttl_s)
            try:
                self.write_bytes(key, data, exclusive=True)
            except FileExistsError:
                continue
            for stale in held:
                self.delete(f"{folder}/{stale}.json")
            return Lease(key, self.modified(key), json.loads(data)["expires"])
        raise StoreLocked(f"could not take the lock {folder} on {self.description}")


def open_backend(uri: str, *, s3_endpoint_url: str | None = None) -> Backend:
    if uri.startswith("s3://"):
        return S3Backend(uri, s3_endpoint_url)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreUnavailable(f"unsupported registry URI {uri!r}: use a directory or s3://")
    return LocalBackend(Path(uri.removeprefix("file://")))
