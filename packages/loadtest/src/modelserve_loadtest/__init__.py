"""loadtest: see the workspace README."""
