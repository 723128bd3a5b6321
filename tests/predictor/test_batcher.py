"""The batcher with real asyncio and real threads; the batch function is the test's own."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelserve_predictor.batcher import OVERLOAD_REFUSED_SHARE, Batcher
from modelserve_predictor.batching import TEXT_OVERHEAD_TOKENS, BatchReport, estimate_tokens
from modelserve_predictor.errors import Overloaded, Unprocessable


def run(coro):
    return asyncio.run(coro)


def make(run_batch, **kwargs) -> tuple[Batcher, list[BatchReport]]:
    reports: list[BatchReport] = []
    batcher = Batcher("m", run_batch, ThreadPoolExecutor(1), on_batch=reports.append, **kwargs)
    return batcher, reports


def test_batches_grow_with_load_and_a_lone_text_waits_for_nothing() -> None:
    def slow_upper(texts: list[str]) -> list[str]:
        time.sleep(0.05)
        return [t.upper() for t in texts]

    async def scenario() -> None:
        batcher, reports = make(slow_upper, max_batch_size=16)
        started = time.perf_counter()
        assert await batcher.submit(["alone"]) == ["ALONE"]
        assert time.perf_counter() - started < 0.2
        results = await asyncio.gather(*(batcher.submit([f"x{i}"]) for i in range(20)))
        assert results == [[f"X{i}"] for i in range(20)]
        sizes = [r.size for r in reports]
        assert sizes[0] == 1 and max(sizes) > 1 and sum(sizes) == 21
        assert all(w >= 0 for r in reports for w in r.waits)
        await batcher.stop()

    run(scenario())


def test_a_full_queue_refuses_fast_with_retry_after_and_keeps_admitted_work() -> None:
    def slow(texts: list[str]) -> list[str]:
        time.sleep(0.1)
        return texts

    async def scenario() -> None:
        rejected = []
        batcher, _ = make(slow, max_batch_size=1, max_queue=3)
        batcher.on_reject = lambda reason: rejected.append(reason)
        first = [asyncio.ensure_future(batcher.submit(["a0"]))]
        await asyncio.sleep(0.02)  # a0 is running
        first += [asyncio.ensure_future(batcher.submit([f"a{i}"])) for i in range(1, 4)]
        await asyncio.sleep(0.01)  # three waiting: the queue is full
        started = time.perf_counter()
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(["late"])
        assert time.perf_counter() - started < 0.01
        assert refused.value.headers()["Retry-After"] == "1" and rejected == ["queue_full"]
        assert [await f for f in first] == [[f"a{i}"] for i in range(4)]
        await batcher.stop()

    run(scenario())


def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    calls = []

    def flaky(texts: list[str]) -> list[str]:
        calls.append(texts)
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return texts

    async def scenario() -> None:
        batcher, _ = make(flaky)
        with pytest.raises(Unprocessable, match="could not process this text: model exploded"):
            await batcher.submit(["boom"])
        assert await batcher.submit(["fine"]) == ["fine"]
        await batcher.stop()

    run(scenario())


def test_max_latency_waits_for_a_fuller_batch() -> None:
    async def scenario() -> None:
        batcher, reports = make(lambda texts: texts, max_batch_size=4, max_latency_ms=100)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.02)
        rest = [asyncio.ensure_future(batcher.submit([x])) for x in "bcd"]
        await asyncio.gather(first, *rest)
        assert [r.size for r in reports] == [4]
        await batcher.stop()

    run(scenario())


def test_a_poisoned_batch_fails_only_the_request_that_poisoned_it() -> None:
    def picky(texts: list[str]) -> list[str]:
        time.sleep(0.01)
        if "poison" in texts:
            raise ValueError("cannot encode this")
        return [t.upper() for t in texts]

    async def scenario() -> list[object]:
        batcher, reports = make(picky, max_batch_size=32)
        texts = [f"ok{i}" for i in range(50)]
        texts.insert(25, "poison")
        outcomes = await asyncio.gather(
            *(batcher.submit([t]) for t in texts), return_exceptions=True
        )
        assert max(r.size for r in reports) > 1  # they really were batched together
        await batcher.stop()
        return outcomes

    outcomes = run(scenario())
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], Unprocessable)
    assert outcomes[25] is failures[0] and "cannot encode this" in str(failures[0])
    assert sum(1 for o in outcomes if isinstance(o, list)) == 50


def test_a_request_that_cannot_meet_its_deadline_is_refused_at_once() -> None:
    rejected: list[str] = []

    def slow(texts: list[str]) -> list[str]:
        time.sleep(0.05 * len(texts))
        return texts

    async def scenario() -> None:
        batcher = Batcher(
            "m", slow, ThreadPoolExecutor(1), max_batch_size=1, on_reject=rejected.append
        )
        await batcher.submit(["warm"])  # measures ~50 ms per text
        backlog = [asyncio.ensure_future(batcher.submit([f"b{i}"], 10.0)) for i in range(10)]
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        with pytest.raises(Overloaded, match="expected wait") as caught:
            await batcher.submit(["late"], timeout_s=0.05)
        assert time.perf_counter() - started < 0.05  # refused without queueing
        assert caught.value.retry_after_s >= 1
        assert await batcher.submit(["roomy"], timeout_s=30) == ["roomy"]
        await asyncio.gather(*backlog)
        await batcher.stop()

    run(scenario())
    assert rejected == ["deadline"]


def test_texts_whose_deadline_passes_in_the_queue_are_dropped_uncomputed() -> None:
    from modelserve_predictor.errors import DeadlineExceeded

    computed: list[str] = []
    rejected: list[str] = []

    def slow(texts: list[str]) -> list[str]:
        time.sleep(0.2)
        computed.extend(texts)
        return texts

    async def scenario() -> None:
        batcher = Batcher(
            "m", slow, ThreadPoolExecutor(1), max_batch_size=1, on_reject=rejected.append
        )
        first = asyncio.ensure_future(batcher.submit(["first"]))
        await asyncio.sleep(0.02)  # "first" is running; the estimate is still 10 ms per text
        with pytest.raises(DeadlineExceeded, match="deadline passed"):
            await batcher.submit(["hurried"], timeout_s=0.05)
        assert await first == ["first"]
        await batcher.stop()

    run(scenario())
    assert computed == ["first"] and rejected == ["expired"]


def test_the_wait_ahead_past_the_queue_budget_is_refused_but_a_big_request_alone_is_not() -> None:
    import threading

    release = threading.Event()

    def held(texts: list[str]) -> list[str]:
        release.wait(30)  # the first batch runs until the test lets it finish
        return texts

    async def scenario() -> None:
        rejected = []
        # the full budget throughout (the overload one has its own test below)
        batcher, _ = make(held, max_batch_size=1, max_queue_wait_ms=100, overload_queue_wait_ms=100)
        batcher.on_reject = rejected.append
        batcher.seconds_per_text = 0.4  # the measured cost, fixed for the test
        # 10 texts on an idle model: 4 s of its own compute, nothing ahead: admitted
        big = asyncio.ensure_future(batcher.submit([f"b{i}" for i in range(10)]))
        while batcher.running == 0:
            await asyncio.sleep(0.005)
        # 10 x 400 ms ahead now, past the 100 ms budget, whatever the request's deadline:
        # the HTTP layer may refuse the next ones before reading them, for the 3.9 s excess
        assert 3.8 < (batcher.refusing() or 0) <= 3.9
        with pytest.raises(Overloaded, match="budget of 100 ms") as refused:
            await batcher.submit(["late"], timeout_s=60)
        assert rejected == ["queue_wait"] and int(refused.value.headers()["Retry-After"]) >= 1
        release.set()
        assert await big == [f"b{i}" for i in range(10)]
        assert batcher.refusing() is None  # drained: nothing is shed any more
        await batcher.stop()

    run(scenario())


def test_a_lone_text_on_an_idle_model_runs_on_the_event_loop_and_a_burst_batches() -> None:
    threads: list[tuple[int, int]] = []  # (thread, batch size)

    def upper(texts: list[str]) -> list[str]:
        threads.append((threading.get_ident(), len(texts)))
        time.sleep(0.005)
        return [t.upper() for t in texts]

    async def scenario() -> None:
        batcher, reports = make(upper, max_batch_size=16, inline_when_idle=True)
        batcher.seconds_per_text = 0.005
        loop_thread = threading.get_ident()
        for text in ("a", "b", "c"):
            assert await batcher.submit([text]) == [text.upper()]
            await asyncio.sleep(0.05)  # well apart: a light load
        assert [t for t, _ in threads] == [loop_thread] * 3
        threads.clear()
        results = await asyncio.gather(*(batcher.submit([f"x{i}"]) for i in range(40)))
        assert results == [[f"X{i}"] for i in range(40)]
        on_the_thread = [size for thread, size in threads if thread != loop_thread]
        assert on_the_thread and max(on_the_thread) > 1  # the burst went to the thread, batched
        assert len(threads) < 40
        await asyncio.sleep(0)  # the batch reports are recorded after the answers
        assert sum(r.size for r in reports) == 43
        await batcher.stop()

    run(scenario())


def test_a_text_that_fails_inline_fails_alone() -> None:
    def picky(texts: list[str]) -> list[str]:
        if "\ud800" in texts[0]:
            raise ValueError("cannot encode a lone surrogate\nsecond line")
        return [t.upper() for t in texts]

    async def scenario() -> None:
        batcher, _ = make(picky, inline_when_idle=True)
        with pytest.raises(Unprocessable, match=r"lone surrogate$"):
            await batcher.submit(["bad \ud800"])
        await asyncio.sleep(0.05)
        assert await batcher.submit(["fine"]) == ["FINE"]
        assert batcher.running == 0
        await batcher.stop()

    run(scenario())


def test_under_overload_the_wait_budget_tightens_and_a_burst_gets_the_full_one() -> None:
    """A burst at a load the model can take queues within max_queue_wait_ms, and a refusal
    now and then leaves that budget alone; once more than OVERLOAD_REFUSED_SHARE of the
    recent requests are refused (overload), the tighter overload budget holds, so the
    admitted wait less and the rest are refused at once, until admissions bring it back."""
    release = threading.Event()

    def held(texts: list[str]) -> list[str]:
        release.wait(30)
        return texts

    async def scenario() -> None:
        batcher, _ = make(held, max_batch_size=1, max_queue_wait_ms=100, overload_queue_wait_ms=20)
        batcher.seconds_per_text = 0.01  # fixed: no batch finishes while the model is held
        first = asyncio.ensure_future(batcher.submit(["running"]))
        while batcher.running == 0:
            await asyncio.sleep(0.005)
        assert 0 < batcher.wait_ahead_s() <= 0.01  # what is left of the running text
        await asyncio.sleep(0.02)  # past its estimate: nothing left to wait for ahead
        assert batcher.wait_ahead_s() == 0
        # a burst: up to 100 ms ahead of its last text, within the full budget
        burst = [asyncio.ensure_future(batcher.submit([f"b{i}"])) for i in range(11)]
        await asyncio.sleep(0)
        assert batcher.depth == 11 and batcher.wait_budget_s() == pytest.approx(0.1)
        for name in ("over", "again", "and again"):
            assert batcher.wait_budget_s() == pytest.approx(0.1)  # one or two: a bunch
            with pytest.raises(Overloaded, match="budget of 100 ms"):
                await batcher.submit([name])  # 110 ms ahead
        # a third of the recent requests refused: overload, the tight budget now, for the
        # next request and the HTTP layer alike
        assert batcher.refused_share > OVERLOAD_REFUSED_SHARE
        assert batcher.wait_budget_s() == pytest.approx(0.02)
        assert batcher.refusing() == pytest.approx(0.11 - 0.02, abs=1e-6)
        with pytest.raises(Overloaded, match="budget of 20 ms"):
            await batcher.submit(["late"])
        release.set()
        assert await asyncio.gather(first, *burst) == [["running"]] + [[f"b{i}"] for i in range(11)]
        for i in range(10):  # admitted again and again: the full budget comes back
            assert await batcher.submit([f"after{i}"]) == [f"after{i}"]
        assert batcher.wait_budget_s() == pytest.approx(0.1)
        await batcher.stop()

    run(scenario())
    # not given, the overload budget scales with the full one; no budget stays none
    assert make(held, max_queue_wait_ms=150)[0].overload_queue_wait_s == pytest.approx(0.06)
    assert make(held, max_queue_wait_ms=None)[0].overload_queue_wait_s is None


def test_the_wait_ahead_counts_tokens_so_a_long_text_does_not_make_short_ones_look_long() -> None:
    release = threading.Event()

    def held(texts: list[str]) -> list[str]:
        release.wait(30)
        return texts

    async def scenario() -> None:
        batcher, _ = make(held, max_batch_size=1, max_queue_wait_ms=None)
        batcher.seconds_per_token = 0.001
        first = asyncio.ensure_future(batcher.submit(["running"]))
        while batcher.running == 0:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # past the running text's estimate
        long_text, short = "word " * 80, "ok"  # 102 and 2 tokens, each + TEXT_OVERHEAD_TOKENS
        queued = [asyncio.ensure_future(batcher.submit([t])) for t in (long_text, short, short)]
        await asyncio.sleep(0)
        units = 102 + 2 + 2 + 3 * TEXT_OVERHEAD_TOKENS
        assert batcher.wait_ahead_s() == pytest.approx(units * 0.001)
        # a long text that ran at the same cost per token leaves the estimate where it was
        batcher._measured(BatchReport(1, 102, 0.110, [0.0]), 102 + TEXT_OVERHEAD_TOKENS)
        assert batcher.seconds_per_token == pytest.approx(0.001)
        release.set()
        assert await asyncio.gather(first, *queued) == [["running"], [long_text], [short], [short]]
        await batcher.stop()

    run(scenario())


def test_two_timed_texts_calibrate_the_time_per_token_and_the_fixed_part() -> None:
    batcher, _ = make(lambda texts: texts, max_tokens_per_text=128)
    batcher.calibrate((4, 0.004), (104, 0.054))  # 0.5 ms per token, 2 ms (4 tokens) per text
    assert batcher.seconds_per_token == pytest.approx(0.0005)
    assert batcher.text_overhead_tokens == pytest.approx(4)
    # a text of the short one's length takes what it took; the longest, what it took
    assert batcher.expected_wait_s([estimate_tokens("x" * 8, 128)]) == pytest.approx(0.004)
    longest = estimate_tokens("x" * 1000, 128)  # capped: 128 tokens
    assert batcher.expected_wait_s([longest]) == pytest.approx(0.066)
    batcher.calibrate((4, 0.004), (104, 0.003))  # no slope (a hiccup): nothing changes
    assert batcher.seconds_per_token == pytest.approx(0.0005)


def test_batches_run_back_to_back_while_the_event_loop_is_busy() -> None:
    """The model's thread takes its next batch itself: with the loop blocked (as when it is
    busy reading and answering requests), the queued batches still run one after another."""
    batches_started: list[int] = []
    third_started = threading.Event()

    def slow_upper(texts: list[str]) -> list[str]:
        batches_started.append(len(texts))
        if len(batches_started) == 3:
            third_started.set()
        time.sleep(0.02)
        return [t.upper() for t in texts]

    async def scenario() -> None:
        batcher, reports = make(slow_upper, max_batch_size=4)
        answers = [asyncio.ensure_future(batcher.submit([f"x{i}"])) for i in range(12)]
        while not batches_started:  # the first batch is on the thread
            await asyncio.sleep(0.001)
        # block the loop: no callback, no task runs until the third batch has started
        ran_while_blocked = third_started.wait(timeout=30)
        assert ran_while_blocked, "the model's thread waited for the event loop"
        assert [await a for a in answers] == [[f"X{i}"] for i in range(12)]
        await asyncio.sleep(0)  # the last batch's metrics come right after its answers
        assert sum(r.size for r in reports) == 12 and len(batches_started) >= 3
        await batcher.stop()

    run(scenario())
