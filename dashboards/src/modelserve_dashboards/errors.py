"""Every failure `dashboards` reports: one line on stderr and the class's exit code."""

from __future__ import annotations


class DashboardsError(Exception):
    """Root of all dashboards errors."""

    exit_code = 1


class StaleDashboards(DashboardsError):
    """The committed JSON differs from what the code builds (run `dashboards build`)."""

    exit_code = 3


class PrometheusError(DashboardsError):
    """Prometheus could not start, or refused a query."""

    exit_code = 4


class BadArguments(DashboardsError):
    exit_code = 2
