"""In-process storage on a cachebox cache: fast, and gone when the process ends."""

from __future__ import annotations

import copy
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import cachebox

from aiostep.clock import get_clock
from aiostep.storage.base import (
    MAX_RECORD_BYTES,
    UNSET,
    BaseStorage,
    Claim,
    ClaimStatus,
    ExpiryT,
    Patch,
    StateContext,
    StateT,
    StorageKey,
    _key,
    _Unset,
    apply_patch,
    check_owner,
    check_patch,
    check_record_size,
    claim_alive,
    drop_step,
    mark_claimed,
    new_owner,
)

__all__ = ["AsyncMemoryStateStorage", "MemoryStateStorage"]

T = TypeVar("T")


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the memory primitives don't) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("memory storage operation suspended; this is a bug in aiostep")


class AsyncMemoryStateStorage(BaseStorage):
    """The async view of a memory storage: what [`Listen`][aiostep.Listen] and wizards use.

    Records live in ``cache`` (any cachebox cache, e.g. ``TTLCache``/``LRUCache``; default
    unbounded) as ``(record, expires_at)``; data is JSON-checked and copied on the way in and
    out, so code that works here behaves the same on File and Redis. ``max_record_bytes``
    limits a record's size (see [`BaseStorage`][aiostep.BaseStorage]).
    """

    def __init__(
        self,
        cache: Any = None,
        ex: ExpiryT = None,
        *,
        max_record_bytes: int | None = MAX_RECORD_BYTES,
    ) -> None:
        super().__init__(ex, max_record_bytes=max_record_bytes)
        self.cache: Any = cache if cache is not None else cachebox.Cache(0)

    def _get(self, key: str) -> StateContext | None:
        entry = self.cache.get(key)
        if entry is None:
            return None
        record, expires_at = entry
        if expires_at is not None and expires_at <= get_clock().now():
            self.cache.pop(key, None)
            return None
        return record  # type: ignore[no-any-return]

    def _put(self, key: str, record: StateContext | None, ex: float | None) -> None:
        if record is None:
            self.cache.pop(key, None)
            return
        expires_at = None if ex is None else get_clock().now() + ex
        if ex is None:
            old = self.cache.get(key)
            expires_at = old[1] if old is not None else None
        self.cache[key] = (record, expires_at)

    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key`` (a copy), or ``None``."""
        record = self._get(_key(key))
        return None if record is None else copy.deepcopy(record)

    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Apply ``patch`` at ``key``; return the record as it was."""
        check_patch(patch)
        k = _key(key)
        before = self._get(k)
        check_owner(k, before, patch)
        new = apply_patch(before, patch)
        if before is not None:
            check_record_size(new, patch, k, self.max_record_bytes)
        self._put(k, new, self._ex(ex))
        return before  # read-only to callers (see BaseStorage.write)

    async def _remove(self, key: StorageKey) -> StateContext | None:
        """Delete the record at ``key`` and return it."""
        k = _key(key)
        before = self._get(k)
        self.cache.pop(k, None)
        return before

    async def claim(
        self,
        key: StorageKey,
        *,
        now: float,
        kind: str,
        is_command: bool,
        callback_data: str | None = None,
        lease: float | None = None,  # one process: a claim lives while this process does
        owner: str | None = None,
        update_id: int | None = None,
        window: float = 0.0,  # one process: its ordering gate keeps arrival order
        turn: bool = False,  # one process: no turn across workers
    ) -> Claim:
        """Claim the pending step at ``key`` for an update (see `decide_claim`)."""
        k = _key(key)
        before = self._get(k)
        if before is None or before.callback is None:
            return Claim(ClaimStatus.NONE, copy.deepcopy(before))
        owner = owner or new_owner()
        status, after = self._decide_here(
            before,
            now=now,
            kind=kind,
            is_command=is_command,
            callback_data=callback_data,
            owner=owner,
            update_id=update_id,
        )
        if after is not UNSET:
            self._put(k, after, None)
        return Claim(status, copy.deepcopy(before), owner)

    async def _claim_token(
        self,
        key: StorageKey,
        token: str,
        lease: float | None,
        owner: str | None,
        update_id: int | None,
    ) -> StateContext | None:
        """Claim (or, without ``owner``, remove) the pending step if it is still ``token``."""
        k = _key(key)
        before = self._get(k)
        if before is None or before.callback is None or before.token != token:
            return None
        if claim_alive(before, get_clock().now(), self._owners):
            return None
        if owner is None:
            self._put(k, drop_step(before), None)
        else:
            self._put(k, mark_claimed(before, owner, None, update_id), None)
        return copy.deepcopy(before)


class MemoryStateStorage:
    """In-memory storage with the seed's plain (non-awaited) calls.

    Example:
        ```python
        storage = MemoryStateStorage(TTLCache(1000, 86400))
        storage.set_state(user_id=12345, state="awaiting_input")
        print(storage.get_state(user_id=12345).current_state)
        ```

    Give it to [`Listen`][aiostep.Listen] or a wizard as is: they use its async view ``.aio``.
    Use it for development, tests and single-process bots whose conversations may be lost on a
    restart; use [`FileStateStorage`][aiostep.FileStateStorage] or
    [`RedisStateStorage`][aiostep.storage.RedisStateStorage] when they must survive one.
    """

    persistent = False

    def __init__(
        self,
        cache: Any = None,
        ex: ExpiryT = None,
        *,
        max_record_bytes: int | None = MAX_RECORD_BYTES,
    ) -> None:
        self.aio = AsyncMemoryStateStorage(cache, ex, max_record_bytes=max_record_bytes)

    @property
    def cache(self) -> Any:
        """The cachebox cache holding the records."""
        return self.aio.cache

    def set_state(
        self,
        user_id: StorageKey,
        state: StateT,
        callback: Any = None,
        chat_id: int | str | None = None,
        *,
        ex: ExpiryT | _Unset = UNSET,
    ) -> None:
        """Set the state (an ``Enum`` is stored by ``.name``), keeping data."""
        _run_sync(self.aio.set_state(user_id, state, callback, chat_id, ex=ex))

    def get_state(self, user_id: StorageKey, default: Any = None) -> StateContext | Any:
        """The record at ``user_id``, or ``default``."""
        return _run_sync(self.aio.get_state(user_id, default))

    def delete_state(self, user_id: StorageKey, default: Any = None) -> StateContext | Any:
        """Delete the record at ``user_id`` and return it, or ``default``."""
        return _run_sync(self.aio.delete_state(user_id, default))

    def set_data(
        self, user_id: StorageKey, data: Mapping[str, Any], *, ex: ExpiryT | _Unset = UNSET
    ) -> None:
        """Replace the data at ``user_id``; ``TypeError`` for non-JSON data."""
        _run_sync(self.aio.set_data(user_id, data, ex=ex))

    def get_data(self, user_id: StorageKey) -> dict[str, Any]:
        """A copy of the data at ``user_id`` (``{}`` when none)."""
        return _run_sync(self.aio.get_data(user_id))

    def update_data(
        self,
        user_id: StorageKey,
        data: Mapping[str, Any] | None = None,
        *,
        ex: ExpiryT | _Unset = UNSET,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Merge into the data at ``user_id``; return the merged data."""
        return _run_sync(self.aio.update_data(user_id, data, ex=ex, **kwargs))

    def clear_data(self, user_id: StorageKey) -> None:
        """Remove all data at ``user_id``."""
        _run_sync(self.aio.clear_data(user_id))

    def delete_data(self, user_id: StorageKey) -> dict[str, Any]:
        """Remove all data at ``user_id`` and return it."""
        return _run_sync(self.aio.delete_data(user_id))
