"""What a conversation is waiting for inside this process: a parked ``wait_for`` or an
in-process next step, kept in a replaceable `MetaStore` (the seed's root
store, `aiostep.meta_store`; its names stay importable from here)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiostep.clock import TimerHandle

# the store lived here before it got its own module: code imports it from here
from aiostep.meta_store import MetaStore, change_root_store, root_store
from aiostep.meta_store import _RootStore as _RootStore
from aiostep.storage.base import takes_update

if TYPE_CHECKING:
    from aiostep.context import UpdateContext
    from aiostep.handover import RemoteWaiter

__all__ = ["LocalStep", "MetaStore", "Waiter", "change_root_store", "root_store"]


@dataclass(eq=False, slots=True)
class _Accepting:
    filter: Any
    updates: tuple[str, ...]
    allow_commands: bool

    def takes(self, kind: str, command: bool, callback_data: str | None = None) -> bool:
        """Whether an update of ``kind`` (a command or not) is for this waiter/step at all."""
        if command and not self.allow_commands:
            return False
        updates = self.updates
        if kind in updates:  # the usual answer, with no marker string built
            return True
        return takes_update("," + ",".join(updates) + ",", kind, callback_data)


@dataclass(eq=False, slots=True)
class Waiter(_Accepting):
    """A ``wait_for`` parked on a future."""

    future: asyncio.Future[Any] = field(repr=False)
    #: the update context that gave up the conversation's gate to wait (it gets it back)
    owner: UpdateContext | None = field(default=None, repr=False)
    handed_over: bool = False
    #: its registration in a shared storage, through which other workers hand it the answer
    remote: RemoteWaiter | None = field(default=None, repr=False)
    #: an answer from another worker is being taken: an end meanwhile waits for its outcome
    accepting: bool = False
    deferred: BaseException | None = field(default=None, repr=False)

    def fail(self, exc: BaseException) -> None:
        """End the wait with ``exc`` (once an answer being taken from another worker is not)."""
        if self.accepting:
            self.deferred = exc
            return
        if not self.future.done():
            self.future.set_exception(exc)


@dataclass(eq=False, slots=True)
class LocalStep(_Accepting):
    """An in-process next step: a callable with its arguments."""

    callback: Callable[..., Any] = field(repr=False)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    timer: TimerHandle | None = field(default=None, repr=False)

    def cancel_timer(self) -> None:
        """Stop the timeout timer, if any."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def discard(item: Any, exc: BaseException) -> None:
    """Dispose of a pending item that was removed without being answered."""
    if isinstance(item, Waiter):
        item.fail(exc)
    elif isinstance(item, LocalStep):
        item.cancel_timer()
    elif isinstance(item, asyncio.Future) and not item.done():  # a seed-style custom store
        item.cancel()
