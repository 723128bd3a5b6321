"""Two storage backends with one behaviour: a local directory (the embedded store) and an
S3-compatible bucket through s3fs. Keys are '/'-separated and already validated.

The only primitives the registry needs are atomic whole-object writes and one exclusive
create (for allocating version numbers); both exist natively on a POSIX filesystem
(rename, link) and on S3 (PUT is atomic; If-None-Match: * is exclusive)."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from modelserve_runtime.errors import NotFound, StoreUnavailable


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


class S3Backend:
    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        import s3fs  # imported here: the local store must not pay for botocore

        self.base = uri.removeprefix("s3://").strip("/")
        if not self.base:
            raise StoreUnavailable(f"invalid S3 registry URI {uri!r}: expected s3://bucket/prefix")
        self.description = f"s3://{self.base}"
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


def open_backend(uri: str, *, s3_endpoint_url: str | None = None) -> Backend:
    if uri.startswith("s3://"):
        return S3Backend(uri, s3_endpoint_url)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreUnavailable(f"unsupported registry URI {uri!r}: use a directory or s3://")
    return LocalBackend(Path(uri.removeprefix("file://")))
