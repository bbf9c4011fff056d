"""One update at a time per conversation, in arrival order.

aiogram runs each update as its own task; a `Gates` turnstile per conversation key makes
them take turns (FIFO). Ownership can be handed over: a task parked in ``wait_for`` gives the
gate up while it waits, and the update that answers it hands the gate straight back to it, so
a third, fast message queues behind the resumed handler instead of overtaking it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Hashable
from typing import Any

__all__ = ["Gates"]


# a key held with nobody queued maps to None: taking a free turn (every update's path)
# allocates nothing; the queue is made only when a second update of the key must wait
_FREE: Any = object()


class Gates:
    """FIFO turnstiles keyed by conversation; an idle key costs nothing (its gate is dropped)."""

    def __init__(self) -> None:
        self._gates: dict[Hashable, deque[asyncio.Future[None]] | None] = {}

    def __len__(self) -> int:
        return len(self._gates)

    def try_acquire(self, key: Hashable) -> bool:
        """Take ``key``'s turn if nobody holds it (the usual case: no await); ``False``
        when somebody does (then ``await acquire(key)`` queues for it)."""
        if key in self._gates:
            return False
        self._gates[key] = None
        return True

    async def acquire(self, key: Hashable) -> None:
        """Wait for the turn of ``key``; returns holding it."""
        gates = self._gates
        queue = gates.get(key, _FREE)
        if queue is _FREE:  # a key is in the dict exactly while somebody holds its turn
            gates[key] = None
            return
        if queue is None:
            queue = gates[key] = deque()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(key)  # the turn was handed to us as we were cancelled: pass it on
            else:
                # release() may have popped (and skipped) our cancelled future already
                with contextlib.suppress(ValueError):
                    queue.remove(fut)
            raise

    def release(self, key: Hashable) -> None:
        """End the current turn of ``key``: hand it to the next in line, or free it."""
        gates = self._gates
        queue = gates.get(key, _FREE)
        if queue is _FREE:
            return
        while queue:
            fut = queue.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        del gates[key]
