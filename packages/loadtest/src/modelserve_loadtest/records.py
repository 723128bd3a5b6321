"""One record per scheduled arrival, and its CSV form (requests.csv). Free of Locust, so
reports and comparisons never trigger gevent's monkey-patching."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Record:
    index: int
    intended: float  # epoch seconds
    sent: float | None
    finished: float | None
    status: int
    error: str | None

    @property
    def latency_ms(self) -> float | None:
        return None if self.finished is None else 1000 * (self.finished - self.intended)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.error is None


FIELDS = ["index", "intended", "sent", "finished", "latency_ms", "status", "error"]


def write_requests(records: list[Record], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for r in records:
            writer.writerow(
                [
                    r.index,
                    f"{r.intended:.6f}",
                    "" if r.sent is None else f"{r.sent:.6f}",
                    "" if r.finished is None else f"{r.finished:.6f}",
                    "" if r.latency_ms is None else f"{r.latency_ms:.3f}",
                    r.status,
                    r.error or "",
                ]
            )


def read_requests(path: Path) -> list[Record]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            Record(
                int(row["index"]),
                float(row["intended"]),
                float(row["sent"]) if row["sent"] else None,
                float(row["finished"]) if row["finished"] else None,
                int(row["status"]),
                row["error"] or None,
            )
            for row in csv.DictReader(handle)
        ]
