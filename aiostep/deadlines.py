"""The in-process index of pending deadlines (Memory and File storages), and the storage key
of a conversation read back into its [`ConversationKey`][aiostep.ConversationKey].

One heap and one dict for the whole storage, whatever the number of conversations: a paused
conversation costs an entry here (about a hundred bytes), never a timer or a task.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from aiostep.keys import ConversationKey

__all__ = ["DeadlineIndex", "parse_storage_key"]


class DeadlineIndex:
    """When each record's pending step is due, earliest first.

    ``note(key, when)`` records a deadline (``None`` forgets it). Superseded heap entries are
    skipped when they come up and swept once they outnumber the live ones, so the heap stays
    within twice the number of pending deadlines. The index is a hint: whoever fires a deadline
    reads the record first, so an entry the record no longer holds fires nothing.
    """

    __slots__ = ("_heap", "on_earlier", "pending")

    def __init__(self) -> None:
        #: key -> when its step is due (read it, never change it)
        self.pending: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        #: called with each deadline noted (the scheduler wakes earlier if it must)
        self.on_earlier: Callable[[float], None] | None = None

    def __len__(self) -> int:
        return len(self.pending)

    def note(self, key: str, when: float | None) -> None:
        """Record that the step at ``key`` is due at ``when`` (``None``: nothing is due)."""
        by_key = self.pending
        if when is None:
            if by_key:
                by_key.pop(key, None)
            return
        if by_key.get(key) == when:
            return
        by_key[key] = when
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(by_key) + 64:
            self._heap = [(w, k) for k, w in by_key.items()]
            heapq.heapify(self._heap)
        if self.on_earlier is not None:
            self.on_earlier(when)

    def earliest(self) -> float | None:
        """The earliest pending deadline, or ``None``."""
        heap, by_key = self._heap, self.pending
        while heap and by_key.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def take_due(self, now: float, limit: int) -> list[str]:
        """Remove and return up to ``limit`` keys due at or before ``now``, earliest first."""
        heap, by_key = self._heap, self.pending
        due: list[str] = []
        while heap and len(due) < limit and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if by_key.get(key) == when:
                del by_key[key]
                due.append(key)
        return due

    def clear(self) -> None:
        """Forget every deadline."""
        self.pending.clear()
        self._heap.clear()


def parse_storage_key(skey: str) -> ConversationKey:
    """The conversation of a storage key made by [`storage_key`][aiostep.keys.storage_key]
    (``"chat:user[:thread][@bot]"``).

    Raises:
        ValueError: ``skey`` is not such a key (a record stored under a key of your own).
    """
    text, _, bot = skey.partition("@")
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        chat_id, user_id = int(parts[0]), int(parts[1])
        thread_id = int(parts[2]) if len(parts) == 3 else None
        bot_id = int(bot) if bot else None
    except ValueError:
        raise ValueError(
            f'storage key {skey!r} is not a conversation\'s key ("chat:user[:thread][@bot]"); '
            "only steps registered for a conversation can have a deadline fired"
        ) from None
    return ConversationKey(chat_id, user_id, thread_id, bot_id)
