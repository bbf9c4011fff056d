"""Wizards that call wizards: a step returns ``self.call(Address, then=State.CONFIRM)``.

The called wizard (the child) runs in its caller's conversation with its own steps, texts and
commands. While it runs, the conversation's one record is the child's (its state, data and
navigation, as any wizard's) plus ``"st"``: the callers waiting for it, outermost first, each a
*frame* holding what the caller's own record held when it called (its wizard id, schema
fingerprint, the calling state's name, its data and history) and how the call was made (``"t"``
the ``then`` state, ``"k"`` the data key of the result, ``"c"`` what ``/cancel`` ends). A record
with no callers has no ``"st"`` at all: it is byte for byte what a wizard stored before calls
existed.

A frame is read back as the caller class's own record (`aiostep_dialogs.record.restore`), so a
redeploy treats a waiting caller as it treats a running wizard (``renamed`` states,
``schema_version`` and ``migrate``, ``fallback`` for a removed state), when the child returns
or is left.

``self.goto(OtherWizard)`` is a jump, not a call: the running wizard ends (its ``on_leave``
runs) and the other one starts in its place, in the same conversation (and, if the one that
left was itself called, the other one now returns to that caller).
"""

from __future__ import annotations

import copy
import enum
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiostep
from aiostep.exceptions import AiostepError
from aiostep.storage import StateContext
from aiostep_dialogs.record import _HISTORY_LIMIT, _undo, _undo_entry, clear, park, restore
from aiostep_dialogs.record import frame_of as _frame
from aiostep_dialogs.registry import is_installed, wizard_named
from aiostep_dialogs.render import send_prompt
from aiostep_dialogs.requests import PrivateChatOnlyError
from aiostep_dialogs.running import Call, Jump, is_wizard_class
from aiostep_dialogs.spec import Finish, new_nonce, overrides_hook
from aiostep_dialogs.ui import close, drop_press

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard
    from aiostep_dialogs.spec import StepSpec

__all__ = ["MAX_CALL_DEPTH", "Call", "CallDepthError", "Jump", "WizardNotSetUpError"]

logger = logging.getLogger("aiostep_dialogs")

#: How many callers may wait at once: the outermost wizard can call a wizard that calls one,
#: and so on, this many calls deep. It bounds the record (each caller's data is in it).
MAX_CALL_DEPTH = 4


class CallDepthError(AiostepError, RuntimeError):
    """A wizard called another one while ``MAX_CALL_DEPTH`` callers were already waiting."""


class WizardNotSetUpError(AiostepError, RuntimeError):
    """A wizard called (or jumped to) a wizard that is not set up on the update's Dispatcher."""


# -- checks, when a step makes the call -----------------------------------------------------------


def check_target(caller: RunningWizard, target: Any, what: str) -> type[RunningWizard]:
    """``target`` as a wizard class that can run in ``caller``'s conversation on this
    Dispatcher, or a specific error saying what to change."""
    here = type(caller).__qualname__
    if not is_wizard_class(target) or not target._steps:
        raise TypeError(
            f"{here}.{what}({target!r}): pass a Wizard subclass that declares steps "
            "(the class, not an instance)"
        )
    if target.scope != caller.scope:
        raise ValueError(
            f"{here}.{what}({target.__qualname__}): {target.__qualname__}.scope is "
            f"{target.scope!r} and {here}.scope is {caller.scope!r}; they share one "
            "conversation, so give them the same scope"
        )
    ctx = aiostep.current_update.get()
    installed = is_installed(
        ctx.listen if ctx is not None else type(caller)._listen, target.wizard_id
    )
    if not installed:
        raise WizardNotSetUpError(
            f"{here}.{what}({target.__qualname__}): {target.__qualname__} is not set up on this "
            f"Dispatcher; call {target.__qualname__}.setup(dp) (entry= may be left out for a "
            "wizard that is only ever called) next to "
            f"{here}.setup(dp, ...)"
        )
    return target


def make_call(
    caller: RunningWizard,
    wizard: Any,
    then: enum.Enum | None,
    key: str | None,
    cancel: str,
    data: Mapping[str, Any] | None,
) -> Call:
    """The checked ``Call`` that ``caller.call(...)`` returns."""
    here = type(caller).__qualname__
    child = check_target(caller, wizard, "call")
    if then is not None and (
        not isinstance(then, caller.State) or then.name not in caller._by_state
    ):
        raise ValueError(
            f"{here}.call({child.__qualname__}, then={then!r}): name a member of {here}.State "
            "that has a @step (or leave then= out: the step after the calling one)"
        )
    if cancel not in ("both", "child"):
        raise ValueError(
            f"{here}.call({child.__qualname__}, cancel={cancel!r}): cancel must be 'both' "
            "(/cancel in the called wizard ends the caller too) or 'child' (it returns to the "
            "calling step)"
        )
    name = child.wizard_id if key is None else key
    if not isinstance(name, str) or not name:
        raise ValueError(f"{here}.call({child.__qualname__}, key={key!r}): key must be a string")
    if len(caller._stack) >= MAX_CALL_DEPTH:
        chain = " -> ".join([str(f.get("w")) for f in caller._stack] + [caller.wizard_id])
        raise CallDepthError(
            f"{here}.call({child.__qualname__}): {len(caller._stack)} callers are already "
            f"waiting ({chain}), and calls nest at most MAX_CALL_DEPTH={MAX_CALL_DEPTH} deep; "
            "return to a caller first (self.finish(...)), or self.goto() the wizard instead"
        )
    if data is not None and not isinstance(data, Mapping):
        raise TypeError(f"{here}.call({child.__qualname__}, data=...): pass a dict")
    try:
        json.dumps(dict(data or {}))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{here}.call({child.__qualname__}, data={data!r}): the called wizard's data is "
            f"stored with the conversation, so it must hold JSON values ({exc})"
        ) from exc
    return Call(child, then, name, "child" if cancel == "child" else "both", dict(data or {}))


# -- the stack in a record -----------------------------------------------------------------------


def _caller_of(child: RunningWizard) -> tuple[RunningWizard | None, dict[str, Any]]:
    """The caller waiting for ``child`` (the top frame), as this deploy's class reads it, and
    the frame; ``None`` when that wizard is gone from this deploy or its frame is unreadable."""
    frame = child._stack[-1]
    ctx = aiostep.current_update.get()
    cls = wizard_named(ctx.listen if ctx is not None else type(child)._listen, frame["w"])
    caller = None
    if cls is not None:
        record = StateContext(current_state=frame["s"], data=frame["d"], kwargs=frame)
        caller = restore(cls, record, child.key, child.bot, child.event)
    if caller is None:
        logger.error(
            "conversation %s: the wizard %r that called %s cannot be restored (not defined by "
            "this deploy, or stored by a newer one); the conversation ends there",
            child.key,
            frame["w"],
            child.wizard_id,
        )
        return None, frame
    caller._stack = child._stack[:-1]
    caller.middleware_data = child.middleware_data
    return caller, frame


async def _show(wizard: RunningWizard, spec: StepSpec, previous: RunningWizard | None) -> None:
    """Park ``wizard`` at ``spec`` and send its prompt. If the prompt cannot be sent, the user
    never saw it: ``previous`` (the wizard at the step they did see) is parked again, or the
    conversation ends; then the error goes on to ``dp.errors``."""
    wizard.state = spec.state
    wizard.attempts = 0
    wizard.nonce = new_nonce(spec)
    await park(wizard, spec)
    try:
        await send_prompt(wizard, spec)
    except Exception as exc:
        try:
            if previous is None or isinstance(exc, PrivateChatOnlyError):
                # a request step in a group: every way on leads back to it (see enter)
                await drop_press(wizard)
                await clear(wizard)
            else:
                # its nonce as its prompt's buttons carry it, so they answer again
                if not previous.nonce:
                    previous.nonce = new_nonce(previous._spec())
                await drop_press(wizard)
                await park(previous, previous._spec())
        except Exception:
            logger.exception("%s: could not undo a step whose prompt failed", wizard.key)
        raise


def _calling(caller: RunningWizard, frame: Mapping[str, Any]) -> str:
    """The name, in this deploy, of the state whose step made the call (``renamed`` applied)."""
    stored = str(frame["s"])
    return caller._renamed.get(stored, stored)


def _at_calling_step(caller: RunningWizard, frame: Mapping[str, Any]) -> RunningWizard:
    """``caller`` moved back to the step that made the call, with that answer undone."""
    if caller._moved or not caller.history or caller.history[-1]["s"] != _calling(caller, frame):
        return caller  # the calling step was removed by a redeploy: it stays at its fallback
    entry = caller.history[-1]
    caller.history = caller.history[:-1]
    caller.data = _undo(entry, caller.data)
    caller.state = caller._by_state[entry["s"]].state
    return caller


async def _hand_message(giver: RunningWizard, taker: RunningWizard) -> None:
    """One-message mode across wizards: ``taker`` shows the next prompt in place of
    ``giver``. The message ``giver`` shows and the button press it was to answer with its next
    prompt go to ``taker``, which edits or replaces that message as its own; a ``taker``
    without ``"edit"`` steps sends its prompt, so the press is answered and the message loses
    its buttons here."""
    if not giver._edits:
        return  # its presses were answered when they came, and it keeps no message
    if taker._edits:
        taker._press, giver._press = giver._press, None
        taker.prompt_message_id = giver.prompt_message_id
        return
    await close(giver, None)


def _may_show_reply(*wizards: RunningWizard) -> bool:
    """Whether one of ``wizards`` may have left a reply keyboard on screen: the wizard the
    conversation goes on in removes it (`aiostep_dialogs.ui.closing_markup`)."""
    return any(wizard._uses_reply or wizard._shows_reply for wizard in wizards)


# -- what a step's outcome does ---------------------------------------------------------------


async def follow(
    caller: RunningWizard, spec: StepSpec, outcome: Call | Jump, before: dict[str, Any]
) -> None:
    """Run the ``Call`` or ``Jump`` that ``caller``'s step at ``spec`` returned; ``before`` is
    the caller's data before that answer."""
    seen = type(caller)(
        key=caller.key,
        bot=caller.bot,
        event=caller.event,
        data=before,
        state=spec.state,
        history=caller.history,
        nonce=caller.nonce,  # its prompt's buttons, should the callee's prompt fail
    )
    seen._stack = caller._stack
    seen.middleware_data = caller.middleware_data
    if isinstance(outcome, Jump):
        await caller._hook("on_leave", outcome.wizard)
        other = outcome.wizard(key=caller.key, bot=caller.bot, event=caller.event)
        other._stack = caller._stack  # a called wizard that jumps: the other one returns
        other.middleware_data = caller.middleware_data
        other._shows_reply = _may_show_reply(caller)
        await _hand_message(caller, other)
        other._keep_locale()
        await other._hook("on_start")
        await _show(other, other._steps[0], seen)
        return
    history = [*caller.history, _undo_entry(spec.name, before, caller.data)]
    child = outcome.wizard(
        key=caller.key, bot=caller.bot, event=caller.event, data=copy.deepcopy(dict(outcome.data))
    )
    child._stack = (*caller._stack, _frame(caller, spec, history[-_HISTORY_LIMIT:], outcome))
    child.middleware_data = caller.middleware_data
    child._shows_reply = _may_show_reply(caller)
    await _hand_message(caller, child)
    child._keep_locale()
    await child._hook("on_start")
    await _show(child, child._steps[0], seen)


async def give_back(child: RunningWizard, result: Any) -> None:
    """``child`` finished with ``result``: its ``on_finish`` runs, the result is stored in the
    caller's data, the caller's ``on_return`` runs and the caller goes on (at ``then``)."""
    frame = child._stack[-1]
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        # raised before anything is said or written: the step is offered again as it was
        raise TypeError(
            f"{type(child).__qualname__} finished with {result!r}, and the result of a called "
            f"wizard is stored in its caller's data ({frame['w']}, data[{frame.get('k')!r}]), "
            "so it must be a JSON value (str, int, float, bool, None, list, dict): convert "
            f"it before self.finish(...) ({exc})"
        ) from exc
    await child._hook("on_finish")
    caller, frame = _caller_of(child)
    if caller is None:
        await clear(child)
        return
    caller._shows_reply = _may_show_reply(child)
    await _hand_message(child, caller)
    calling = _calling(caller, frame)
    before = _undo(caller.history[-1], caller.data) if caller.history else None
    caller.data = {**caller.data, frame.get("k") or child.wizard_id: result}
    if before is not None and caller.history[-1]["s"] == calling:
        # /back from the step after the call undoes the result too
        caller.history = [*caller.history[:-1], _undo_entry(calling, before, caller.data)]
    outcome = await caller._hook("on_return", child, result)
    if isinstance(outcome, Finish):
        await finish(caller, outcome.result)
        return
    if outcome is None:
        target = _then(caller, frame)
        if target is None:
            await finish(caller, None)
            return
    elif isinstance(outcome, caller.State) and outcome.name in caller._by_state:
        target = caller._by_state[outcome.name]
    else:
        raise TypeError(
            f"{type(caller).__qualname__}.on_return returned {outcome!r}; return None (go to "
            "then=), a State member with a @step, or self.finish(...)"
        )
    # if the next prompt cannot be sent, the caller asks its calling step again
    fresh, _ = _caller_of(child)
    await _show(caller, target, None if fresh is None else _at_calling_step(fresh, frame))


def _then(caller: RunningWizard, frame: Mapping[str, Any]) -> StepSpec | None:
    """Where ``caller`` goes on after the call: ``then``, else the step after the calling one
    (``None``: the calling step was the last, the caller finishes)."""
    then = frame.get("t")
    if isinstance(then, str):
        name = caller._renamed.get(then, then)
        if name in caller._by_state:
            return caller._by_state[name]
        logger.warning(
            "%s: then=State.%s of a call has no step any more; %s goes on after the calling step",
            caller.wizard_id,
            then,
            caller.key,
        )
    calling = caller._by_state.get(_calling(caller, frame))
    if calling is None:
        return caller._spec()
    index = caller._steps.index(calling)
    return caller._steps[index + 1] if index + 1 < len(caller._steps) else None


async def back_to_caller(child: RunningWizard) -> None:
    """``/back`` on the called wizard's first step: the caller's calling step is asked again
    (the answer that made the call undone); the child ends with no hook."""
    caller, frame = _caller_of(child)
    if caller is None:
        await child.answer(child._text(child.texts.cannot_go_back))
        await send_prompt(child, child._spec())
        return
    caller = _at_calling_step(caller, frame)
    caller._shows_reply = _may_show_reply(child)
    await _hand_message(child, caller)
    await _show(caller, caller._spec(), child)


async def cancel(wizard: RunningWizard) -> None:
    """``/cancel`` in a called wizard: it ends, and so does each caller up the stack whose call
    said ``cancel="both"``; the first caller that said ``cancel="child"`` asks its calling step
    again. Every wizard that ends gets its ``on_cancel``; the default one (which says
    ``texts.cancelled``) speaks only for the wizard that ends last, so the user hears it once."""
    ended = [wizard]
    current = wizard
    resume: RunningWizard | None = None
    while current._stack:
        caller, frame = _caller_of(current)
        if caller is None:
            break
        if frame.get("c") == "child":
            resume = _at_calling_step(caller, frame)
            break
        ended.append(caller)
        current = caller
    if _may_show_reply(*ended):
        for going_on in (*ended, resume) if resume is not None else ended:
            going_on._shows_reply = True
    try:
        for index, gone in enumerate(ended):
            last = index == len(ended) - 1
            if last or overrides_hook(getattr(type(gone), "on_cancel", None)):
                await gone._hook("on_cancel")
    finally:
        if resume is None:
            await clear(wizard)
    if resume is not None:
        await _show(resume, resume._spec(), wizard)


async def give_way(running: RunningWizard) -> None:
    """Another wizard was started over a called one: the callers give way too (their
    ``on_cancel`` runs, quietly unless overridden, the outermost's last, as on ``/cancel``)."""
    chain = [running]
    while chain[-1]._stack:
        caller, _ = _caller_of(chain[-1])
        if caller is None:
            break
        chain.append(caller)
    if _may_show_reply(*chain):
        for gone in chain:
            gone._shows_reply = True
    for index, gone in enumerate(chain):
        if index == len(chain) - 1 or overrides_hook(getattr(type(gone), "on_cancel", None)):
            await gone._hook("on_cancel")


async def finish(self: RunningWizard, result: Any) -> None:
    """End the wizard with ``result``: ``on_finish`` then the record goes, or, for a called
    wizard, the result goes back to its caller."""
    self.result = result
    if self._stack:  # a called wizard: its result goes to its caller
        await give_back(self, result)
        return
    try:
        await self._hook("on_finish")
    finally:
        await clear(self)
