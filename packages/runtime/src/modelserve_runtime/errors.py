"""Every failure of the registry's store and of loading a variant. Each class names its CLI
exit code and the HTTP status a server (the predictor) should answer with when it surfaces one.
The registry's export errors (modelserve_registry.errors) derive from the same root."""

from __future__ import annotations


class RegistryError(Exception):
    """Root of all registry errors."""

    exit_code = 1
    http_status = 500


class InvalidReference(RegistryError):
    """A model name, version, alias or variant is malformed (path traversal, bad characters)."""

    exit_code = 2
    http_status = 400


class NotFound(RegistryError):
    """The model, version, alias, variant or file does not exist in the store."""

    exit_code = 3
    http_status = 404


class IntegrityError(RegistryError):
    """A stored or downloaded blob does not match its sha256 or size: corrupt or truncated."""

    exit_code = 4
    http_status = 502


class StoreUnavailable(RegistryError):
    """The store behind REGISTRY_URI cannot be reached or written."""

    exit_code = 7
    http_status = 503


class VersionConflict(RegistryError):
    """A version could not be allocated after repeated concurrent attempts, or is protected."""

    exit_code = 8
    http_status = 409


class UnsafeArtifact(RegistryError):
    """A file type that could execute code when loaded (pickle and friends) was offered."""

    exit_code = 9
    http_status = 400


class DeviceUnavailable(RegistryError):
    """The variant cannot run on the requested device here (no CUDA provider, no GPU)."""

    exit_code = 10
    http_status = 503


class StoreLocked(RegistryError):
    """Another process holds the store's lock for this operation (a `registry gc` is running)."""

    exit_code = 11
    http_status = 409
