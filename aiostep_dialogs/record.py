"""The stored record of a running wizard, in one place: how its step kwargs are written
(`park_meta`) and read back (`restore`), the versions it may come in, and the storage calls
that write it (`park`, the one write of an update) and remove it (`clear`).
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.types import (
    TelegramObject,
)

import aiostep
from aiostep.clock import get_clock
from aiostep.keys import ConversationKey
from aiostep.storage import BaseStorage, StateContext
from aiostep.storage.base import UNSET
from aiostep_dialogs.choices import OptionValue
from aiostep_dialogs.spec import StepSpec
from aiostep_dialogs.timeouts import TICK
from aiostep_dialogs.ui import close, stored_message_id

if TYPE_CHECKING:
    from aiostep_dialogs.running import Call, RunningWizard

logger = logging.getLogger("aiostep_dialogs")

#: Bumped when the stored layout of a running wizard changes. Stored as ``"v"`` with every
#: running wizard; a record of a version above this one is not read (see ``_record_version``).
#: Version 4 stores less: no ``"w"`` (the step's name, ``<wizard_id>:<STATE>``, says it), no
#: ``"a"`` while no answer was refused, no ``"n"`` for a prompt without buttons, and a history
#: entry that only added data names as text (``"NAME+name"``, see `packed_history`). A deploy
#: older than version 4 leaves such a record pending instead of misreading it.
RECORD_VERSION = 4


_HISTORY_LIMIT = 30


def _undo_entry(state: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The history entry of an answer at ``state`` that turned ``before`` into ``after``:
    only what ``/back`` needs to undo it (the record stays small, history or not)."""
    entry: dict[str, Any] = {"s": state}
    replaced = {k: v for k, v in before.items() if k not in after or after[k] != v}
    added = [k for k in after if k not in before]
    if replaced:
        entry["r"] = replaced
    if added:
        entry["x"] = added
    return entry


def packed_history(history: list[dict[str, Any]]) -> list[Any]:
    """``history`` as it is stored: an entry of an answer that only added data names (the
    usual one) as the text ``"STATE+name,name"`` (``"STATE"`` when it changed nothing), any
    other as its dict. A state name never holds ``+``; a data name holding ``,`` keeps the
    dict. Five answered steps fit in about 50 bytes, so a paused wizard's kwargs stay short
    enough for Redis' compact hash encoding (values up to 64 bytes)."""
    packed: list[Any] = []
    for entry in history:
        size = len(entry)
        if size == 1:
            packed.append(entry["s"])
            continue
        added = entry.get("x") if size == 2 else None
        if added:
            try:
                joined = ",".join(added)
            except TypeError:  # a name that is no str: kept as is, for the storage to refuse
                packed.append(entry)
                continue
            if joined.count(",") == len(added) - 1:  # no name holds a ","
                packed.append(entry["s"] + "+" + joined)
                continue
        packed.append(entry)
    return packed


def _unpacked(entry: Any) -> dict[str, Any] | None:
    """A stored history entry as the dict the runtime reads (``None``: not an entry)."""
    if isinstance(entry, str):
        state, plus, added = entry.partition("+")
        return {"s": state, "x": added.split(",")} if plus else {"s": state}
    if isinstance(entry, dict) and isinstance(entry.get("s"), str):
        return entry
    return None


def _undo(entry: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the answer of history ``entry`` undone."""
    if "d" in entry:  # a record of version 2 or older: the whole data before the answer
        old = entry["d"]
        return dict(old) if isinstance(old, dict) else {}
    undone = {k: v for k, v in data.items() if k not in set(entry.get("x", ()))}
    replaced = entry.get("r")
    if isinstance(replaced, dict):
        undone.update(replaced)
    return undone


def _record_version(meta: Mapping[str, Any]) -> int | None:
    """The layout version of a running wizard's stored kwargs, or ``None`` when this code
    cannot read it (a newer version, or not a version at all). Versions 1 to 3 differ only in
    what a history entry holds (up to 2 the whole data before the answer, ``"d"``; from 3 the
    answer's changes to undo, ``"r"`` and ``"x"``), which ``/back`` reads entry by entry;
    version 4 leaves out what can be worked out (see ``RECORD_VERSION``)."""
    version = meta.get("v", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    return version if 1 <= version <= RECORD_VERSION else None


def stored_wizard_id(record: StateContext) -> str | None:
    """The ``wizard_id`` of the wizard running in ``record``, or ``None`` when it holds no
    wizard: ``"w"`` up to version 3; from version 4 the part of the step's name before its
    state (``<wizard_id>:<STATE>``), in a record that carries a wizard's fingerprint."""
    meta = record.kwargs
    if "w" in meta:
        wizard_id = meta["w"]
        return wizard_id if isinstance(wizard_id, str) else None
    callback = record.callback
    if callback is None or "fp" not in meta or "v" not in meta:
        return None
    wizard_id, colon, _ = callback.rpartition(":")
    return wizard_id if colon else None


def _schema_of(meta: Mapping[str, Any]) -> int | None:
    """The ``schema_version`` a running wizard's data was stored with (``"sv"``, absent: 1),
    or ``None`` if it is not one."""
    schema = meta.get("sv", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        return None
    return schema


def park_meta(self: RunningWizard, spec: StepSpec) -> tuple[dict[str, Any], float | None]:
    """The step kwargs that store ``wizard`` paused at ``spec`` (every field of the record but
    the state and data, which the storage keeps beside them), and the step's timeout.

    The fields: ``v`` the layout version, ``fp`` the steps' fingerprint, ``h`` the history
    (``_undo_entry``), ``n`` the buttons' nonce (left out for a prompt without buttons),
    ``a`` rejected attempts (left out at 0); the wizard's id is the step name's head
    (`stored_wizard_id`),
    ``sv`` the data's ``schema_version`` (left out at 1), ``l`` the stored locale, ``m`` the
    prompt's message id (one-message mode), ``st`` the callers' stack
    (`aiostep_dialogs.calls`), ``c``/``p`` the options shown and picked
    (`aiostep_dialogs.choices`), ``t0``/``r`` when the step was asked and the reminders sent
    (`aiostep_dialogs.timeouts`). ``restore`` reads them back.
    """
    meta: dict[str, Any] = {"v": RECORD_VERSION, "fp": self._fingerprint}
    if self.history:
        meta["h"] = packed_history(self.history)
    if self.nonce:
        meta["n"] = self.nonce
    if self.attempts:
        meta["a"] = self.attempts
    if self.schema_version != 1:
        meta["sv"] = self.schema_version
    timeout: float | None = None
    if self._timing:
        timeout, extra = park_options(self, spec, self._wake)
        self._wake = None
        meta.update(extra)
    if self._stored_locale is not None:
        meta["l"] = self._stored_locale
    if self.prompt_message_id is not None:
        meta["m"] = self.prompt_message_id
    if self._stack:
        meta["st"] = list(self._stack)
    if self._shown is not None:
        meta["c"] = self._shown
    if self._picked:
        meta["p"] = list(self._picked)
    return meta, timeout


def read_stack(stored: Any) -> tuple[dict[str, Any], ...]:
    """The callers stored in a record's ``"st"``; what is not a frame is dropped (logged):
    the called wizard then ends, or returns to the callers that are left, on its own."""
    frames = stored if isinstance(stored, list) else [stored]
    kept = tuple(
        frame
        for frame in frames
        if isinstance(frame, dict)
        and isinstance(frame.get("w"), str)
        and isinstance(frame.get("s"), str)
        and isinstance(frame.get("d"), dict)
    )
    if len(kept) != len(frames):
        logger.error("a stored wizard record holds callers that are not frames: %r", stored)
    return kept


def frame_of(
    caller: RunningWizard, spec: StepSpec, history: list[dict[str, Any]], call: Call
) -> dict[str, Any]:
    """What the caller's own record holds, and how it called: its frame on the stack."""
    frame: dict[str, Any] = {
        "v": RECORD_VERSION,
        "w": caller.wizard_id,
        "fp": caller._fingerprint,
        "s": spec.name,
        "d": caller.data,
        "h": packed_history(history),
        "k": call.key,
    }
    if caller.schema_version != 1:
        frame["sv"] = caller.schema_version
    if caller._stored_locale is not None:  # its user's language, read back by _restore
        frame["l"] = caller._stored_locale
    if call.then is not None:
        frame["t"] = call.then.name
    if call.cancel == "child":
        frame["c"] = "child"
    return frame


def restore(
    cls: type[RunningWizard],
    record: StateContext,
    key: ConversationKey,
    bot: Bot,
    event: TelegramObject | None,
) -> RunningWizard | None:
    """The running wizard stored in ``record``, as this deploy's class sees it: a renamed
    state under its new name, data of an older ``schema_version`` migrated, a removed
    state moved to the fallback (``_moved``; written by the next write). ``None`` when
    ``record`` is not this wizard's, or was written by a newer deploy."""
    meta = record.kwargs
    version = meta.get("v")
    # the usual record (this version's, written by this class's deploy) is told at a glance
    if (version != RECORD_VERSION or type(version) is not int) and _record_version(meta) is None:
        # its layout may mean anything: not misread, treated as not running, kept as is
        logger.error(
            "%s: conversation %s is stored as wizard record version %r, and this code reads "
            "versions 1 to %d (written by a newer deploy?): it is treated as not running "
            "and left as it is",
            cls.wizard_id,
            key,
            meta.get("v"),
            RECORD_VERSION,
        )
        return None
    current = record.current_state
    if current is None or stored_wizard_id(record) != cls.wizard_id:
        return None
    schema = _schema_of(meta) if "sv" in meta else 1
    if schema is None or schema > cls.schema_version:
        logger.error(
            "%s: conversation %s holds data of schema_version %r, and this class is "
            "schema_version %d (written by a newer deploy?): it is treated as not running "
            "and left as it is",
            cls.wizard_id,
            key,
            meta.get("sv"),
            cls.schema_version,
        )
        return None
    stored = current.rpartition(":")[2]
    renamed = cls._renamed
    by_state = cls._by_state
    state_name = renamed.get(stored, stored) if renamed else stored
    data = dict(record.data)
    stored_history = meta.get("h")
    history: list[dict[str, Any]] = []
    rebuilt = schema < cls.schema_version
    if isinstance(stored_history, list):
        for packed in stored_history:
            if type(packed) is str:  # _unpacked's usual case, inlined
                state, plus, added = packed.partition("+")
                h = {"s": state, "x": added.split(",")} if plus else {"s": state}
            else:
                found = _unpacked(packed)
                if found is None:
                    continue
                h = found
            if renamed and h["s"] in renamed:
                h = {**h, "s": renamed[h["s"]]}
            if h["s"] not in by_state:
                rebuilt = True
            history.append(h)
    if rebuilt:
        data, history = rebuild(cls, data, history, schema)
    spec = by_state.get(state_name)
    moved = spec is None
    if spec is None:
        spec, data, history = fall_back(cls, data, history)
        logger.warning(
            "%s: stored state %r has no step any more; conversation %s goes on at %s",
            cls.wizard_id,
            stored,
            key,
            spec.name,
        )
    elif meta.get("fp") != cls._fingerprint:
        logger.info("%s: conversation %s was stored by another version", cls.wizard_id, key)
    wizard = cls(
        key=key,
        bot=bot,
        event=event,
        data=data,
        state=spec.state,
        history=history,
        # a moved conversation gets the fallback's prompt anew: the old one's buttons die
        # "n" and "a" are left out of most records (see park_meta)
        nonce=secrets.token_hex(4) if moved else str(meta["n"]) if "n" in meta else "",
        attempts=0 if moved else int(meta["a"]) if "a" in meta else 0,
    )
    if moved:
        wizard._moved = True
    elif not rebuilt and state_name == current:
        wizard._as_stored = True
    fingerprint = meta.get("fp", "")
    wizard._sent_fp = fingerprint if type(fingerprint) is str else str(fingerprint)
    stored_locale = meta.get("l")
    if isinstance(stored_locale, str):
        wizard._stored_locale = stored_locale
    if cls._edits:
        wizard.prompt_message_id = stored_message_id(meta)
    if "st" in meta:
        wizard._stack = read_stack(meta["st"])
    if spec.picker is not None and not moved:
        restore_picker(wizard, meta)
    return wizard


def rebuild(
    cls: type[RunningWizard], data: dict[str, Any], history: list[dict[str, Any]], schema: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``data`` and ``history`` after a deploy that removed steps or changed the data's
    schema: every version of the data ``/back`` can return to is migrated, and the
    answers given at removed steps are undone together with the answer before them."""
    # versions[k]: the data before answer k; versions[-1]: the data now
    versions = [data]
    for entry in reversed(history):
        versions.append(_undo(entry, versions[-1]))
    versions.reverse()
    if schema < cls.schema_version:
        versions = [migrated(cls, version, schema) for version in versions]
    kept = [k for k, entry in enumerate(history) if entry["s"] in cls._by_state]
    rebuilt = [
        _undo_entry(
            history[k]["s"],
            versions[k],
            versions[kept[i + 1]] if i + 1 < len(kept) else versions[-1],
        )
        for i, k in enumerate(kept)
    ]
    return versions[-1], rebuilt


def migrated(cls: type[RunningWizard], data: dict[str, Any], schema: int) -> dict[str, Any]:
    """``data`` of schema ``schema`` after ``cls.migrate``, which must return a dict."""
    migrated = cls.migrate(copy.deepcopy(data), schema)
    if not isinstance(migrated, dict):
        raise TypeError(
            f"{cls.__qualname__}.migrate returned {type(migrated).__name__}; return the "
            "data dict in the shape of the current schema_version"
        )
    return migrated


def fall_back(
    cls: type[RunningWizard], data: dict[str, Any], history: list[dict[str, Any]]
) -> tuple[StepSpec, dict[str, Any], list[dict[str, Any]]]:
    """Where a conversation stored at a removed state goes on: ``fallback``, else the
    latest step it answered, else the first step. A step it answered is gone back to as
    ``/back`` would (that answer and the later ones are undone)."""
    if cls.fallback is not None:
        target = cls.fallback.name
    elif history:
        target = history[-1]["s"]
    else:
        target = cls._steps[0].state.name
    if any(entry["s"] == target for entry in history):
        history = list(history)
        while history:
            entry = history.pop()
            data = _undo(entry, data)
            if entry["s"] == target:
                break
    return cls._by_state[target], data, history


def left_for_newer(cls: type[RunningWizard], meta: Mapping[str, Any]) -> bool:
    """Whether a stored conversation was written by a newer deploy (a layout or a data
    schema this one does not read): it is left pending for that deploy."""
    if _record_version(meta) is None:
        return True
    schema = _schema_of(meta)
    return schema is None or schema > cls.schema_version


def _stored_values(raw: Any) -> list[OptionValue] | None:
    """A stored list of option values, or ``None`` when it is not one (never trusted blindly)."""
    if not isinstance(raw, list):
        return None
    for value in raw:
        if not (isinstance(value, (str, int)) and not isinstance(value, bool)):
            return None
    return raw


def restore_picker(wizard: RunningWizard, meta: Mapping[str, Any]) -> None:
    """Read what a picker step stored with the conversation (shown values, picks)."""
    shown = _stored_values(meta.get("c"))
    if shown is not None:
        wizard._shown = shown
    picked = _stored_values(meta.get("p"))
    if picked:
        wizard._picked = tuple(picked)


def park_options(
    wizard: RunningWizard, spec: StepSpec, wake: tuple[float, int] | None
) -> tuple[float | None, dict[str, Any]]:
    """The ``timeout`` to register ``spec`` with and what its kwargs add: a step asked now,
    or (``wake``: its ``t0`` and the reminders sent) one re-parked by a reminder."""
    found = wizard._timing.get(spec.name)
    if found is None:
        return None, {}
    now = get_clock().now()
    t0, sent = wake if wake is not None else (now, 0)
    due = found.next_due(t0, sent)
    extra: dict[str, Any] = {"t0": t0, "r": sent} if found.reminders else {}
    if due is None:
        return None, extra
    return max(due - now, 0.001), extra


def storage_or_fail(cls: type[RunningWizard]) -> BaseStorage:
    """The storage of the Dispatcher handling the current update (each bot keeps its own
    conversations), else that of the latest ``setup``."""
    ctx = aiostep.current_update.get()
    if ctx is not None and ctx.listen.storage is not None:
        return ctx.listen.storage
    if cls._storage is None:
        raise RuntimeError(f"{cls.__qualname__}.setup(dp, ...) was not called")
    return cls._storage


async def park(self: RunningWizard, spec: StepSpec, *, step_only: bool = False) -> None:
    """Persist: the next step is ``spec``, with state, data and navigation, in one write
    (``step_only``: the step's kwargs alone, for a press that was not an answer)."""
    meta, timeout = park_meta(self, spec)
    key = self.key
    ctx = aiostep.current_update.get()
    # step_only: a press that is not an answer (a toggle, a page turn) shows the user is
    # there: the step's deadline starts again, as for a new prompt, and state and data stay
    if ctx is not None and ctx.key == key and ctx.listen.storage is not None:
        # the update's own conversation (every answer's): register_next_step takes the
        # update's key, storage and registry at once, as _target would give them
        await aiostep.register_next_step(
            key.user_id,
            f"{self.wizard_id}:{spec.name}",
            kwargs=meta,
            state=UNSET if step_only else spec.name,
            data=None if step_only else self.data,
            timeout=timeout,
            on_timeout=f"{self.wizard_id}:{TICK}" if timeout is not None else None,
        )
        return
    storage, registry = _target(type(self))
    await aiostep.register_next_step(
        key.user_id,
        f"{self.wizard_id}:{spec.name}",
        chat_id=key.chat_id,
        thread_id=key.thread_id,
        bot_id=key.bot_id,
        kwargs=meta,
        state=UNSET if step_only else spec.name,
        data=None if step_only else self.data,
        storage=storage,
        registry=registry,
        timeout=timeout,
        on_timeout=f"{self.wizard_id}:{TICK}" if timeout is not None else None,
    )


def _target(cls: type[RunningWizard]) -> tuple[BaseStorage, aiostep.StepRegistry | None]:
    """Where a step of ``cls`` is written, and where its name resolves: those of the
    Dispatcher handling the current update, else of the latest ``setup``."""
    ctx = aiostep.current_update.get()
    if ctx is not None and ctx.listen.storage is not None:
        return ctx.listen.storage, ctx.listen.registry
    listen = cls._listen
    if listen is None or listen.storage is None:
        raise RuntimeError(f"{cls.__qualname__}.setup(dp, ...) was not called")
    return listen.storage, listen.registry


async def clear(self: RunningWizard) -> None:
    """End the conversation: its whole record goes (the outcome of this update's claim,
    so it is refused if another worker took the step over meanwhile)."""
    if self._edits:
        await close(self, None)  # the last prompt's buttons go, unless closed already
    key = self.key
    ctx = aiostep.current_update.get()
    # the update's own conversation goes through its Listen's storage (as storage_or_fail
    # finds it), which unregister_steps takes without adapting it
    own = ctx is not None and ctx.key == key and ctx.listen.storage is not None
    await aiostep.unregister_steps(
        key.user_id,
        chat_id=key.chat_id,
        thread_id=key.thread_id,
        bot_id=key.bot_id,
        storage=None if own else storage_or_fail(type(self)),
        forget=True,
    )
