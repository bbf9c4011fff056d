"""Where in-process waiters and steps live, by conversation key: a replaceable
`MetaStore` (the seed's root store). It knows nothing of what it holds (see
`aiostep.pending`), so everything that routes updates can name it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from typing import Any

import cachebox

__all__ = ["MetaStore", "change_root_store", "root_store"]


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
