"""Every failure the registry can report. Each class names its CLI exit code and the HTTP
status a server (the predictor) should answer with when it surfaces one."""

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


class ValidationFailed(RegistryError):
    """An exported variant is outside its numerical tolerance against the FP32 reference."""

    exit_code = 5
    http_status = 422


class ExportError(RegistryError):
    """The source folder cannot be exported (missing files, unsupported architecture)."""

    exit_code = 6
    http_status = 422


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
