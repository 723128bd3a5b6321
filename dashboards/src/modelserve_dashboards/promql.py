"""Every PromQL query in the generated dashboards, with Grafana's variables substituted, so
a real Prometheus can run them: panel targets, Prometheus annotation queries, and the
`label_values(...)` template variables."""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[a-zA-Z_:][\w:]*)\s*,\s*(?P<label>\w+)\)$")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str  # panel title, or "annotation: ..." / "variable: ..."
    ref: str
    expr: str
    legend: str = ""


def substitute(expr: str, rate_interval: str = "30s", interval: str = "15s") -> str:
    """Grafana's variables as Grafana would expand them with 'All' selected."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", interval)
    return re.sub(r"\$\{?(model|variant)\}?", ".*", expr)


def panels_of(board: dict) -> list[dict]:
    out = []
    for panel in board.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels inside collapsed rows
    return out


def queries(name: str, board: dict) -> list[PanelQuery]:
    found = []
    for panel in panels_of(board):
        for target in panel.get("targets", []) or []:
            if target.get("expr"):
                found.append(
                    PanelQuery(
                        name,
                        panel["title"],
                        target.get("refId", "A"),
                        target["expr"],
                        target.get("legendFormat", ""),
                    )
                )
    for annotation in board.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            found.append(
                PanelQuery(name, f"annotation: {annotation['name']}", "A", annotation["expr"])
            )
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            found.append(PanelQuery(name, f"variable: {variable['name']}", "A", variable["query"]))
    return found


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: {{label}} replaced by the series' label value."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: labels.get(match.group(1), ""), template)
    return " ".join(text.split()) or ", ".join(f"{k}={v}" for k, v in labels.items())
