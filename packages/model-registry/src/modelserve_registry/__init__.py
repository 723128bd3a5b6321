"""The export pipeline that fills the registry (FP32/FP16/ONNX/INT8 variants, each validated
against the FP32 reference) and the `registry` CLI. The store itself is modelserve_runtime."""
