"""The Open Inference Protocol's gRPC service: grpc_predict_v2.proto and the stubs grpcio-tools
compiles from it (`python -m modelserve_predictor.grpc_v2.compile`; a test checks the
committed stubs are current)."""
