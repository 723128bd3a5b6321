"""predictor: see the workspace README."""
