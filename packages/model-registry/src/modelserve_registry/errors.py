"""The export pipeline's own failures. They derive from the runtime's root, so the registry
CLI maps every error (store, loading, export) through one `RegistryError`."""

from __future__ import annotations

from modelserve_runtime.errors import RegistryError


class ValidationFailed(RegistryError):
    """An exported variant is outside its numerical tolerance against the FP32 reference."""

    exit_code = 5
    http_status = 422


class ExportError(RegistryError):
    """The source folder cannot be exported (missing files, unsupported architecture)."""

    exit_code = 6
    http_status = 422
