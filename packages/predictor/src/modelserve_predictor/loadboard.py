"""Keep-alive clients spread across the workers by load, not by which worker accepted them.

Every worker accepts from one shared listening socket, and a client keeps its connections
open, so a worker's share of the requests is its share of the client's busy connections.
Clients reuse their most recent connection first (Locust's and urllib3's pools do), so at
moderate load one worker got 63% of the requests while the other idled (roberta-base, 2
workers, 48 req/s): the busy one refused at 40 req/s with half the machine unused. Triton
and Ray Serve queue in one process; BentoML's workers cannot share a queue.

So each worker publishes its expected wait (the wait ahead of a new text, summed over its
models) in a small memory-mapped board in the server's control folder, and a worker that is
clearly busier than its least busy sibling answers the request in hand with
`Connection: close`. The client opens a new connection for its next request, which the
kernel gives to whichever worker accepts first; connections drain off busy workers until
the load evens out. Nothing is refused or proxied: the request in hand is answered as usual,
and a new connection costs ~0.2 ms against the tens of milliseconds of wait it avoids."""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path

SLOT = struct.Struct("d")
NOT_SERVING = float("inf")  # a worker loading or stopping takes no connection: none is sent it
PUBLISH_EVERY_S = 0.01  # an idle worker's zero must not go stale while it gets no request
# A worker hands a connection off when its wait exceeds twice its least busy sibling's plus
# this: an idle sibling takes the connection as soon as a text or two wait here, and under
# even overload (every wait large, none twice another) connections stay where they are.
HANDOFF_MARGIN_S = 0.01


def should_hand_off(own_s: float, least_other_s: float) -> bool:
    return own_s > 2 * least_other_s + HANDOFF_MARGIN_S


class LoadBoard:
    """One float64 slot per worker (1-based `worker`) in a file every worker maps."""

    def __init__(self, path: Path, worker: int, workers: int) -> None:
        self.worker, self.workers = worker, workers
        size = SLOT.size * workers
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:  # every worker extends it to the same size
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._others = [i for i in range(workers) if i != worker - 1]
        self._task: asyncio.TimerHandle | None = None
        self.publish(NOT_SERVING)  # until keep_published() starts, once its models are warm

    def publish(self, wait_s: float) -> None:
        SLOT.pack_into(self._map, SLOT.size * (self.worker - 1), wait_s)

    def least_other(self) -> float:
        return min(SLOT.unpack_from(self._map, SLOT.size * i)[0] for i in self._others)

    def hand_off(self, wait_s: float) -> bool:
        """Publish this worker's wait; whether the request in hand should close its
        connection after the answer."""
        self.publish(wait_s)
        return should_hand_off(wait_s, self.least_other())

    def keep_published(self, measure: Callable[[], float]) -> None:
        """Publish `measure()` every PUBLISH_EVERY_S on the running loop until close()."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.publish(measure())
            self._task = loop.call_later(PUBLISH_EVERY_S, tick)

        tick()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.publish(NOT_SERVING)  # stopping: it accepts no new connection
