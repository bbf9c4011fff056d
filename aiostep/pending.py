"""What a conversation is waiting for inside this process: a parked ``wait_for`` or an
in-process next step, kept in a replaceable `MetaStore` (the seed's root
store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cachebox

from aiostep.clock import TimerHandle
from aiostep.storage.base import takes_update

if TYPE_CHECKING:
    from aiostep.context import UpdateContext
    from aiostep.handover import RemoteWaiter

__all__ = ["LocalStep", "MetaStore", "Waiter", "change_root_store", "root_store"]


class MetaStore:
    """Where in-process waiters and steps live, by conversation key. Subclass to replace it."""

    async def set_item(self, key: Hashable, value: Any) -> None:
        """Store ``value`` at ``key`` (replacing what was there)."""
        raise NotImplementedError

    async def get_item(self, key: Hashable) -> Any:
        """The value at ``key``, or ``None``."""
        raise NotImplementedError

    async def pop_item(self, key: Hashable) -> Any:
        """Remove and return the value at ``key``; raise ``KeyError`` if there is none."""
        raise NotImplementedError

    def clear(self) -> AsyncIterator[Any]:
        """Remove every value, yielding each."""
        raise NotImplementedError


class _RootStore(MetaStore):
    """The default store: an unbounded cachebox cache."""

    def __init__(self) -> None:
        self.cache: cachebox.Cache[Hashable, Any] = cachebox.Cache(0)

    async def set_item(self, key: Hashable, value: Any) -> None:
        self.cache[key] = value

    async def get_item(self, key: Hashable) -> Any:
        return self.cache.get(key)

    async def pop_item(self, key: Hashable) -> Any:
        return self.cache.pop(key)

    async def clear(self) -> AsyncIterator[Any]:
        for key in list(self.cache.keys()):
            value = self.cache.pop(key, None)
            if value is not None:
                yield value


_root: MetaStore = _RootStore()


def root_store() -> MetaStore:
    """The store used when none is given."""
    return _root


def change_root_store(store: MetaStore) -> None:
    """Use ``store`` as the default in-process store from now on."""
    global _root
    if not isinstance(store, MetaStore):
        raise TypeError(f"store must be a MetaStore, got {type(store).__name__}")
    _root = store


@dataclass(eq=False)
class _Accepting:
    filter: Any
    updates: tuple[str, ...]
    allow_commands: bool

    def takes(self, kind: str, command: bool, callback_data: str | None = None) -> bool:
        """Whether an update of ``kind`` (a command or not) is for this waiter/step at all."""
        if command and not self.allow_commands:
            return False
        return takes_update("," + ",".join(self.updates) + ",", kind, callback_data)


@dataclass(eq=False)
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


@dataclass(eq=False)
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
