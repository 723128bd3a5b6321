"""Grafana dashboards for the platform, written with grafana-foundation-sdk."""
