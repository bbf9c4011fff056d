"""The seam for ``wait_for`` across worker processes: a storage shared by several workers
(Redis) may carry a [`WaiterHandover`][aiostep.handover.WaiterHandover], through which a worker
registers the ``wait_for`` it parks, and another worker that receives the answer hands the
update over to it. Storages of one process have none: their waiters stay in-process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiogram.types import Update

__all__ = ["RemoteWaiter", "WaiterHandover"]


class RemoteWaiter(Protocol):
    """A parked ``wait_for`` as registered in the shared storage."""

    #: True once the registration is gone from the storage (taken, handed over or released)
    done: bool

    async def take(self) -> bool:
        """Claim the waiter for an update this worker received itself; ``False`` when another
        worker is handing it an update right now (then that update is the answer)."""
        ...

    async def release(self) -> None:
        """Remove the registration: the wait ended (answered, timed out or cancelled)."""
        ...


class WaiterHandover(Protocol):
    """How workers sharing a storage pass a ``wait_for`` answer to the worker that waits."""

    async def park(self, key: str, waiter: Any, bot: Any) -> RemoteWaiter:
        """Register ``waiter`` (an `aiostep.pending.Waiter` parked in this process for storage
        key ``key``, answering with events bound to ``bot``) so that other workers hand it the
        answer."""
        ...

    async def offer(self, key: str, waiter: str, update: Update) -> bool:
        """Hand ``update`` to the remote waiter ``waiter`` (as the claim reported it); ``True``
        when that waiter took it, ``False`` when it is gone or declined (route it here)."""
        ...
