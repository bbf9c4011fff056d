"""In-process storage on a cachebox cache: fast, and gone when the process ends."""

from __future__ import annotations

import itertools
import json
import sys
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import fields
from typing import Any, TypeVar

import cachebox

from aiostep.clock import get_clock
from aiostep.exceptions import RecordTooLargeError
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
    _to_json,
    _unencodable,
    _Unset,
    check_owner,
    check_patch,
    claim_alive,
    decide_claim,
    new_owner,
    owner_prefix,
)

__all__ = ["AsyncMemoryStateStorage", "MemoryStateStorage"]

T = TypeVar("T")

# the C scanner itself: what json.loads runs after skipping whitespace that our compact text
# never has (measured: 2.8 µs against 6.2 µs for a wizard's 120-character kwargs)
_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# Compact JSON never holds a raw control character (the encoder escapes them inside strings),
# so these two can frame it: NL parts a record's data from its kwargs, US parts the fields of
# a packed record.
_NL = "\n"
_US = "\x1f"
#: at most this many (state, step, accepts, on_timeout) combinations are shared by reference;
#: beyond them (names made per user?) a record is kept unpacked, which is only larger
_MAX_SHAPES = 4096
_new_object = object.__new__


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the memory primitives don't) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("memory storage operation suspended; this is a bug in aiostep")


def _encode(value: dict[str, Any], where: str) -> str:
    """``value`` (passed by `check_patch`) as compact JSON text, ``""`` when empty."""
    if not value:
        return ""
    try:
        return _to_json(value)
    except (TypeError, ValueError, RecursionError) as exc:  # an int too long to write
        _unencodable(value, where, exc)


def _utf8(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _body(data: str, kwargs: str) -> str | None:
    """The one text a record keeps for its data and kwargs (``None``: both empty)."""
    return f"{data}{_NL}{kwargs}" if data or kwargs else None


def _data_of(body: str | None) -> dict[str, Any]:
    if body is None or body[0] == _NL:
        return {}
    return _scan(body, 0)[0]  # type: ignore[no-any-return]  # stops at the NL


def _kwargs_of(body: str | None) -> dict[str, Any]:
    if body is None:
        return {}
    at = body.find(_NL) + 1
    return {} if at == len(body) else _scan(body, at)[0]


def _data_text(body: str | None) -> str:
    return "" if body is None else body[: body.find(_NL)]


def _kwargs_text(body: str | None) -> str:
    return "" if body is None else body[body.find(_NL) + 1 :]


class _Row:
    """One stored record, unpacked: ``body`` holds its data and kwargs as one compact JSON
    text (``data NL kwargs``, either side empty when empty; ``None`` when both are).

    JSON text is the copy: what a caller is handed is parsed from it (a fresh object, as File
    and Redis hand out), and what a patch brings is encoded into it, so no deep copy is made
    either way. A row is never changed once stored; a write stores a new one. A paused
    conversation is stored packed instead (see `AsyncMemoryStateStorage._pack`).
    """

    __slots__ = (
        "accepts",
        "body",
        "busy",
        "callback",
        "chat_id",
        "claim",
        "current_state",
        "deadline",
        "expires_at",
        "inflight",
        "on_timeout",
        "seq",
        "token",
    )

    current_state: str | None
    callback: str | None
    chat_id: int | str | None
    body: str | None
    deadline: float | None
    on_timeout: str | None
    token: str | None
    accepts: str | None
    busy: float | None
    claim: str | None
    seq: int | None
    inflight: int | None
    expires_at: float | None

    def copy(self) -> _Row:
        """A new row with the same values (shallow: they are all immutable)."""
        new = _Row.__new__(_Row)
        new.current_state, new.callback, new.chat_id = (
            self.current_state,
            self.callback,
            self.chat_id,
        )
        new.body, new.deadline = self.body, self.deadline
        new.on_timeout, new.token, new.accepts = self.on_timeout, self.token, self.accepts
        new.busy, new.claim, new.seq = self.busy, self.claim, self.seq
        new.inflight, new.expires_at = self.inflight, self.expires_at
        return new

    def record(self) -> StateContext:
        """The record as a fresh `StateContext` (its data and kwargs parsed anew)."""
        body = self.body
        if body is None:
            data: dict[str, Any] = {}
            kwargs: dict[str, Any] = {}
        else:
            if body[0] == _NL:
                data, at = {}, 1
            else:
                data, at = _scan(body, 0)
                at += 1
            kwargs = {} if at == len(body) else _scan(body, at)[0]
        return StateContext(
            self.current_state,
            self.callback,
            self.chat_id,
            data,
            kwargs,
            self.deadline,
            self.on_timeout,
            self.token,
            self.accepts,
            self.busy,
            self.claim,
            self.seq,
            self.inflight,
        )


class _Replaced(StateContext):
    """The record a write replaced, as `BaseStorage.write` returns it: its data and kwargs
    are parsed when first read (most writers read neither, ``update_data`` reads the data)."""

    @classmethod
    def of(cls, row: _Row) -> _Replaced:
        """The record ``row`` holds (its data and kwargs not parsed yet)."""
        self = cls.__new__(cls)
        self.__dict__ = {  # one dict built in place: a write makes one of these every time
            "current_state": row.current_state,
            "callback": row.callback,
            "chat_id": row.chat_id,
            "deadline": row.deadline,
            "on_timeout": row.on_timeout,
            "token": row.token,
            "accepts": row.accepts,
            "busy": row.busy,
            "claim": row.claim,
            "seq": row.seq,
            "inflight": row.inflight,
            "_body": row.body,
        }
        return self

    def __getattr__(self, name: str) -> Any:
        # called only for what the instance lacks: data and kwargs until first read
        if name == "data" or name == "kwargs":
            body = vars(self)["_body"]
            value = _data_of(body) if name == "data" else _kwargs_of(body)
            setattr(self, name, value)
            return value
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateContext):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(StateContext))

    __hash__ = None  # type: ignore[assignment]  # as StateContext's

    def __repr__(self) -> str:
        items = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(StateContext))
        return f"StateContext({items})"


def _empty_row() -> _Row:
    row = _Row.__new__(_Row)
    row.current_state = row.callback = row.chat_id = row.body = None
    row.deadline = row.on_timeout = row.token = row.accepts = row.busy = None
    row.claim = row.seq = row.inflight = row.expires_at = None
    return row


def _apply(row: _Row | None, patch: Patch, data: str | None, kwargs: str | None) -> _Row | None:
    """``row`` with ``patch`` applied (``None`` when it ends up empty): what `apply_patch`
    does to a `StateContext`, on the compact form. ``data`` and ``kwargs`` are the patch's
    own as compact JSON (``None``: it leaves them), encoded once by the caller."""
    new = row.copy() if row is not None else _empty_row()
    if patch.owner is not UNSET:
        # the claim's outcome: the claim ends, and its update counts as applied
        if new.inflight is not None:
            new.seq = max(new.seq or 0, new.inflight)
        new.claim = new.busy = new.inflight = None
    if patch.state is not UNSET:
        new.current_state = patch.state
    clears_step = False
    if patch.callback is not UNSET:
        new.callback = patch.callback
        if patch.callback is None:
            clears_step = True
            new.deadline = new.on_timeout = new.token = new.accepts = None
            new.claim = new.busy = new.inflight = None
    if patch.deadline is not UNSET:
        new.deadline = patch.deadline
    if patch.on_timeout is not UNSET:
        new.on_timeout = patch.on_timeout
    if patch.token is not UNSET:
        new.token = patch.token
    if patch.accepts is not UNSET:
        new.accepts = patch.accepts
    chat_id = patch.chat_id
    # keep the stored object when equal: it is often the one the key's first update made
    if chat_id is not UNSET and (chat_id != new.chat_id or type(chat_id) is not type(new.chat_id)):
        new.chat_id = chat_id
    if kwargs is None and clears_step:
        kwargs = ""
    update = patch.data_update
    if update is not UNSET and update:
        merged = _data_of(new.body) if data is None else (_scan(data, 0)[0] if data else {})
        merged.update(update)
        data = _to_json(merged)
    if data is not None or kwargs is not None:
        body = new.body
        new.body = _body(
            _data_text(body) if data is None else data,
            _kwargs_text(body) if kwargs is None else kwargs,
        )
    if new.current_state is None and new.callback is None:
        new.chat_id = None
        if new.body is None or new.body[0] == _NL:  # no data: nothing worth keeping
            return None
    return new


def _check_size(row: _Row, patch: Patch, key: str, limit: int | None) -> None:
    """`check_record_size` on the compact form: the stored text is the compact JSON it
    measures, so nothing is encoded again."""
    if limit is None:
        return
    body = row.body
    if body is None:
        return
    data_given = patch.data_update is UNSET and (patch.data is not UNSET or body[0] == _NL)
    kwargs_given = patch.kwargs is not UNSET or body[-1] == _NL
    if data_given and kwargs_given:
        return
    if patch.data is UNSET and patch.data_update is UNSET and patch.kwargs is UNSET:
        return  # data and kwargs are as they were
    size = _utf8(body) - 1
    if size > limit:
        raise RecordTooLargeError(
            key, size, limit, "its data and kwargs, with this update merged in"
        )


class AsyncMemoryStateStorage(BaseStorage):
    """The async view of a memory storage: what [`Listen`][aiostep.Listen] and wizards use.

    Records live in ``cache`` (any cachebox cache, e.g. ``TTLCache``/``LRUCache``; default
    unbounded), one compact entry per key: data and kwargs are JSON-checked and kept as JSON
    text, so code that works here behaves the same on File and Redis (what it is handed is a
    fresh copy; what it writes is copied in). A paused conversation is one string (about 130
    bytes for a wizard's, besides its key), whose step names are codes of this storage: give
    each storage a cache of its own. ``max_record_bytes`` limits a record's size (see
    [`BaseStorage`][aiostep.BaseStorage]).
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
        # what packs a record: the names a paused conversation shares with every other one
        # at the same step, by a short code; and the token prefix of this process (one forked
        # off later makes tokens that do not start with it: those rows stay unpacked)
        self._shapes: dict[str, tuple[str | None, str | None, str | None, str | None]] = {}
        self._shape_codes: dict[tuple[str | None, str | None, str | None, str | None], str] = {}
        self._next_code = itertools.count()
        self._prefix = owner_prefix()

    def _pack(self, key: str, row: _Row) -> str | _Row:
        """What the cache keeps for ``row``: a paused conversation (no claim on it) as one
        string, ``code US token US seq US chat US deadline US expires_at US body``, which
        spares the row object, its token str and its int objects (measured: 134 bytes
        instead of 315 for a paused wizard); anything else (a claim running, a token or chat
        id of another form, more step names than `_MAX_SHAPES`) as the row itself.

        ``code`` names the (state, step, accepts, on_timeout) names shared by every record at
        that step; ``token`` is the part after this process's prefix; ``chat`` is ``=`` when
        it is the key's own chat id. Neither JSON text nor any of these fields can hold US or
        NL (the encoder escapes control characters; a token holding US stays unpacked)."""
        if row.claim is not None or row.busy is not None or row.inflight is not None:
            return row
        token = row.token
        if token is None:
            tok = ""
        else:
            prefix = self._prefix
            if not token.startswith(prefix) or len(token) == len(prefix) or _US in token:
                return row
            tok = token[len(prefix) :]
        chat_id = row.chat_id
        if chat_id is None:
            chat = ""
        elif type(chat_id) is int:
            chat = str(chat_id)
            size = len(chat)
            if key.startswith(chat) and (len(key) == size or key[size] == ":"):
                chat = "="  # the key's own chat: read back from the key
        else:
            return row
        seq, deadline, expires_at = row.seq, row.deadline, row.expires_at
        if seq is not None and type(seq) is not int:
            return row
        if deadline is None and expires_at is None:
            times = "\x1f"  # the common case: no timeout, no expiry
        elif (deadline is None or type(deadline) is float) and (
            expires_at is None or type(expires_at) is float
        ):
            times = (
                f"{'' if deadline is None else repr(deadline)}\x1f"
                f"{'' if expires_at is None else repr(expires_at)}"
            )
        else:
            return row
        shape = (row.current_state, row.callback, row.accepts, row.on_timeout)
        code = self._shape_codes.get(shape)
        if code is None:
            if len(self._shapes) >= _MAX_SHAPES:
                return row
            shape = tuple(None if n is None else sys.intern(n) for n in shape)  # type: ignore[assignment]
            # safe against a thread packing the same shape meanwhile (the seed's sync calls
            # may come from handlers aiogram runs in threads): a code is readable before any
            # row names it, and one shape keeps one code
            new_code = str(next(self._next_code))
            self._shapes[new_code] = shape
            code = self._shape_codes.setdefault(shape, new_code)
        body = row.body
        # US written out: the f-string spares six global lookups
        return (
            f"{code}\x1f{tok}\x1f{'' if seq is None else seq}\x1f{chat}\x1f{times}"
            f"\x1f{'' if body is None else body}"
        )

    def holds_nothing(self, key: str) -> bool:
        """Whether no record is kept at ``key`` (one cache lookup, no await)."""
        return self.cache.get(key) is None

    def _get(self, key: str, kept: Any = None) -> _Row | None:
        """The live row at ``key``, a string unpacked into a fresh row (the caller's to
        change); ``kept``: what the caller has just looked up there."""
        row = self.cache.get(key) if kept is None else kept
        if type(row) is str:
            # what _pack packed, unpacked here: every claim of a paused conversation does it
            code, tok, seq, chat, deadline, expires_at, body = row.split(_US, 6)
            row = _new_object(_Row)
            row.current_state, row.callback, row.accepts, row.on_timeout = self._shapes[code]
            row.token = self._prefix + tok if tok else None
            row.seq = int(seq) if seq else None
            if not chat:
                row.chat_id = None
            else:
                row.chat_id = int(key.partition(":")[0] if chat == "=" else chat)
            row.body = body or None
            row.busy = row.claim = row.inflight = None
            if not deadline and not expires_at:
                row.deadline = row.expires_at = None
                return row
            row.deadline = float(deadline) if deadline else None
            row.expires_at = float(expires_at) if expires_at else None
        elif row is None:
            return None
        expires_at = row.expires_at
        if expires_at is not None and expires_at <= get_clock().now():
            self.cache.pop(key, None)
            return None
        return row  # type: ignore[no-any-return]

    def _put(self, key: str, row: _Row | None, ex: float | None, old: _Row | None) -> None:
        """Store ``row`` at ``key`` (``None``: delete); it expires in ``ex`` s, or when
        ``old`` (what ``key`` held) did."""
        if row is None:
            self.cache.pop(key, None)
            return
        if ex is not None:
            row.expires_at = get_clock().now() + ex
        else:
            row.expires_at = old.expires_at if old is not None else None
        self.cache[key] = self._pack(key, row)

    def _refuse_oversize(self, key: StorageKey, patch: Patch) -> None:
        """Nothing here: `_write` measures the JSON text it encodes (once) for the record."""

    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key`` (a copy), or ``None``."""
        row = self._get(_key(key))
        return None if row is None else row.record()

    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Apply ``patch`` at ``key``; return the record as it was."""
        before = self._write_now(key, patch, ex)
        return None if before is None else _Replaced.of(before)

    async def apply(self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET) -> None:
        """`BaseStorage.apply`, written in place: every step's outcome comes here, so no
        `_committed`/`_write_blind`/`_write` coroutines and no replaced record are made."""
        self._refuse_oversize(key, patch)
        self.generation += 1
        self._write_now(key, patch, ex)
        self._noted(key, patch)

    def _write_now(self, key: StorageKey, patch: Patch, ex: ExpiryT | _Unset) -> _Row | None:
        """Apply ``patch`` at ``key`` (no await: nothing here suspends); return the row it
        replaced."""
        check_patch(patch)
        k = _key(key)
        # encoded once: what is measured is what is stored
        data = kwargs = None
        size = 0
        if patch.data is not UNSET:
            data = _encode(patch.data, "data")
            size = _utf8(data)
        if patch.kwargs is not UNSET:
            kwargs = _encode(patch.kwargs, "kwargs")
            size += _utf8(kwargs)
        if patch.data_update is not UNSET:
            size += _utf8(_encode(patch.data_update, "data"))
        limit = self.max_record_bytes
        if limit is not None and size > limit:
            raise RecordTooLargeError(k, size, limit, "the data and kwargs it writes")
        before = self._get(k)
        check_owner(k, before, patch)  # type: ignore[arg-type]  # reads .claim only
        new = _apply(before, patch, data, kwargs)
        if before is not None and new is not None:
            _check_size(new, patch, k, limit)
        self._put(k, new, self._ex(ex), before)
        return before

    async def _remove(self, key: StorageKey) -> StateContext | None:
        """Delete the record at ``key`` and return it."""
        k = _key(key)
        before = self._get(k)
        self.cache.pop(k, None)
        return None if before is None else before.record()

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
        kept = self.cache.get(k)
        before = self._get(k, kept)
        if before is None:
            return Claim(ClaimStatus.NONE, None)
        if before.callback is None:
            return Claim(ClaimStatus.NONE, before.record())
        owner = owner or new_owner()
        status = decide_claim(
            before,  # type: ignore[arg-type]  # a row has every field the decision reads
            now,
            kind,
            is_command,
            callback_data,
            owner=owner,
            live_owners=self._owners,
            update_id=update_id,
        )
        if status is ClaimStatus.CLAIMED and before.claim != owner:
            record = before.record()
            # a row unpacked from its string is this call's own: marked as it is
            after = before if type(kept) is str else before.copy()
            after.claim, after.busy, after.inflight = owner, None, update_id
            self.cache[k] = after
            assert self._owners is not None  # a memory storage is never shared
            self._owners.add(owner)
            return Claim(status, record, owner)
        if status is ClaimStatus.EXPIRED:
            self._put(k, _apply(before, Patch(callback=None), None, None), None, before)
        return Claim(status, before.record(), owner)

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
        if claim_alive(before, get_clock().now(), self._owners):  # type: ignore[arg-type]
            return None
        if owner is None:
            self._put(k, _apply(before, Patch(callback=None), None, None), None, before)
        else:
            after = before.copy()
            after.claim, after.busy, after.inflight = owner, None, update_id
            self.cache[k] = after
        return before.record()


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
        # aiogram runs a sync handler in a thread: these calls may come from several threads
        # at once, and update_data (read, merge, write) must not lose one's merge to another's
        self._lock = threading.Lock()

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
        with self._lock:
            _run_sync(self.aio.set_state(user_id, state, callback, chat_id, ex=ex))

    def get_state(self, user_id: StorageKey, default: Any = None) -> StateContext | Any:
        """The record at ``user_id``, or ``default``."""
        with self._lock:
            return _run_sync(self.aio.get_state(user_id, default))

    def delete_state(self, user_id: StorageKey, default: Any = None) -> StateContext | Any:
        """Delete the record at ``user_id`` and return it, or ``default``."""
        with self._lock:
            return _run_sync(self.aio.delete_state(user_id, default))

    def set_data(
        self, user_id: StorageKey, data: Mapping[str, Any], *, ex: ExpiryT | _Unset = UNSET
    ) -> None:
        """Replace the data at ``user_id``; ``TypeError`` for non-JSON data."""
        with self._lock:
            _run_sync(self.aio.set_data(user_id, data, ex=ex))

    def get_data(self, user_id: StorageKey) -> dict[str, Any]:
        """A copy of the data at ``user_id`` (``{}`` when none)."""
        with self._lock:
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
        with self._lock:
            return _run_sync(self.aio.update_data(user_id, data, ex=ex, **kwargs))

    def clear_data(self, user_id: StorageKey) -> None:
        """Remove all data at ``user_id``."""
        with self._lock:
            _run_sync(self.aio.clear_data(user_id))

    def delete_data(self, user_id: StorageKey) -> dict[str, Any]:
        """Remove all data at ``user_id`` and return it."""
        with self._lock:
            return _run_sync(self.aio.delete_data(user_id))
