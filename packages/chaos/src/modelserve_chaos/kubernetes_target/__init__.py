"""Disruptions of a predictor running on Kubernetes / K3s."""
