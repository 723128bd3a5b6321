"""What loads and runs a registry variant: the store client (pull, verify, cache), the
manifest, tokenization with `tokenizers`, and ONNX Runtime / PyTorch runners. Shared by the
registry (validation) and the predictor (serving)."""

from modelserve_runtime.errors import RegistryError
from modelserve_runtime.manifest import ModelManifest, Variant
from modelserve_runtime.references import ModelReference
from modelserve_runtime.store import Registry

__all__ = ["ModelManifest", "ModelReference", "Registry", "RegistryError", "Variant"]
