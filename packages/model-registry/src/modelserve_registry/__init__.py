"""Content-addressed, verified model registry and the export pipeline that fills it."""

from modelserve_registry.errors import RegistryError
from modelserve_registry.manifest import ModelManifest, Variant
from modelserve_registry.references import ModelReference
from modelserve_registry.store import Registry

__all__ = ["ModelManifest", "ModelReference", "Registry", "RegistryError", "Variant"]
