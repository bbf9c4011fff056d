"""The storage record ([`StateContext`][aiostep.StateContext]), the async storage interface, and
shared record logic.

Every backend stores one record per key: the current state, a pending step (its registered
name, JSON kwargs, deadline, ...), the chat id and the user's JSON data. Backends implement five
primitives (``read``, ``write``, ``remove``, ``claim``, ``claim_token``); the seed API
(``set_state``, ``get_data``, ...) is built on them here, once.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import itertools
import json
import json.encoder
import math
import os
import secrets
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias

from aiostep.deadlines import DeadlineIndex
from aiostep.exceptions import RecordTooLargeError

if TYPE_CHECKING:
    from aiostep.handover import WaiterHandover

__all__ = [
    "MAX_RECORD_BYTES",
    "UNSET",
    "BaseStorage",
    "Claim",
    "ClaimStatus",
    "ExpiryT",
    "Patch",
    "StateContext",
    "StateT",
    "StorageKey",
    "apply_patch",
    "as_async",
    "check_patch",
    "check_record_size",
    "decide_claim",
    "ensure_json",
    "new_owner",
    "patch_size",
    "state_name",
]

StorageKey: TypeAlias = int | str
StateT: TypeAlias = str | enum.Enum | None
ExpiryT: TypeAlias = int | float | timedelta | None


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: Marks a `Patch` field that the write leaves as it is.
UNSET: Final = _Unset.UNSET


@dataclass
class StateContext:
    """One conversation's (or user's) stored record.

    Attributes:
        current_state: the state's name (an ``Enum`` state is stored by ``.name``), or ``None``.
        callback: the registered name of the pending next step, or ``None``.
        chat_id: the chat the state/step belongs to.
        data: the user's JSON data.
        kwargs: JSON keyword arguments the pending step will be called with.
        deadline: epoch seconds after which the pending step has expired, or ``None``.
        on_timeout: registered name of the function to call when the step expires.
        token: identifies one registration of the pending step (guards against double claims).
        accepts: which updates the pending step takes (``",message,command,filter,"``).
        busy: on a shared storage, epoch seconds until which the claim's worker is known to be
            alive (its lease; renewed while a long step runs). Other workers wait for the step's
            outcome meanwhile; once it has passed, the claim is stale and the step is offered
            again.
        claim: the owner token of the update running the pending step right now. A claim
            marks the step taken but keeps it (and everything it needs) in the record, so a
            process that dies mid-step loses nothing: the step is offered again.
        seq: the ``update_id`` of the last update whose step outcome was written: an update
            with an id at or below it was already applied (a redelivery) or arrived too late.
        inflight: the ``update_id`` of the update the current claim runs.
    """

    current_state: str | None = None
    callback: str | None = None
    chat_id: int | str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    on_timeout: str | None = None
    token: str | None = None
    accepts: str | None = None
    busy: float | None = None
    claim: str | None = None
    seq: int | None = None
    inflight: int | None = None

    def is_empty(self) -> bool:
        """True when the record holds nothing worth keeping."""
        return self.current_state is None and self.callback is None and not self.data

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict, without fields that hold their default."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == {}:
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StateContext:
        """Build a record from [`to_json`][aiostep.StateContext.to_json] output (unknown fields are
        ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


_STEP_FIELDS = ("callback", "kwargs", "deadline", "on_timeout", "token", "accepts")
#: what a claim adds to a record; cleared by the claim's outcome
_CLAIM_FIELDS = ("claim", "busy", "inflight")


@dataclass(slots=True)
class Patch:
    """A change to one record, applied atomically by
    [`BaseStorage.write`][aiostep.BaseStorage.write].

    Fields left ``UNSET`` are not touched. ``callback=None`` clears the whole pending step
    (kwargs, deadline, ...). ``data`` replaces the data; ``data_update`` merges into it.
    Clearing both state and step also forgets ``chat_id``; an empty record is deleted.
    """

    # keep this order: `aiostep.steps._persisted_patch` builds a step's patch by position
    state: str | _Unset | None = UNSET
    callback: str | _Unset | None = UNSET
    kwargs: dict[str, Any] | _Unset = UNSET
    deadline: float | _Unset | None = UNSET
    on_timeout: str | _Unset | None = UNSET
    token: str | _Unset | None = UNSET
    accepts: str | _Unset | None = UNSET
    chat_id: int | str | _Unset | None = UNSET
    data: dict[str, Any] | _Unset = UNSET
    data_update: dict[str, Any] | _Unset = UNSET
    #: the outcome of claim ``owner``: applied only while the record's claim is still
    #: ``owner`` (else `ClaimLostError`), and it ends the claim
    owner: str | _Unset = UNSET


class ClaimStatus(enum.IntEnum):
    """What [`BaseStorage.claim`][aiostep.BaseStorage.claim] found for an update."""

    NONE = 0  #: no pending step
    CLAIMED = 1  #: the step is the caller's to run (marked claimed; it stays in the record)
    EXPIRED = 2  #: the step's deadline had passed; it was removed
    SKIPPED = 3  #: the step does not take this kind of update; left in place
    CHECK = 4  #: the step has a filter the caller must check, then ``claim_token``
    BUSY = 5  #: another update is running this conversation's step: wait for its outcome
    STALE = 6  #: the update is at or below the last applied ``update_id``: already applied
    WAIT = 7  #: shared storages: hold the update for the ordering window, then claim again
    WAITER = 8  #: shared storages: a ``wait_for`` parked in another worker takes the update


@dataclass
class Claim:
    """The result of a claim: a status, the record as it was before the claim, and the owner
    token the claim was made with (what the step's outcome names)."""

    status: ClaimStatus
    record: StateContext | None
    owner: str | None = None
    #: with ``WAITER``: the remote waiter, as ``storage.handover.offer`` takes it
    waiter: str | None = None


def state_name(state: StateT) -> str | None:
    """The stored form of a state: an ``Enum`` member by ``.name``, a string as is."""
    if type(state) is str:
        return state  # a wizard's every step: its state by name
    if state is None:
        return None
    if isinstance(state, enum.Enum):
        return state.name
    if isinstance(state, str):
        return state
    # aiogram's State objects carry their name in .state
    inner = getattr(state, "state", None)
    if isinstance(inner, str):
        return inner
    raise TypeError(f"state must be a str or an Enum member, got {type(state).__name__}: {state!r}")


#: The default limit of one record's size: the UTF-8 bytes of its ``data`` and ``kwargs`` as
#: compact JSON (see [`BaseStorage`][aiostep.BaseStorage]). Change it per storage with
#: ``max_record_bytes=``.
MAX_RECORD_BYTES: Final = 1 << 20

# Deeper than this is refused, with the path: no bot needs it, and a dict that contains itself
# would otherwise end in a bare RecursionError somewhere inside a backend.
_MAX_DEPTH = 100

# A path to a value, formatted only when an error names it: a str (the root), or (parent, key).
_Path: TypeAlias = "str | tuple[_Path, Any]"


def _where(path: _Path) -> str:
    parts: list[str] = []
    while isinstance(path, tuple):
        path, key = path
        parts.append(f"[{key!r}]")
    return path + "".join(reversed(parts))


def _check_text(text: str, where: str) -> None:
    """Raise ``ValueError`` if ``text`` cannot be encoded as UTF-8 (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        raise ValueError(
            f"{where} contains a lone surrogate (\\u{char:04x}) that cannot be stored as UTF-8; "
            "it usually comes from bytes decoded with errors='surrogateescape' or from half of "
            "an emoji cut off: repair the text first (e.g. .encode('utf-8', 'replace').decode())"
        ) from None


def _check_json(value: Any, path: _Path, depth: int = 0) -> None:
    # exact types: an IntEnum/StrEnum member or a dict/list subclass would come back from
    # File/Redis as a plain value, so Memory must not keep it either
    kind = type(value)
    if kind is str:
        if not value.isascii():  # O(1); only non-ASCII text can hold a surrogate
            _check_text(value, _where(path))
        return
    if value is None or kind is int or kind is bool:
        return
    if kind is float:
        if not math.isfinite(value):
            raise TypeError(
                f"{_where(path)} is not JSON-serializable: {value!r} (JSON has no NaN/Infinity)"
            )
        return
    if kind is dict:
        if depth >= _MAX_DEPTH:
            _too_deep(path)
        _check_object(value, path, depth + 1)
        return
    if kind is list:
        if depth >= _MAX_DEPTH:
            _too_deep(path)
        for i, v in enumerate(value):
            item = type(v)
            # plain ASCII text and ints need no call (most of a record): the rest, and every
            # error, go through the one check that names the path
            if (item is str and v.isascii()) or item is int or v is None or item is bool:
                continue
            _check_json(v, (path, i), depth + 1)
        return
    if isinstance(value, enum.Enum):
        raise TypeError(
            f"{_where(path)} is an enum member ({value!r}), which JSON reads back as a plain "
            "value; store its .name or .value"
        )
    if isinstance(value, tuple):
        raise TypeError(
            f"{_where(path)} is a tuple, which JSON would read back as a list; store a list instead"
        )
    if isinstance(value, (dict, list)):
        plain = "dict" if isinstance(value, dict) else "list"
        raise TypeError(
            f"{_where(path)} is of type {kind.__name__}, which JSON reads back as a plain {plain}; "
            f"store {plain}(...) of it instead"
        )
    raise TypeError(
        f"{_where(path)} is not JSON-serializable: {kind.__name__} {value!r:.80}. "
        "Store plain str/int/float/bool/None/list/dict values (e.g. a date as .isoformat())"
    )


def _check_object(value: dict[Any, Any], path: _Path, depth: int = 0) -> None:
    for k, v in value.items():
        if type(k) is not str:
            raise TypeError(
                f"{_where(path)} has key {k!r} of type {type(k).__name__}: JSON object keys must "
                "be plain strings (a backend would silently turn it into a string)"
            )
        if not k.isascii():
            _check_text(k, f"{_where(path)} has key {k!r}, which")
        kind = type(v)
        if (kind is str and v.isascii()) or kind is int or v is None or kind is bool:
            continue  # as in _check_json's list loop
        _check_json(v, (path, k), depth)


def _too_deep(path: _Path) -> None:
    raise TypeError(
        f"{_where(path)[:200]} is nested more than {_MAX_DEPTH} levels deep (does it contain "
        "itself?); JSON data that deep cannot be stored"
    )


def ensure_json(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check that ``value`` is a JSON object and return a private deep copy of it.

    Only plain ``str``/``int``/``float``/``bool``/``None``/``list``/``dict`` are taken, with
    ``str`` keys, no NaN/Infinity and no lone surrogates: what every backend reads back unchanged.

    Raises:
        TypeError: naming the first offending key, e.g. ``kwargs['when'] is not JSON-serializable``.
        ValueError: naming the text that holds a lone surrogate, which UTF-8 cannot encode.
    """
    check_json(value, where)
    return copy.deepcopy(dict(value))


def check_json(value: Mapping[str, Any], where: str) -> None:
    """Check what `ensure_json` checks, without copying (for a caller whose value is
    copied further on anyway, as `apply_patch` copies what a patch brings)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(value).__name__}")
    _check_object(value if type(value) is dict else dict(value), where)


def check_patch(patch: Patch) -> None:
    """Refuse a patch that holds anything a backend could not store and read back as it is.

    Every backend calls this before it writes, so they all refuse the same things: names
    (state, step) that are not ``str``, a ``chat_id`` that is not ``int``/``str``, a
    ``deadline`` that is not a finite number, kwargs or data that `ensure_json` would
    refuse, a lone surrogate in any text, and a data name holding NUL.

    Raises:
        TypeError: naming the field or key, e.g. ``data['when'] is not JSON-serializable``.
        ValueError: for a lone surrogate or a NUL in a data name, naming where it is.
    """
    # read field by field, with no tuples built to loop over: every write of every backend
    # checks a patch, and most of its fields are UNSET, None or plain ASCII names
    value = patch.state
    if not (value is UNSET or value is None or (type(value) is str and value.isascii())):
        _check_name(value, "state")
    value = patch.callback
    if not (value is UNSET or value is None or (type(value) is str and value.isascii())):
        _check_name(value, "callback")
    value = patch.on_timeout
    if not (value is UNSET or value is None or (type(value) is str and value.isascii())):
        _check_name(value, "on_timeout")
    value = patch.token
    if not (value is UNSET or value is None or (type(value) is str and value.isascii())):
        _check_name(value, "token")
    value = patch.accepts
    if not (value is UNSET or value is None or (type(value) is str and value.isascii())):
        _check_name(value, "accepts")
    chat_id = patch.chat_id
    if chat_id is not UNSET and chat_id is not None and type(chat_id) is not int:
        if type(chat_id) is str:
            if not chat_id.isascii():
                _check_text(chat_id, "chat_id")
        else:
            raise TypeError(
                f"chat_id must be an int, a str or None, got {type(chat_id).__name__}: {chat_id!r}"
            )
    deadline = patch.deadline
    if (
        deadline is not UNSET
        and deadline is not None
        and (type(deadline) not in (int, float) or not math.isfinite(deadline))
    ):
        raise TypeError(f"deadline must be a finite number of epoch seconds, got {deadline!r:.80}")
    kwargs = patch.kwargs
    if kwargs is not UNSET:
        _check_values(kwargs, "kwargs")
    data = patch.data
    if data is not UNSET:
        _check_values(data, "data")
        _check_data_names(data)
    update = patch.data_update
    if update is not UNSET:
        _check_values(update, "data")
        _check_data_names(update)


def _check_name(value: Any, name: str) -> None:
    """`check_patch` of a name field that is not plain ASCII (or not a str at all)."""
    if type(value) is not str:
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}: {value!r:.80}")
    _check_text(value, name)


def _check_values(value: Any, where: str) -> None:
    """`check_patch` of a patch's kwargs or data: a plain dict of JSON values."""
    if type(value) is not dict:
        raise TypeError(f"{where} must be a dict, got {type(value).__name__}: {value!r:.80}")
    if value:
        _check_object(value, where)


def _check_data_names(data: dict[str, Any]) -> None:
    for k in data:
        if "\0" in k:
            raise ValueError(
                f"data has key {k!r}, which contains NUL (\\x00): data names cannot "
                "hold it (the Redis backend keeps their order as NUL-separated names)"
            )


def _compact_json() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)``, made
    once: every write measures its patch, and ``dumps`` builds an encoder on each call
    (measured: 2.2 µs for a 5-item dict, against 0.8 µs for the C encoder made once)."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_c_encoder is None:  # pragma: no cover - Pythons without the _json accelerator
        return encoder.encode
    # markers=None: no check for circular references; one ends in a RecursionError instead
    c_encoder = make_c_encoder(
        None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return lambda value: "".join(c_encoder(value, 0))


_to_json = _compact_json()


def _json_size(value: Any, where: str) -> int:
    """UTF-8 bytes of ``value`` as compact JSON (what Redis stores; File escapes more)."""
    if not value:
        return 0
    try:
        text = _to_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        _unencodable(value, where, exc)
    # surrogatepass: a lone surrogate is check_patch's to refuse, with a better message
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _unencodable(value: Any, where: _Path, exc: BaseException) -> NoReturn:
    """Raise the error that names what in ``value`` JSON could not write (the slow path);
    ``where``: the value's path (``"kwargs"``, or ``("data", name)`` for one data item)."""
    if type(value) is dict:
        _check_object(value, where)
    _check_long_ints(value, where)
    raise TypeError(f"{_where(where)} is not JSON-serializable: {exc}") from exc


def _check_long_ints(value: Any, path: _Path) -> None:
    # Python refuses to write an int of more than sys.get_int_max_str_digits() digits
    if type(value) is dict:
        for k, v in value.items():
            _check_long_ints(v, (path, k))
    elif type(value) is list:
        for i, v in enumerate(value):
            _check_long_ints(v, (path, i))
    elif type(value) is int:
        try:
            str(value)
        except ValueError:
            raise TypeError(
                f"{_where(path)} is an int of more than {sys.get_int_max_str_digits()} digits, "
                "which cannot be written as JSON text; store it as a str"
            ) from None


def patch_size(patch: Patch) -> int:
    """The bytes of data and kwargs ``patch`` writes: UTF-8 of their compact JSON, summed.

    For ``data_update`` that is the size of the items it sets, not of the merged data.
    """
    size = 0
    for name in ("data", "data_update", "kwargs"):
        value = getattr(patch, name)
        if value is not UNSET and type(value) is dict:  # check_patch refuses anything else
            size += _json_size(value, "kwargs" if name == "kwargs" else "data")
    return size


def check_record_size(
    record: StateContext | None, patch: Patch, key: StorageKey, limit: int | None
) -> None:
    """Refuse ``record`` (an existing record with ``patch`` applied) if its data and kwargs
    together exceed ``limit`` bytes (``None``: no limit).

    A backend that applies patches in Python calls this before it stores the result; it
    measures the whole record only when the patch merged into it
    ([`BaseStorage.write`][aiostep.BaseStorage.write] has already measured what the patch gives in
    full).

    Raises:
        RecordTooLargeError: naming the key, the size and the limit.
    """
    if limit is None or record is None:
        return
    data_given = patch.data_update is UNSET and (patch.data is not UNSET or not record.data)
    kwargs_given = patch.kwargs is not UNSET or not record.kwargs
    if data_given and kwargs_given:
        return
    if patch.data is UNSET and patch.data_update is UNSET and patch.kwargs is UNSET:
        return  # data and kwargs are as they were
    size = _json_size(record.data, "data") + _json_size(record.kwargs, "kwargs")
    if size > limit:
        raise RecordTooLargeError(
            _key(key), size, limit, "its data and kwargs, with this update merged in"
        )


def apply_patch(record: StateContext | None, patch: Patch) -> StateContext | None:
    """Return a new record: ``record`` with ``patch`` applied (``None`` when it ends up empty).

    ``record`` is not changed, and the new record shares with it only what the patch leaves as
    it was: a stored record is never changed in place (backends replace it whole), so sharing
    its unchanged values is safe and spares a deep copy of data and history on every write.
    What the patch brings is copied, so the caller's objects never become stored ones.
    """
    new = dataclasses.replace(record) if record is not None else StateContext()
    if patch.owner is not UNSET:
        # the claim's outcome: the claim ends, and its update counts as applied
        if new.inflight is not None:
            new.seq = max(new.seq or 0, new.inflight)
        new.claim, new.busy, new.inflight = None, None, None
    if patch.state is not UNSET:
        new.current_state = patch.state
    if patch.callback is not UNSET:
        new.callback = patch.callback
        if patch.callback is None:
            new.kwargs, new.deadline, new.on_timeout, new.token, new.accepts = (
                {},
                None,
                None,
                None,
                None,
            )
            new.claim, new.busy, new.inflight = None, None, None
    for name in _STEP_FIELDS[1:]:
        value = getattr(patch, name)
        if value is not UNSET:
            setattr(new, name, copy.deepcopy(value))
    if patch.chat_id is not UNSET:
        new.chat_id = patch.chat_id
    if patch.data is not UNSET:
        new.data = copy.deepcopy(patch.data)
    if patch.data_update is not UNSET:
        new.data = {**new.data, **copy.deepcopy(patch.data_update)}
    if new.current_state is None and new.callback is None:
        new.chat_id = None
    return None if new.is_empty() else new


def drop_step(record: StateContext) -> StateContext | None:
    """The record without its pending step (``None`` when nothing else is left)."""
    return apply_patch(record, Patch(callback=None))


# Tokens need to be unique, not secret: a random prefix per process (drawn again in a forked
# child, whose counter would otherwise repeat its parent's) and a counter. Measured: 0.2 µs,
# against 3 µs for secrets.token_hex(8) (a getrandom system call), twice per update.
_token_prefix = ""
_token_counter: Iterator[int] = itertools.count()


def _new_token_prefix() -> None:
    global _token_prefix, _token_counter
    _token_prefix = secrets.token_hex(6)
    _token_counter = itertools.count()


_new_token_prefix()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_token_prefix)


def new_owner() -> str:
    """A fresh token, unique across processes: a claim's owner, or a step registration's."""
    return f"{_token_prefix}{next(_token_counter):x}"


def owner_prefix() -> str:
    """What every token `new_owner` makes in this process starts with (a forked child draws
    its own): a storage may keep only the rest of such a token."""
    return _token_prefix


def claim_outcome(
    record: StateContext | None,
    status: ClaimStatus,
    owner: str,
    lease: float | None,
    update_id: int | None,
) -> StateContext | _Unset | None:
    """What a claim with ``status`` turns ``record`` into (``UNSET``: left as it is); for the
    backends that decide in Python (`decide_claim`)."""
    if record is None:
        return UNSET
    if status is ClaimStatus.CLAIMED and record.claim != owner:
        return mark_claimed(record, owner, lease, update_id)
    if status is ClaimStatus.EXPIRED:
        return drop_step(record)
    return UNSET


def claim_alive(record: StateContext, now: float, live_owners: set[str] | None) -> bool:
    """Whether the claim on ``record`` still has an owner at work.

    ``live_owners``: on a single-process storage, the claims made by this process (a claim
    found after a restart is stale at once); ``None`` on a shared storage, where a claim
    lives while its lease (``busy``) runs.
    """
    if record.claim is None:
        return False
    if live_owners is not None:
        return record.claim in live_owners
    return record.busy is not None and record.busy > now


def mark_claimed(
    record: StateContext, owner: str, lease: float | None, update_id: int | None
) -> StateContext:
    """A copy of ``record`` with its pending step claimed by ``owner``: nothing is removed.

    Shallow, as `apply_patch` is: the values it shares with ``record`` are never changed
    in place."""
    new = dataclasses.replace(record)
    new.claim, new.busy, new.inflight = owner, lease, update_id
    return new


def check_owner(key: StorageKey, record: StateContext | None, patch: Patch) -> None:
    """Raise `ClaimLostError` if ``patch`` is the outcome of a claim
    that no longer owns the record at ``key``."""
    if patch.owner is UNSET:
        return
    if record is None or record.claim != patch.owner:
        from aiostep.exceptions import ClaimLostError

        raise ClaimLostError(key, patch.owner, None if record is None else record.claim)


# the members decide_claim answers with, read once (an Enum attribute lookup is ~50 ns)
_BUSY = ClaimStatus.BUSY
_CHECK = ClaimStatus.CHECK
_CLAIMED = ClaimStatus.CLAIMED
_EXPIRED = ClaimStatus.EXPIRED
_NONE = ClaimStatus.NONE
_SKIPPED = ClaimStatus.SKIPPED
_STALE = ClaimStatus.STALE


def decide_claim(
    record: StateContext | None,
    now: float,
    kind: str,
    is_command: bool,
    callback_data: str | None = None,
    *,
    owner: str | None = None,
    live_owners: set[str] | None = None,
    update_id: int | None = None,
) -> ClaimStatus:
    """Which `ClaimStatus` an update of ``kind`` gets against ``record`` at time ``now``.

    ``owner`` is the token the update claims with (a claim it already holds is ``CLAIMED``
    again, so a retried claim is idempotent); ``update_id`` orders and de-duplicates updates
    (``STALE`` at or below the record's ``seq``). The Redis backend implements the same
    decision in a Lua script; the conformance suite checks that both agree.
    """
    if record is None or record.callback is None:
        return _NONE
    if owner is not None and record.claim == owner:
        return _CLAIMED
    # the usual record (no claim on it, taking the update's kind) decided without the two
    # helpers' calls
    alive = record.claim is not None and claim_alive(record, now, live_owners)
    if not alive and record.deadline is not None and record.deadline <= now:
        return _EXPIRED
    accepts = record.accepts or ",message,"
    if f",{kind}," not in accepts and not takes_update(accepts, kind, callback_data):
        return _SKIPPED
    if is_command and ",command," not in accepts:
        return _SKIPPED
    if alive:
        return _BUSY
    if update_id is not None and record.seq is not None and update_id <= record.seq:
        return _STALE
    if ",filter," in accepts:
        return _CHECK
    return _CLAIMED


def takes_update(accepts: str, kind: str, callback_data: str | None) -> bool:
    """Whether an ``accepts`` marker (``",message,callback_query=aw:,"``) takes an update of
    ``kind``; ``callback_query=PREFIX`` takes only button presses whose data starts so."""
    if f",{kind}," in accepts:
        return True
    if kind == "callback_query" and callback_data is not None:
        for token in accepts.split(","):
            if token.startswith("callback_query=") and callback_data.startswith(
                token[len("callback_query=") :]
            ):
                return True
    return False


def expiry_seconds(ex: ExpiryT) -> float | None:
    """Normalise an expiry (seconds or ``timedelta``) to seconds; ``None`` means never."""
    if ex is None:
        return None
    if isinstance(ex, timedelta):
        seconds = ex.total_seconds()
    elif isinstance(ex, (int, float)) and not isinstance(ex, bool):
        seconds = float(ex)
    else:
        # float("5") would take a str, and True would be one second
        raise TypeError(
            f"ex must be seconds (a number), a timedelta or None, got {type(ex).__name__}: {ex!r}"
        )
    # NaN and infinity too: every backend must refuse the same (None is "never")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"ex must be a positive, finite number of seconds (None: never), got {ex!r}"
        )
    return seconds


def _key(key: StorageKey) -> str:
    if type(key) is str and key.isascii():
        return key  # a conversation key: every storage call makes this check
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise TypeError(f"storage key must be an int or str, got {type(key).__name__}: {key!r}")
    text = str(key)
    if not text.isascii():  # Redis would fail to encode it; refuse it on every backend alike
        _check_text(text, f"storage key {text!r}")
    return text


def _record_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(
            f"max_record_bytes must be an int or None, got {type(limit).__name__}: {limit!r}"
        )
    if limit <= 0:
        raise ValueError(f"max_record_bytes must be positive (or None for no limit), got {limit}")
    return limit


def callback_name(callback: Any) -> str | None:
    """The stored name of a callback: a registered function's name, or a string as is."""
    if callback is None or isinstance(callback, str):
        return callback
    from aiostep.step_registry import registry

    entry = registry.find(callback)
    if entry is None:
        from aiostep.exceptions import StepNotRegisteredError

        raise StepNotRegisteredError(
            f"callback {callback!r} is not a registered step, so it cannot be stored by name; "
            "decorate it with @aiostep.persisted_step('a.name')"
        )
    return entry.name


class BaseStorage(ABC):
    """The async storage interface every aiostep component uses.

    Subclasses implement ``read``, ``claim`` and ``_write``/``_remove``/``_claim_token``
    (wrapped by ``write``/``remove``/``claim_token``); the seed API is built on them. Keys are
    user ids or conversation keys; ``12345`` and ``"12345"`` name the same record on every
    backend. ``ex`` (seconds or ``timedelta``) sets a record's time to live: per storage, and
    per call where given.

    Record size: a record's ``data`` and ``kwargs`` together may hold at most
    ``max_record_bytes`` bytes (UTF-8 of their compact JSON; default `MAX_RECORD_BYTES`,
    1 MiB; ``None`` lifts the limit). A store of conversations is no place for blobs: a record
    is read and written whole on most updates. What is checked, before anything is written:

    - every write: the data and kwargs the patch writes (``set_data``: the new data;
      ``update_data``: the items it sets; a step registration: its kwargs);
    - Memory (and any backend that applies patches in Python, through
      `check_record_size`): also the whole record after an ``update_data`` merge or a
      write of only one of data and kwargs;
    - Redis: also the merged record, measured by the write script from what is stored (a data
      name that JSON would escape counts unescaped there, so it may pass a few bytes over).

    A write over the limit raises [`RecordTooLargeError`][aiostep.RecordTooLargeError] and changes
    nothing.
    """

    #: True when records survive a process restart (File, Redis).
    persistent: bool = False
    #: True when several processes use the same records at once (Redis): a claim then marks
    #: the conversation busy for a lease, so a message that reaches another worker meanwhile
    #: waits for the step's outcome instead of racing past it.
    shared: bool = False
    #: True when every update of a conversation takes the conversation's turn across workers
    #: (Redis with ``order_updates=True``): [`Listen`][aiostep.Listen] then handles them one at
    #: a time, in ``update_id`` order, whichever worker they reach
    order_updates: bool = False
    #: shared storages: how a ``wait_for`` parked in one worker gets the answer another worker
    #: receives (``None``: waiters are answered in their own process only)
    handover: WaiterHandover | None = None

    def __init__(
        self, ex: ExpiryT = None, *, max_record_bytes: int | None = MAX_RECORD_BYTES
    ) -> None:
        self.ex = expiry_seconds(ex)
        #: the most bytes of JSON a record's data and kwargs may hold (``None``: no limit)
        self.max_record_bytes = _record_limit(max_record_bytes)
        #: counts writes made through this object, so a caller can tell whether a record it
        #: read is still current without reading it again (one process; not across workers)
        self.generation = 0
        #: single-process storages: the claims this process made and has not ended. A claim
        #: stored by a process that has since died is not among them, so its step is offered
        #: again (``None`` on shared storages, whose claims live by their lease instead)
        self._owners: set[str] | None = None if self.shared else set()
        #: single-process storages: when each pending step is due (shared storages index
        #: deadlines where every worker sees them, e.g. a Redis sorted set)
        self.deadlines: DeadlineIndex | None = None if self.shared else DeadlineIndex()

    def _ex(self, ex: ExpiryT | _Unset) -> float | None:
        return self.ex if ex is UNSET else expiry_seconds(ex)

    # -- primitives ---------------------------------------------------------------------------
    def holds_nothing(self, key: str) -> bool:
        """Whether no record at all is stored at ``key``, known at once (a storage kept in
        this process); ``False`` when it is not (then `claim` finds out).
        [`Listen`][aiostep.Listen] skips the claim of an update whose conversation holds
        nothing: most updates of a bot."""
        return False

    @abstractmethod
    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key``, or ``None``."""

    async def write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Apply ``patch`` to the record at ``key`` atomically; return the record as it was.

        The returned record may share values with the stored one (no deep copy on every
        write): read it, do not change it.

        Raises:
            ClaimLostError: ``patch.owner`` names a claim that no longer owns the record;
                nothing was written.
            RecordTooLargeError: the data and kwargs the patch writes exceed
                ``max_record_bytes`` (see the class docstring); nothing is written.
            TypeError, ValueError: what `check_patch` refuses; nothing is written.
        """
        return await self._committed(key, patch, ex, self._write)

    async def apply(self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET) -> None:
        """`write` for a caller that does not read the record as it was (a step's outcome, the
        end of a conversation): a backend may then skip sending it back (Redis does: a
        smaller reply and nothing to decode). Raises what `write` raises."""
        await self._committed(key, patch, ex, self._write_blind)

    async def _write_blind(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """`_write`, for `apply`: what it returns is not read (a backend overrides it when it
        can skip building that)."""
        return await self._write(key, patch, ex=ex)

    async def _committed(
        self,
        key: StorageKey,
        patch: Patch,
        ex: ExpiryT | _Unset,
        write: Callable[..., Awaitable[StateContext | None]],
    ) -> StateContext | None:
        """`write`/`apply`: the size check, then ``write``, and what every write notes."""
        self._refuse_oversize(key, patch)
        self.generation += 1
        try:
            before = await write(key, patch, ex=ex)
        except BaseException:
            if patch.owner is not UNSET and self._owners is not None:
                # the claim's update is over even though its outcome was not written (a full
                # disk): its step is left as a stale claim, offered again as after a
                # restart, not busy for as long as this process lives
                self._owners.discard(patch.owner)
            raise
        self._noted(key, patch)
        return before

    def _noted(self, key: StorageKey, patch: Patch) -> None:
        """What every write notes once it is written: the claim it ends, the deadline it sets."""
        if patch.owner is not UNSET and self._owners is not None:
            self._owners.discard(patch.owner)
        index = self.deadlines
        if index is not None:
            deadline = patch.deadline
            if deadline is not UNSET and deadline is not None:
                index.note(_key(key), deadline)
            elif index.pending and (deadline is None or patch.callback is None):
                # the step ended or has no deadline now; with no deadline pending anywhere
                # (a bot without timeouts) this costs one length check
                index.note(_key(key), None)

    def _refuse_oversize(self, key: StorageKey, patch: Patch) -> None:
        """Raise `RecordTooLargeError` if the data and kwargs ``patch`` writes exceed
        ``max_record_bytes`` (a backend that encodes them anyway measures in its ``_write``)."""
        # Measured here, once for every backend, with this storage's own limit; the backend's
        # _write then runs check_patch (names what JSON cannot hold) before it writes.
        size = patch_size(patch)
        limit = self.max_record_bytes
        if limit is not None and size > limit:
            raise RecordTooLargeError(_key(key), size, limit, "the data and kwargs it writes")

    async def remove(self, key: StorageKey) -> StateContext | None:
        """Delete the record at ``key``; return it as it was (or ``None``)."""
        self.generation += 1
        if self.deadlines is not None:
            self.deadlines.note(_key(key), None)
        return await self._remove(key)

    @abstractmethod
    async def claim(
        self,
        key: StorageKey,
        *,
        now: float,
        kind: str,
        is_command: bool,
        callback_data: str | None = None,
        lease: float | None = None,
        owner: str | None = None,
        update_id: int | None = None,
        window: float = 0.0,
        turn: bool = False,
    ) -> Claim:
        """Atomically claim the pending step at ``key`` for an update, as `decide_claim`
        says.

        ``CLAIMED`` marks the step claimed by ``owner`` (a fresh token when not given; it is
        returned in `Claim.owner`) **without removing it**: the step, its kwargs and the
        conversation's data stay, so the step can be offered again if its process dies. The
        step's outcome is a write with ``Patch(owner=...)`` (or
        [`end_claim`][aiostep.BaseStorage.end_claim]). ``EXPIRED`` removes the step. ``lease``
        (epoch seconds; shared storages) is how long the claim lives without a
        [`renew`][aiostep.BaseStorage.renew]; ``BUSY`` answers while a live claim runs.
        ``update_id`` de-duplicates (``STALE``) and, on a shared storage with ``window`` > 0
        seconds, orders updates: an update waits (``WAIT``/``BUSY``) until it has been seen for
        ``window`` seconds and no update of the conversation with a lower id is waiting. The
        returned record is the one before the claim. ``turn`` (storages with
        `order_updates`) also takes the conversation's
        turn for ``owner``, as [`take_turn`][aiostep.BaseStorage.take_turn] does, in the same
        call: ``BUSY``/``WAIT`` until it is the update's turn.
        """

    async def claim_token(
        self,
        key: StorageKey,
        token: str,
        lease: float | None = None,
        owner: str | None = None,
        *,
        update_id: int | None = None,
    ) -> StateContext | None:
        """Claim the pending step at ``key`` if it is still the registration ``token``.

        With ``owner`` (a filtered step whose filter passed) the step is marked claimed, as
        [`claim`][aiostep.BaseStorage.claim] does; without (a timer that expires the step) it is
        removed. Either way a step that a live claim is running is left alone. Returns the record as
        it was, or ``None`` when the step is gone, replaced, or running.
        """
        self.generation += 1
        record = await self._claim_token(key, token, lease, owner, update_id)
        if record is not None and owner is not None and self._owners is not None:
            self._owners.add(owner)
        return record

    async def end_claim(self, key: StorageKey, owner: str, *, keep_step: bool = False) -> bool:
        """End claim ``owner`` of a step that wrote no outcome of its own: the step is done
        (removed), or, with ``keep_step`` (the step failed), offered again.

        Returns ``False`` when the claim was lost (another worker took the step over after its
        lease ran out, or the conversation was ended meanwhile): nothing is written then.
        """
        from aiostep.exceptions import ClaimLostError

        patch = Patch(owner=owner) if keep_step else Patch(owner=owner, callback=None)
        try:
            await self.apply(key, patch)
        except ClaimLostError:
            return False
        return True

    def _decide_here(
        self,
        record: StateContext | None,
        *,
        now: float,
        kind: str,
        is_command: bool,
        callback_data: str | None,
        owner: str,
        update_id: int | None,
    ) -> tuple[ClaimStatus, StateContext | _Unset | None]:
        """A claim decided in Python (Memory, File): its status and what the record becomes
        (``UNSET``: unchanged). A claim it grants is noted as one of this process's."""
        status = decide_claim(
            record,
            now,
            kind,
            is_command,
            callback_data,
            owner=owner,
            live_owners=self._owners,
            update_id=update_id,
        )
        after = claim_outcome(record, status, owner, None, update_id)
        if status is ClaimStatus.CLAIMED and after is not UNSET and self._owners is not None:
            self._owners.add(owner)
        return status, after

    # -- deadlines ------------------------------------------------------------------------------
    async def next_deadline(self) -> float | None:
        """The earliest deadline of a pending step (epoch seconds), or ``None``.

        What the deadline [`Scheduler`][aiostep.Scheduler] sleeps until. A File storage loads
        its journal here, so the deadlines it holds are found at start-up.
        """
        return None if self.deadlines is None else self.deadlines.earliest()

    async def due_deadlines(self, now: float, lease: float, limit: int = 100) -> list[str]:
        """Take up to ``limit`` storage keys whose step's deadline is at or before ``now``,
        to fire them.

        On a shared storage each key goes to one caller only, even when several workers ask
        at the same moment; it is handed out again once ``lease`` (epoch seconds) has passed
        without [`deadline_fired`][aiostep.BaseStorage.deadline_fired] (its worker died). The
        index is a hint: the caller reads the record and fires only a step still due.
        """
        return [] if self.deadlines is None else self.deadlines.take_due(now, limit)

    async def due_deadlines_and_next(
        self, now: float, lease: float, limit: int = 100
    ) -> tuple[list[str], float | None]:
        """[`due_deadlines`][aiostep.BaseStorage.due_deadlines], and then
        [`next_deadline`][aiostep.BaseStorage.next_deadline] as it stands after the take (the
        ones just taken count at ``lease`` on a shared storage): what the deadline scheduler
        asks on every look. Redis answers both in one round trip."""
        return await self.due_deadlines(now, lease, limit), await self.next_deadline()

    async def deadline_fired(self, key: StorageKey) -> None:  # noqa: B027 - optional hook
        """The deadline of ``key`` taken by [`due_deadlines`][aiostep.BaseStorage.due_deadlines]
        has been dealt with (single-process storages have nothing to do)."""

    async def deadline_later(self, key: StorageKey, when: float) -> None:
        """Look at the step of ``key`` again at ``when`` (it was busy when it came due)."""
        if self.deadlines is not None:
            self.deadlines.note(_key(key), when)

    async def peers(self) -> int:
        """How many processes use this storage now (this one included). Shared storages count
        their workers; the others answer 1."""
        return 1

    async def renew(self, key: StorageKey, owner: str, lease: float) -> bool:
        """Extend claim ``owner``'s lease to ``lease`` (epoch seconds) while its step still runs;
        ``False`` if the claim was lost. Only shared storages have leases; others answer
        ``True``."""
        return True

    async def take_turn(
        self, key: StorageKey, owner: str, update_id: int | None, window: float, lease: float
    ) -> ClaimStatus:
        """Take the turn of conversation ``key`` for one update (storages with
        `order_updates`): ``CLAIMED`` when ``owner`` holds
        it for ``lease`` seconds, ``BUSY`` while another update holds it or a lower
        ``update_id`` waits for it, ``WAIT`` while the update is younger than ``window``
        seconds. Storages without ordering answer ``CLAIMED``."""
        return ClaimStatus.CLAIMED

    async def renew_turn(self, key: StorageKey, owner: str, lease: float) -> bool:
        """Extend ``owner``'s turn of ``key`` by ``lease`` seconds; ``False`` if it was lost."""
        return True

    async def leave_turn(self, key: StorageKey, owner: str) -> None:
        """End ``owner``'s turn of ``key``, so the next update of the conversation runs."""
        return None

    # what a backend implements
    # what a backend implements
    @abstractmethod
    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Backend part of [`write`][aiostep.BaseStorage.write]."""

    @abstractmethod
    async def _remove(self, key: StorageKey) -> StateContext | None:
        """Backend part of [`remove`][aiostep.BaseStorage.remove]."""

    @abstractmethod
    async def _claim_token(
        self,
        key: StorageKey,
        token: str,
        lease: float | None,
        owner: str | None,
        update_id: int | None,
    ) -> StateContext | None:
        """Backend part of [`claim_token`][aiostep.BaseStorage.claim_token]."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections/files; the storage may not be used afterwards."""

    # -- the seed API -------------------------------------------------------------------------
    async def set_state(
        self,
        user_id: StorageKey,
        state: StateT,
        callback: Any = None,
        chat_id: int | str | None = None,
        *,
        ex: ExpiryT | _Unset = UNSET,
    ) -> None:
        """Set the state (an ``Enum`` is stored by ``.name``), keeping data and any pending step.

        ``callback`` (a registered step function or name) is stored as the record's callback.
        """
        patch = Patch(state=state_name(state), chat_id=user_id if chat_id is None else chat_id)
        name = callback_name(callback)
        if name is not None:
            patch.callback = name
        await self.apply(user_id, patch, ex=ex)

    async def get_state(self, user_id: StorageKey, default: Any = None) -> StateContext | Any:
        """The record at ``user_id`` (``.current_state``, ``.callback``, ...), or ``default``."""
        record = await self.read(user_id)
        return default if record is None else record

    async def delete_state(self, user_id: StorageKey, default: Any = None) -> StateContext | Any:
        """Delete the whole record at ``user_id`` and return it, or ``default``."""
        record = await self.remove(user_id)
        return default if record is None else record

    async def set_data(
        self, user_id: StorageKey, data: Mapping[str, Any], *, ex: ExpiryT | _Unset = UNSET
    ) -> None:
        """Replace the data at ``user_id``. Raises ``TypeError`` for non-JSON data."""
        await self.apply(user_id, Patch(data=ensure_json(data, "data")), ex=ex)

    async def get_data(self, user_id: StorageKey) -> dict[str, Any]:
        """A copy of the data at ``user_id`` (``{}`` when there is none)."""
        record = await self.read(user_id)
        return {} if record is None else record.data

    async def update_data(
        self,
        user_id: StorageKey,
        data: Mapping[str, Any] | None = None,
        *,
        ex: ExpiryT | _Unset = UNSET,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Merge ``data`` (and keyword arguments) into the data atomically; return the result."""
        update = ensure_json({**(data or {}), **kwargs}, "data")
        before = await self.write(user_id, Patch(data_update=update), ex=ex)
        merged = {} if before is None else dict(before.data)
        merged.update(update)
        return copy.deepcopy(merged)  # ``before`` shares its values with the stored record

    async def clear_data(self, user_id: StorageKey) -> None:
        """Remove all data at ``user_id`` (the state is kept)."""
        await self.apply(user_id, Patch(data={}))

    async def delete_data(self, user_id: StorageKey) -> dict[str, Any]:
        """Remove all data at ``user_id`` and return what was removed."""
        before = await self.write(user_id, Patch(data={}))
        return {} if before is None else copy.deepcopy(before.data)


def as_async(storage: Any) -> BaseStorage:
    """Adapt any aiostep storage to the async [`BaseStorage`][aiostep.BaseStorage] interface.

    The seed's plain-call [`MemoryStateStorage`][aiostep.MemoryStateStorage] answers with its
    ``.aio`` view; async storages are returned as they are.
    """
    if isinstance(storage, BaseStorage):
        return storage
    aio = getattr(storage, "aio", None)
    if isinstance(aio, BaseStorage):
        return aio
    raise TypeError(
        f"{storage!r} is not an aiostep storage (MemoryStateStorage, FileStateStorage, "
        "RedisStateStorage or a BaseStorage subclass)"
    )
