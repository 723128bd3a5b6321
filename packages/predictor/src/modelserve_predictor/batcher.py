"""Per-model adaptive batching with a bounded queue.

A batch starts as soon as the model is free: at low load every text runs alone (no added
delay), under load the texts that arrived while the previous batch ran form the next one, so
batch size follows the load. Batches take the oldest waiting text first (nothing starves) and
fill with the texts closest to it in length, under a budget of padded tokens, because on CPU
padding a batch of short texts to one long text costs more than batching saves. Past
`max_queue` waiting texts a request is refused at once (Overloaded -> 429 + Retry-After)
instead of waiting in an unbounded queue. At light load (`inline_when_idle`) a lone text on
an idle model runs right on the event loop, skipping the hops to the model's thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from modelserve_predictor.batching import (
    TEXT_OVERHEAD_TOKENS,
    BatchReport,
    Pending,
    estimate_tokens,
    split_expired,
    take_batch,
)
from modelserve_predictor.errors import (
    DeadlineExceeded,
    Overloaded,
    PayloadTooLarge,
    PredictorError,
    Unprocessable,
)

# a request runs on the event loop only while requests arrive at least this many times its
# time per text apart (a model busy less than half the time)
INLINE_LOAD_HEADROOM = 4.0
# The wait budget is `overload_queue_wait_ms` while more than OVERLOAD_REFUSED_SHARE of the
# recent requests (an exponential average over about the last 1/OVERLOAD_SMOOTHING) were
# refused: under overload refusals keep coming and the tight budget holds; a bunch of
# arrivals at a load the model can take refuses one now and then, and the full budget absorbs
# it (the idea of CoDel's good and bad queue, and of the adaptive queue timeout in Facebook's
# "Fail at Scale"). Two rules tried before: tight while the queue had not emptied for 100 ms
# flapped, as batches of 4 empty a short queue; tight for 100 ms after any refusal turned one
# refusal at a sustainable load into a run of them (roberta-base at 64 req/s on 2 workers,
# a ~55% load, shed 2-3%).
OVERLOAD_REFUSED_SHARE = 0.2
OVERLOAD_SMOOTHING = 0.1
# the overload budget, when not given, as a share of the full one (20 of the default 50 ms:
# measured at 3x overload, benchmarks/results/reliability/overload-hold-ab)
OVERLOAD_WAIT_SHARE = 0.4


class Batcher:
    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[str]], Sequence[Any]],
        executor: Executor,
        *,
        max_batch_size: int = 32,
        max_batch_tokens: int = 8192,
        max_queue: int = 256,
        max_queue_wait_ms: float | None = None,
        overload_queue_wait_ms: float | None = None,
        max_latency_ms: float = 0.0,
        max_tokens_per_text: int = 512,
        max_padding_ratio: float = float("inf"),
        on_batch: Callable[[BatchReport], None] = lambda _: None,
        on_reject: Callable[[str], None] = lambda _reason: None,
        inline_when_idle: bool = False,
    ) -> None:
        self.name = name
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max(max_batch_tokens, max_tokens_per_text)
        self.max_queue = max_queue
        self.max_queue_wait_s = max_queue_wait_ms / 1000 if max_queue_wait_ms else None
        # no budget at all (None) stays none; under overload a tighter one, never looser,
        # scaled with the full one unless given (a slow model's budget is set larger)
        self.overload_queue_wait_s = self.max_queue_wait_s
        if self.max_queue_wait_s is not None:
            self.overload_queue_wait_s = min(
                overload_queue_wait_ms / 1000
                if overload_queue_wait_ms
                else OVERLOAD_WAIT_SHARE * self.max_queue_wait_s,
                self.max_queue_wait_s,
            )
        self.refused_share = 0.0  # of recent admission decisions, averaged
        self.max_latency_s = max_latency_ms / 1000
        self.max_tokens_per_text = max_tokens_per_text
        self.max_padding_ratio = max_padding_ratio
        self.on_batch = on_batch
        self.on_reject = on_reject
        self.inline_when_idle = inline_when_idle
        self._last_arrival = 0.0
        self.arrival_gap_s = 1.0  # running mean of the time between requests
        self.queue: list[Pending] = []
        # running estimates: compute per token (see TEXT_OVERHEAD_TOKENS) for admission,
        # and tokens per text (of what arrives) for a text's typical time
        self.seconds_per_token = 0.001
        self.text_overhead_tokens: float = TEXT_OVERHEAD_TOKENS
        self.tokens_per_text = 2.0 + TEXT_OVERHEAD_TOKENS
        self.running = 0  # texts in the batch being computed now
        self._running_units = 0.0  # their tokens
        self._running_since = 0.0  # when that batch started
        # Until when a request would surely be refused after the queue was found full (it
        # cannot have drained by then): with the wait budget, refusing() tells the HTTP layer
        # which requests to shed before parsing them.
        self.refusing_until = 0.0
        self._lock = threading.Lock()  # around the queue's changes (loop and model thread)
        self._arrival = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        return len(self.queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def seconds_per_text(self) -> float:
        """A typical text's compute: of the length of what has been arriving."""
        return self.seconds_per_token * self.tokens_per_text

    @seconds_per_text.setter
    def seconds_per_text(self, seconds: float) -> None:
        self.seconds_per_token = seconds / self.tokens_per_text

    def _units(self, tokens: Sequence[int]) -> float:
        """The compute of texts of these estimated tokens, with each text's fixed part."""
        return sum(tokens) + len(tokens) * self.text_overhead_tokens

    def calibrate(self, short: tuple[int, float], long: tuple[int, float]) -> None:
        """Two texts of very different lengths timed alone, (estimated tokens, seconds) each:
        the time per token and the fixed part per text, which the running estimate then
        scales as batches run. Left at the defaults when no slope shows."""
        (short_tokens, short_s), (long_tokens, long_s) = short, long
        if long_tokens <= short_tokens or long_s <= short_s:
            return
        per_token = (long_s - short_s) / (long_tokens - short_tokens)
        self.seconds_per_token = per_token
        self.text_overhead_tokens = max(0.0, short_s / per_token - short_tokens)
        self.tokens_per_text = short_tokens + self.text_overhead_tokens

    def expected_wait_s(self, tokens: Sequence[int]) -> float:
        """How long texts of these estimated tokens would take to be answered: everything
        ahead of them (queued, and what is left of the running batch) plus themselves, at
        the measured time per token."""
        return self.wait_ahead_s() + self._units(tokens) * self.seconds_per_token

    async def submit(self, texts: Sequence[str], timeout_s: float | None = None) -> list[Any]:
        """Queue the texts and wait for their rows. Refused at once (Overloaded) when the
        queue is full, when the wait ahead of them exceeds the queue's wait budget, or when
        the expected wait (theirs included) already exceeds `timeout_s`; texts still
        queued when their deadline passes are dropped before they are computed
        (DeadlineExceeded)."""
        if len(texts) > self.max_queue:
            raise PayloadTooLarge(
                f"{len(texts)} texts can never fit model {self.name!r}'s "
                f"queue of {self.max_queue}; send fewer per request"
            )
        tokens = [estimate_tokens(t, self.max_tokens_per_text) for t in texts]
        expected = self.expected_wait_s(tokens)
        budget = self.wait_budget_s()
        if len(self.queue) + len(texts) > self.max_queue:
            self._refuse_for(expected - (budget or 0.0))
            self._decided(refused=True)
            self.on_reject("queue_full")
            raise Overloaded(
                f"model {self.name!r} is overloaded: {len(self.queue)} texts already waiting "
                f"(limit {self.max_queue})",
                retry_after_s=max(1.0, expected),
            )
        ahead = self.wait_ahead_s()
        if budget is not None and ahead > budget:
            # the wait ahead, not the request's own compute: a big request on an idle model
            # is never refused by this
            self._decided(refused=True)
            self.on_reject("queue_wait")
            raise Overloaded(
                f"model {self.name!r} is overloaded: the wait ahead of this request "
                f"({ahead * 1000:.0f} ms) exceeds the queue's budget of "
                f"{budget * 1000:.0f} ms",
                retry_after_s=max(1.0, ahead),
            )
        if timeout_s is not None and expected > timeout_s:
            self.on_reject("deadline")
            raise Overloaded(
                f"model {self.name!r} is overloaded: the expected wait of {expected * 1000:.0f} ms "
                f"exceeds this request's deadline of {timeout_s * 1000:.0f} ms",
                retry_after_s=max(1.0, expected),
            )
        self._decided(refused=False)
        self._note_arrival(tokens)
        if self._runs_inline(len(texts)):
            return self._run_now(texts[0], tokens[0])
        self.start()
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        deadline = now + timeout_s if timeout_s is not None else float("inf")
        pending = [
            Pending(t, n, now, loop.create_future(), deadline, n + self.text_overhead_tokens)
            for t, n in zip(texts, tokens, strict=True)
        ]
        with self._lock:  # the model's thread takes batches out of it
            self.queue.extend(pending)
        self._arrival.set()
        if len(pending) == 1:  # most requests: no gather, one loop turn less to the answer
            return [await pending[0].future]
        return list(await asyncio.gather(*(p.future for p in pending)))

    def _note_arrival(self, tokens: Sequence[int]) -> None:
        per_text = self._units(tokens) / len(tokens)
        self.tokens_per_text += 0.1 * (per_text - self.tokens_per_text)
        now = time.perf_counter()
        gap, self._last_arrival = now - self._last_arrival, now
        self.arrival_gap_s = 0.5 * self.arrival_gap_s + 0.5 * min(gap, 1.0)

    def _runs_inline(self, texts: int) -> bool:
        """One text, an idle model, and a load well under what it can take: requests arrive
        more than INLINE_LOAD_HEADROOM times its time per text apart, so the next one most
        likely finds it idle again. Under load (or a burst, a few requests into it) texts
        queue for the thread, where they batch and where the event loop stays free to admit
        and refuse."""
        return (
            self.inline_when_idle
            and texts == 1
            and not self.queue
            and not self.running
            and self.arrival_gap_s > INLINE_LOAD_HEADROOM * self.seconds_per_text
        )

    def _run_now(self, text: str, tokens: int) -> list[Any]:
        """One text on an idle model, computed right here on the event loop: no hop to the
        model's thread and back, no batcher task to wake (what a request pays at low load).
        Nothing waits behind it (the queue is empty), and the loop is blocked only for this
        one text's run, after which the next arrivals queue and go to the thread as usual."""
        started = self._running_since = time.perf_counter()
        self.running, self._running_units = 1, self._units([tokens])
        try:
            (row,) = self.run_batch([text])
        except Exception as exc:
            raise _client_error(exc) from None
        finally:
            self.running = 0
        self._measured(
            BatchReport(1, tokens, time.perf_counter() - started, [0.0]), self._running_units
        )
        return [row]

    def _measured(self, report: BatchReport, units: float) -> None:
        """A text ran inline: learn from it, and record its metrics after the answer."""
        self._learn(report, units)
        asyncio.get_running_loop().call_soon(self.on_batch, report)

    def _learn(self, report: BatchReport, units: float) -> None:
        """A batch of `units` tokens (with each text's fixed part) ran: update the time per
        token (a float written by the model's thread, read by admission on the loop)."""
        per_token = report.run_seconds / max(1, units)
        self.seconds_per_token += 0.2 * (per_token - self.seconds_per_token)

    def _refuse_for(self, seconds: float) -> None:
        # half the excess: the estimate is a mean, and new arrivals are shed meanwhile
        self.refusing_until = max(self.refusing_until, time.perf_counter() + max(0.0, seconds) / 2)

    def wait_budget_s(self) -> float | None:
        """The longest wait ahead admission accepts now: `overload_queue_wait_ms` while more
        than OVERLOAD_REFUSED_SHARE of the recent requests were refused (overload: what
        waits longer is refused at once, so the admitted keep their latency and refusals
        come fast), else `max_queue_wait_ms`."""
        if self.refused_share > OVERLOAD_REFUSED_SHARE:
            return self.overload_queue_wait_s
        return self.max_queue_wait_s

    def _decided(self, refused: bool) -> None:
        self.refused_share += OVERLOAD_SMOOTHING * (refused - self.refused_share)

    def wait_ahead_s(self) -> float:
        """How long a request arriving now would wait before its own texts run: the queue,
        and what is left of the running batch (counting the whole batch made every arrival
        during a 4-text roberta-base batch look 68 ms behind, past a tight budget)."""
        running_left = 0.0
        if self.running:
            elapsed = time.perf_counter() - self._running_since
            running_left = max(0.0, self._running_units * self.seconds_per_token - elapsed)
        queued = sum(p.units for p in self.queue)
        return queued * self.seconds_per_token + running_left

    def refusing(self) -> float | None:
        """Seconds the queue will stay over its budget when a request arriving now would be
        refused for it (else None): the wait ahead past the wait budget, or what is left of
        the window a full queue's refusal opened. The caller refuses on a non-None answer,
        so that answer counts as a refusal, in the share that tightens the budget."""
        left = self.refusing_until - time.perf_counter()
        budget = self.wait_budget_s()
        if budget is not None:
            left = max(left, self.wait_ahead_s() - budget)
        if left <= 0:
            return None
        self._decided(refused=True)  # the HTTP layer refuses this request before reading it
        return left

    async def _run(self) -> None:
        """Hand the model's thread the queue whenever texts wait; it runs batch after batch
        by itself (`_drain`) until the queue is empty. Under load the next batch starts the
        moment the last one ends, not when the event loop, busy reading and answering
        requests, gets round to choosing it: with a round trip through the loop per batch
        the model thread sat idle between batches and a 2-worker server topped out at
        1.4 of 2 cores."""
        loop = asyncio.get_running_loop()
        while True:
            await self._arrival.wait()
            self._arrival.clear()
            while self.queue:
                if (wait := self._fill_wait_s(time.perf_counter())) > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wait_full(), wait)
                await loop.run_in_executor(self.executor, self._drain, loop)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the model's thread: take a batch, run it, post its answers to the event loop,
        and go on while texts wait (or until a batch should wait to fill, `max_latency_ms`).
        Futures are only ever completed on the loop (`_deliver`, `_expire`)."""
        while True:
            with self._lock:
                now = time.perf_counter()
                self.queue, expired = split_expired(self.queue, now)
                batch: list[Pending] = []
                if self.queue and not self._fill_wait_s(now):
                    batch, self.queue = take_batch(
                        self.queue,
                        self.max_batch_size,
                        self.max_batch_tokens,
                        self.max_padding_ratio,
                    )
                if batch:
                    started = self._running_since = time.perf_counter()
                    self.running = len(batch)
                    self._running_units = units = sum(p.units for p in batch)
            if expired:
                _post(loop, self._expire, expired)
            if not batch:
                return
            report = None
            try:
                rows = self.run_batch([p.text for p in batch])
                outcome: list[tuple[Pending, Any]] = list(zip(batch, rows, strict=True))
                report = BatchReport.of(batch, started, time.perf_counter())
                self._learn(report, units)
            except Exception as exc:
                outcome = self._one_by_one(batch, exc)
            finally:
                self.running = 0
            _post(loop, self._deliver, outcome, report)

    def _fill_wait_s(self, now: float) -> float:
        """How much longer the oldest text may wait for a fuller batch under
        `max_latency_ms` (0: run what there is now, as when the queue fills a batch)."""
        if not self.max_latency_s or len(self.queue) >= self.max_batch_size:
            return 0.0
        return max(0.0, self.queue[0].enqueued + self.max_latency_s - now)

    def _deliver(self, outcome: list[tuple[Pending, Any]], report: BatchReport | None) -> None:
        """On the loop: answer a batch's requests, then record its metrics (after the
        waiting requests' tasks were scheduled, so the metrics do not delay their answers)."""
        for pending, row in outcome:
            if isinstance(row, Exception):
                _fail(pending, row)
            elif not pending.future.done():
                pending.future.set_result(row)
        if report is not None:
            asyncio.get_running_loop().call_soon(self.on_batch, report)

    def _expire(self, expired: list[tuple[Pending, float]]) -> None:
        for pending, waited in expired:
            if pending.future.done():
                continue
            self.on_reject("expired")
            pending.future.set_exception(
                DeadlineExceeded(
                    f"model {self.name!r}: the deadline passed while this text waited "
                    f"{waited * 1000:.0f} ms in the queue"
                )
            )

    def _one_by_one(self, batch: list[Pending], error: Exception) -> list[tuple[Pending, Any]]:
        """A batch failed: run its texts alone, so that only the request whose text the model
        cannot process fails (422), not its neighbours."""
        if len(batch) == 1:
            return [(batch[0], error)]
        outcome: list[tuple[Pending, Any]] = []
        for pending in batch:
            if pending.future.done():
                continue
            try:
                (row,) = self.run_batch([pending.text])
            except Exception as exc:
                outcome.append((pending, exc))
            else:
                outcome.append((pending, row))
        return outcome

    async def _wait_full(self) -> None:
        while len(self.queue) < self.max_batch_size:
            self._arrival.clear()
            await self._arrival.wait()


def _client_error(error: Exception) -> PredictorError:
    """What a request whose text the model failed on is answered: the error itself when it
    is already one of ours, else 422 with its first line."""
    if isinstance(error, PredictorError):
        return error
    return Unprocessable(f"the model could not process this text: {error}".splitlines()[0])


def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """Run `callback(*args)` on the loop, from the model's thread (nothing to answer once the
    loop is closed: its requests are gone with it)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _fail(pending: Pending, error: Exception) -> None:
    if not pending.future.done():
        pending.future.set_exception(_client_error(error))
