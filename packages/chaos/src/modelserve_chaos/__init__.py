"""chaos: see the workspace README."""
