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

__all__ = ["Gates"]


class _Gate:
    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: deque[asyncio.Future[None]] = deque()


class Gates:
    """FIFO turnstiles keyed by conversation; an idle key costs nothing (its gate is dropped)."""

    def __init__(self) -> None:
        self._gates: dict[Hashable, _Gate] = {}

    def __len__(self) -> int:
        return len(self._gates)

    def try_acquire(self, key: Hashable) -> bool:
        """Take ``key``'s turn if nobody holds it (the usual case: no await); ``False``
        when somebody does (then ``await acquire(key)`` queues for it)."""
        if key in self._gates:
            return False
        self._gates[key] = _Gate()
        return True

    async def acquire(self, key: Hashable) -> None:
        """Wait for the turn of ``key``; returns holding it."""
        gate = self._gates.get(key)
        if gate is None:  # a key is in the dict exactly while somebody holds its turn
            self._gates[key] = _Gate()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(key)  # the turn was handed to us as we were cancelled: pass it on
            else:
                # release() may have popped (and skipped) our cancelled future already
                with contextlib.suppress(ValueError):
                    gate.queue.remove(fut)
            raise

    def release(self, key: Hashable) -> None:
        """End the current turn of ``key``: hand it to the next in line, or free it."""
        gate = self._gates.get(key)
        if gate is None:
            return
        while gate.queue:
            fut = gate.queue.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        del self._gates[key]
