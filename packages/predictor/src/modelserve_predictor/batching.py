"""The batcher's pure parts: what a waiting text is, how many tokens it likely has, and
which waiting texts form the next batch (no asyncio, no threads: batcher.py does the I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

# A text's compute is close to linear in its tokens, plus a fixed part: roberta-base INT8 on
# one thread took 3.78 ms + 0.527 ms per token (residual sd 0.7 ms over 400 Sp1786 texts of
# 9-118 ms). So the queue's wait is estimated in tokens, plus the fixed part as so many
# tokens per text (this until `calibrate` measures it): a mean per text, pulled up by every
# long text that ran, had made a short queue look twice as long.
TEXT_OVERHEAD_TOKENS = 8


def estimate_tokens(text: str, max_tokens: int) -> int:
    """About 4 characters per token for English, plus the special tokens, capped."""
    return min(max_tokens, len(text) // 4 + 2)


@dataclass
class Pending:
    text: str
    tokens: int
    enqueued: float
    future: asyncio.Future = field(repr=False)
    deadline: float = float("inf")  # perf_counter() past which the answer is useless
    units: float = 0.0  # its compute, in tokens with the fixed part (see TEXT_OVERHEAD_TOKENS)


def select_batch(
    queue: Sequence[Pending],
    max_batch_size: int,
    max_batch_tokens: int,
    max_padding_ratio: float = float("inf"),
    window: int = 4,
) -> list[int]:
    """Indices (into `queue`, oldest first) of the next batch: the oldest item, then the items
    nearest to it in length while batch_size * longest <= max_batch_tokens and the padded
    tokens stay within max_padding_ratio of the real ones."""
    if not queue:
        return []
    candidates = range(1, min(len(queue), max_batch_size * window))
    anchor = queue[0].tokens
    ordered = sorted(candidates, key=lambda i: (abs(queue[i].tokens - anchor), i))
    chosen, longest, real = [0], anchor, anchor
    for index in ordered:
        if len(chosen) >= max_batch_size:
            break
        tokens = queue[index].tokens
        widest = max(longest, tokens)
        padded = widest * (len(chosen) + 1)
        if padded > max_batch_tokens or padded > max_padding_ratio * (real + tokens):
            continue
        chosen.append(index)
        longest, real = widest, real + tokens
    return sorted(chosen)


@dataclass
class BatchReport:
    size: int
    padded_tokens: int
    run_seconds: float
    waits: list[float]

    @classmethod
    def of(cls, batch: Sequence[Pending], started: float, finished: float) -> BatchReport:
        return cls(
            size=len(batch),
            padded_tokens=max(p.tokens for p in batch) * len(batch),
            run_seconds=finished - started,
            waits=[started - p.enqueued for p in batch],
        )


def split_expired(
    queue: list[Pending], now: float
) -> tuple[list[Pending], list[tuple[Pending, float]]]:
    """The texts still worth computing, and those whose deadline has passed, with how long
    each waited; texts whose caller gave up (a done future) are dropped from both."""
    kept, expired = [], []
    for p in queue:
        if p.future.done():
            continue
        if p.deadline < now:
            expired.append((p, now - p.enqueued))
            continue
        kept.append(p)
    return (queue if len(kept) == len(queue) else kept), expired


def take_batch(
    queue: list[Pending],
    max_batch_size: int,
    max_batch_tokens: int,
    max_padding_ratio: float = float("inf"),
) -> tuple[list[Pending], list[Pending]]:
    """The next batch (`select_batch`) and what stays queued, in order."""
    indices = select_batch(queue, max_batch_size, max_batch_tokens, max_padding_ratio)
    picked = set(indices)
    return [queue[i] for i in indices], [p for i, p in enumerate(queue) if i not in picked]
