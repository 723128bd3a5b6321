"""The batcher's pure parts: how a batch is chosen from the waiting texts."""

from __future__ import annotations

import asyncio

from modelserve_predictor.batching import Pending, select_batch, split_expired, take_batch


def pending(tokens: list[int]) -> list[Pending]:
    return [Pending(f"t{i}", n, float(i), None) for i, n in enumerate(tokens)]  # type: ignore[arg-type]


def test_select_batch_starts_with_the_oldest_and_groups_by_length() -> None:
    queue = pending([10, 200, 11, 190, 9, 12])
    chosen = select_batch(queue, max_batch_size=4, max_batch_tokens=10_000)
    assert chosen == [0, 2, 4, 5]  # the short ones next to the oldest (10 tokens)
    assert select_batch(pending([200, 10, 11]), 3, 10_000) == [0, 1, 2]
    assert select_batch([], 4, 100) == []


def test_select_batch_respects_the_padded_token_budget() -> None:
    queue = pending([100, 100, 100, 10])
    assert select_batch(queue, max_batch_size=8, max_batch_tokens=250) == [0, 1]
    assert select_batch(pending([600]), 8, 100) == [0]  # one long text still runs alone


def test_select_batch_caps_padding_waste() -> None:
    queue = pending([10, 12, 40, 11])
    assert select_batch(queue, 8, 10_000, max_padding_ratio=1.25) == [0, 1, 3]
    assert select_batch(queue, 8, 10_000) == [0, 1, 2, 3]


def test_split_expired_keeps_the_live_drops_the_cancelled_and_times_the_expired() -> None:
    loop = asyncio.new_event_loop()
    try:
        live, late, cancelled = (
            Pending(name, 5, 1.0, loop.create_future(), deadline)
            for name, deadline in (("live", 10.0), ("late", 2.0), ("cancelled", 10.0))
        )
        cancelled.future.cancel()
        kept, expired = split_expired([live, late, cancelled], now=3.5)
        assert kept == [live]
        assert expired == [(late, 2.5)]  # waited from 1.0 to 3.5
        queue = [live]
        assert split_expired(queue, now=3.5)[0] is queue  # nothing dropped: the same list
    finally:
        loop.close()


def test_take_batch_returns_the_batch_and_the_rest_in_order() -> None:
    queue = pending([10, 200, 11, 190, 9, 12])
    batch, rest = take_batch(queue, max_batch_size=4, max_batch_tokens=10_000)
    assert [p.text for p in batch] == ["t0", "t2", "t4", "t5"]
    assert [p.text for p in rest] == ["t1", "t3"]
