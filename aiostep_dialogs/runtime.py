"""The per-update machinery of a wizard: the compiled step that restores the wizard from its
record and handles the answer (validate, step method, advance), navigation (back, skip,
cancel), timeouts and reminders. It writes through `aiostep_dialogs.record` and shows
through `aiostep_dialogs.render`, both below it; a called wizard's return is in
`aiostep_dialogs.calls`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Mapping
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, cast

from aiogram import Bot
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import (
    CallbackQuery,
    Message,
    TelegramObject,
)

import aiostep
from aiostep.clock import get_clock
from aiostep.context import ListenLike
from aiostep.keys import ANYONE, ConversationKey, key_of, storage_key
from aiostep.storage import StateContext
from aiostep_dialogs import button_data
from aiostep_dialogs import picking as ch
from aiostep_dialogs import ui as _ui
from aiostep_dialogs import validators as v
from aiostep_dialogs.calls import back_to_caller, cancel, finish, follow
from aiostep_dialogs.choices import Picked
from aiostep_dialogs.i18n import (
    Localized,
)
from aiostep_dialogs.injection import call
from aiostep_dialogs.record import (
    _HISTORY_LIMIT,
    _undo,
    _undo_entry,
    clear,
    left_for_newer,
    park,
    restore,
    storage_or_fail,
    stored_wizard_id,
)
from aiostep_dialogs.registry import wizard_named
from aiostep_dialogs.render import say_error, send_prompt
from aiostep_dialogs.requests import PrivateChatOnlyError
from aiostep_dialogs.running import Call, Jump
from aiostep_dialogs.spec import Finish, StepSpec, new_nonce
from aiostep_dialogs.ui import quietly as _quietly
from aiostep_dialogs.validators import ValidationError, Validator

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard

logger = logging.getLogger("aiostep_dialogs")


#: what a step with no validators and no choices takes: any text (made once, not per update)
_ANY_TEXT: tuple[Validator, ...] = (v.text(),)
_ATOMIC = frozenset({str, int, float, bool, type(None)})


def copy_data(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a wizard's ``data`` that a step method cannot change through ``data``:
    shallow when every value is a str, number, bool or ``None`` (the usual case, and what a
    deep copy would give), deep otherwise."""
    for value in data.values():
        if type(value) not in _ATOMIC:
            return copy.deepcopy(data)
    return dict(data)


def key_for(cls: type[RunningWizard], event: TelegramObject) -> ConversationKey | None:
    """The conversation this wizard runs in for ``event`` (per user, or chat-wide)."""
    ctx = aiostep.current_update.get()
    # the update being routed: its key is made (Listen knows its bot: event.bot is slow)
    key = ctx.key if ctx is not None and ctx.event is event else key_of(event)
    if key is not None and cls.scope == "chat":
        return key._replace(user_id=ANYONE)
    return key


async def sender_has_own_wizard(
    cls: type[RunningWizard], event: TelegramObject, seen: aiostep.SeenRecords | None
) -> bool:
    """Whether the sender of ``event`` runs a wizard of their own in this chat (routing
    already read that record: no round trip)."""
    own = key_of(event)
    if own is None:
        return False
    storage = storage_or_fail(cls)
    if seen is not None and seen.storage is storage:
        record = await seen.read(storage_key(own))
    else:
        record = await storage.read(storage_key(own))
    return (
        record is not None
        and record.callback is not None
        and wizard_named(listen_of(cls), stored_wizard_id(record)) is not None
    )


def listen_of(cls: type[RunningWizard]) -> ListenLike | None:
    """The Listen of the Dispatcher handling the current update, else that of ``cls``'s
    latest ``setup`` (``None`` before any)."""
    ctx = aiostep.current_update.get()
    if ctx is not None and ctx.listen.storage is not None:
        return ctx.listen
    return cls._listen


def restore_stepping(
    cls: type[RunningWizard],
    record: StateContext,
    key: ConversationKey,
    bot: Bot,
    event: TelegramObject,
) -> RunningWizard | None:
    """The wizard a claimed step runs, or ``None`` (nothing to do). A newer deploy's
    record is left pending for it: ``SkipHandler`` sends the update on to the handlers."""
    wizard = restore(cls, record, key, bot, event)
    if wizard is None and left_for_newer(cls, record.kwargs):
        raise SkipHandler()
    return wizard


def _restored_for(
    cls: type[RunningWizard],
    record: StateContext,
    key: ConversationKey,
    event: Message | CallbackQuery,
    data: dict[str, Any],
) -> RunningWizard | None:
    """The wizard a compiled step runs for ``event``, holding the update's handler ``data``."""
    wizard = restore_stepping(cls, record, key, data["bot"], event)
    if wizard is not None:
        wizard.middleware_data = data
    return wizard


def compile_step(cls: type[RunningWizard], spec: StepSpec) -> Callable[..., Awaitable[None]]:
    """The callback registered for ``spec``'s step: restore the wizard and handle the update."""

    async def on_update(
        event: Message | CallbackQuery,
        step_context: StateContext,
        conversation: ConversationKey,
        **data: Any,
    ) -> None:
        # restore_stepping and _restored_for, inlined: this is every answer's path
        wizard = restore(cls, step_context, conversation, data["bot"], event)
        if wizard is None:
            if left_for_newer(cls, step_context.kwargs):
                raise SkipHandler()
            return
        wizard.middleware_data = data
        if step_context.claim is not None and isinstance(event, Message):
            # The process that ran this step last died before its outcome (the step was
            # offered again): the user's message it was handling is lost, and this one
            # may not be an answer ("hello?"). Ask again, so they know what is asked.
            await park_and_prompt(wizard, spec, error=cls.texts.interrupted)
            return
        await handle(wizard, spec, event)

    on_update.__qualname__ = f"{cls.__qualname__}.<step {spec.state.name}>"
    return on_update


def compile_moved(cls: type[RunningWizard]) -> Callable[..., Awaitable[None]]:
    """The step of a conversation stored at a state this deploy removed: it goes on at
    the fallback, whose prompt is sent (the update answered a question that is gone)."""

    async def on_moved(
        event: Message | CallbackQuery,
        step_context: StateContext,
        conversation: ConversationKey,
        **data: Any,
    ) -> None:
        wizard = _restored_for(cls, step_context, conversation, event, data)
        if wizard is None:
            return
        spec = wizard._spec()
        if not wizard._moved:  # its state exists after all (stored under another name)
            await handle(wizard, spec, event)
            return
        if isinstance(event, CallbackQuery):
            stale = (await wizard._language()).say(cls.texts.stale_button)
            await _quietly(event.answer(stale))
        wizard._moved = False
        await park_and_prompt(wizard, spec)

    on_moved.__qualname__ = f"{cls.__qualname__}.<moved step>"
    return on_moved


async def settle(self: RunningWizard) -> None:
    """Store where a restored conversation was moved (its stored state was removed) before
    its prompt is shown, so the user's answer reaches that step."""
    if self._moved:
        self._moved = False
        await park(self, self._spec())


async def load(
    cls: type[RunningWizard],
    key: ConversationKey,
    bot: Bot,
    event: TelegramObject | None,
    seen: aiostep.SeenRecords | None = None,
) -> RunningWizard | None:
    """The wizard running in conversation ``key`` (from the record routing already read, if
    it did), settled where a redeploy moved it; ``None`` when none runs there."""
    storage = storage_or_fail(cls)
    if seen is not None and seen.storage is storage:
        record = await seen.read(storage_key(key))
    else:
        record = await storage.read(storage_key(key))
    if record is None or record.callback is None:
        return None
    wizard = restore(cls, record, key, bot, event)
    if wizard is not None:
        await settle(wizard)
    return wizard


async def handle(self: RunningWizard, spec: StepSpec, event: Message | CallbackQuery) -> None:
    """Handle an answer (a message or a button press) to ``spec``'s step."""
    raw: Any = event
    if isinstance(event, CallbackQuery):
        if button_data.sent_elsewhere(self, event.data):
            # another conversation's button (a chat-wide wizard's, say): routed on as if
            # this conversation had nothing pending; the step stays as it was
            raise aiostep.NotThisConversation()
        value: Any
        if spec.picker is not None:
            value = await ch.on_press(self, spec, event)
            if value is None:
                return  # a toggle, a page turn or a refused press: answered there
        else:
            value = pressed(self, spec, event.data)
            if value is None:
                refused = await self._said(button_data.refusal(self.texts, event))
                await _quietly(event.answer(refused))
                # the claim took the step; put it back unchanged
                await park(self, spec, step_only=self._as_stored)
                return
        if self._edits:
            self._press = event  # answered, and its message edited, with the outcome
        else:
            await _quietly(event.answer())
            if isinstance(event.message, Message):
                await _quietly(event.message.edit_reply_markup(reply_markup=None))
        raw = value
    snapshot = copy_data(self.data)
    try:
        if spec.picker is None and spec.choices is None and spec.request is None:
            # the common step, as validate() and v.run() do it, two coroutines fewer
            value = raw
            for validator in spec.validate or _ANY_TEXT:
                result = validator(value)
                # a plain value (what most validators return) needs no awaitable check,
                # whose ABC test is a Python call
                value = (
                    result if type(result) in _ATOMIC or not isawaitable(result) else await result
                )
        else:
            value = await validate(self, spec, raw)
        needs = spec.needs  # injection.call, inlined; a step method is async (compiling)
        outcome = await (
            spec.method(self, value, **needs.kwargs(self.middleware_data))
            if needs.required or needs.optional or needs.everything  # bool(needs), no call
            else spec.method(self, value)
        )
    except ValidationError as exc:
        self.data = snapshot  # rejected input is not stored
        await reject(self, spec, exc)
        return
    except Exception:
        # A bug in a validator or step method: the claim took the step, so put it back as
        # it was (the user can answer again) and let aiogram's error handlers see it.
        self.data = snapshot
        await park(self, spec, step_only=self._as_stored)
        await _ui.drop_press(self)
        if isinstance(event, CallbackQuery) and not self._edits:
            # the press took the keyboard off its message: it goes back, to press again
            message = event.message
            if isinstance(message, Message) and message.reply_markup is not None:
                await _quietly(message.edit_reply_markup(reply_markup=message.reply_markup))
        raise
    await advance(self, spec, outcome, snapshot)


def pressed(self: RunningWizard, spec: StepSpec, data: str | None) -> str | None:
    """The choice value of a pressed button, or ``None`` if it is stale, forged or another
    conversation's."""
    if not spec.choices:
        return None
    press = button_data.parse(data)
    if press is None or not button_data.is_current(self, press):
        return None
    index = button_data.index_of(press.code, "", len(spec.choices))
    return None if index is None else list(spec.choices)[index]


async def validate(self: RunningWizard, spec: StepSpec, raw: Any) -> Any:
    """The value of ``raw`` after ``spec``'s validators (and its choices or request check)."""
    if spec.picker is not None:
        value = raw.value if isinstance(raw, Picked) else await ch.typed(self, spec, raw)
        return await v.run(spec.validate, value)
    if spec.choices is None and spec.request is None:
        return await v.run(spec.validate or _ANY_TEXT, raw)  # the common step: no list made
    chain: list[Validator] = []
    if spec.choices is not None:
        if spec.localized:
            await self._language()
        labels = self._choice_labels(spec) if spec.localized else spec.choices
        chain.append(v.choice(cast("Mapping[str, str]", labels)))
    elif not spec.validate:
        # a request step takes only the button's answer, unless it says otherwise
        request = spec.request is not None and self._requests[spec.name]
        chain.append(request.validator if request else v.text())
    chain.extend(spec.validate)
    return await v.run(chain, raw)


async def reject(self: RunningWizard, spec: StepSpec, reason: ValidationError | Localized) -> None:
    """An answer was refused for ``reason``: ask again, or give up after ``max_attempts``."""
    self.attempts += 1
    limit = spec.max_attempts if spec.max_attempts is not None else self.max_attempts
    if limit is not None and self.attempts >= limit:
        try:
            await self._hook("on_give_up")
        finally:
            await clear(self)
        return
    if self._press is not None and spec.name in self._edit_states:
        # a refused press: its reason as a toast; the message and its buttons stay
        await park(self, spec)
        said = await say_error(self, spec.error if spec.error is not None else reason)
        await _ui.refuse_press(self, said)
        return
    self.nonce = new_nonce(spec)
    if spec.picker is not None:
        await ch.prepare(self, spec)
    error = spec.error if spec.error is not None else reason
    if not self._edits and self._as_stored:
        # the state is the same, the data back to what the record holds: only the step's
        # kwargs (attempts, nonce) are written, the data is not checked and encoded again
        await park(self, spec, step_only=True)
        await send_prompt(self, spec, error)
        return
    await park_and_prompt(self, spec, error=error)


async def advance(
    self: RunningWizard, spec: StepSpec, outcome: Any, before: dict[str, Any]
) -> None:
    """Go where ``outcome`` says; ``before`` is the data as it was before this answer,
    kept in the history so ``/back`` undoes the answer too."""
    if isinstance(outcome, Finish):
        await finish(self, outcome.result)
        return
    if outcome is None:
        after = self._after.get(spec.name)
        if after is None:
            await finish(self, None)
            return
        target = after
    elif isinstance(outcome, self.State) and outcome.name in self._by_state:
        target = self._by_state[outcome.name]
    elif isinstance(outcome, self.State):
        raise ValueError(
            f"{type(self).__qualname__}.{spec.method.__name__} returned "
            f"State.{outcome.name}, which has no @step; declare one or return another state"
        )
    else:
        if isinstance(outcome, (Call, Jump)):
            await follow(self, spec, outcome, before)
            return
        raise TypeError(
            f"{type(self).__qualname__}.{spec.method.__name__} returned {outcome!r}; "
            "return None, a State member, self.finish(...), self.call(...) or "
            "self.goto(...)"
        )
    history = self.history
    self.history = [*history, _undo_entry(spec.name, before, self.data)]
    if len(self.history) > _HISTORY_LIMIT:
        self.history = self.history[-_HISTORY_LIMIT:]
    await enter(self, target, back_to=(spec, before, history))


async def enter(
    self: RunningWizard,
    spec: StepSpec,
    *,
    back_to: tuple[StepSpec, dict[str, Any], list[dict[str, Any]]] | None = None,
) -> None:
    """Move to ``spec`` and send its prompt. If the prompt cannot be sent, the user never
    saw that question: go back to ``back_to`` (the step they did see, with the data and
    history before their answer; without it the conversation ends), then let the error
    reach ``dp.errors``. The user's next message, or a press of that prompt's buttons,
    answers the question they saw."""
    # what the seen prompt's buttons carry, kept for going back to it
    seen_nonce, seen_pick = self.nonce, None
    self.state = spec.state
    self.attempts = 0
    self.nonce = new_nonce(spec)
    if self._shown is not None or self._picked:
        seen_pick = (self._shown, self._picked, self._labels)
        self._shown, self._picked, self._labels = None, (), None  # the previous step's
    if spec.picker is not None:
        await ch.prepare(self, spec)  # the options to show, stored by the park below
    if not self._edits:
        await park(self, spec)
    try:
        await send_prompt(self, spec, park=True)
    except Exception as exc:
        try:
            if back_to is None or isinstance(exc, PrivateChatOnlyError):
                # a request step in a group: every way on leads back to it, and the user
                # was told to use a private chat; the conversation here ends
                await _ui.drop_press(self)
                await clear(self)
            else:
                seen, self.data, self.history = back_to
                self.state, self.nonce = seen.state, seen_nonce
                if seen_pick is not None:
                    self._shown, self._picked, self._labels = seen_pick
                else:
                    self._shown, self._picked, self._labels = None, (), None
                await _ui.drop_press(self)  # one-message mode: it was to show the outcome
                await park(self, seen)
        except Exception:
            logger.exception("%s: could not undo a step whose prompt failed", self.key)
        raise


async def park_and_prompt(
    self: RunningWizard, spec: StepSpec, error: ValidationError | Localized | None = None
) -> None:
    """Store ``spec`` as the next step and show its prompt (in one-message mode the prompt
    first: its message id is part of the write, still this update's claim's outcome)."""
    if not self._edits:
        await park(self, spec)
    await send_prompt(self, spec, error, park=True)


async def time_out(self: RunningWizard) -> None:
    """The step's timeout passed: go where ``on_timeout`` says (a failing hook ends the
    conversation, which nobody is answering, and the error is logged). In a called wizard
    the default (``None``) cancels through the stack, so every caller's ``on_cancel`` runs,
    as on ``/cancel``."""
    try:
        outcome = await self._hook("on_timeout")
    except Exception:
        await clear(self)
        raise
    if outcome is None:
        await self._language()
        if self._stack:
            try:
                await self.answer(self._text(self.texts.timed_out))
            finally:
                await cancel(self)
            return
        try:
            await self.answer_in_place(self._text(self.texts.timed_out))
        finally:
            await clear(self)
    elif isinstance(outcome, Finish):
        await finish(self, outcome.result)
    elif isinstance(outcome, self.State) and outcome.name in self._by_state:
        await enter(self, self._by_state[outcome.name])
    else:
        await clear(self)
        raise TypeError(
            f"{type(self).__qualname__}.on_timeout returned {outcome!r}; return None, a "
            "State member with a @step, or self.finish(...)"
        )


async def do_back(self: RunningWizard) -> None:
    """The back command: undo the last answer and ask that step again."""
    if not self.history and self._stack:
        await back_to_caller(self)
        return
    if not self.history:
        await self.answer(self._text(self.texts.cannot_go_back))
        await send_prompt(self, self._spec())
        return
    back_to = (self._spec(), self.data, list(self.history))
    entry = self.history.pop()
    self.data = _undo(entry, self.data)  # the answer given there is undone with it
    await enter(self, self._by_state[entry["s"]], back_to=back_to)


async def do_cancel(self: RunningWizard) -> None:
    """The cancel command: ``on_cancel``, then the conversation ends."""
    if self._stack:
        await cancel(self)
        return
    try:
        await self._hook("on_cancel")
    finally:
        await clear(self)


async def do_skip(self: RunningWizard) -> None:
    """The skip command: an optional step gets its ``default``."""
    spec = self._spec()
    if not spec.optional:
        await self.answer(self._text(self.texts.cannot_skip))
        await send_prompt(self, spec)
        return
    snapshot = copy_data(self.data)
    try:
        outcome = await call(spec.method, spec.needs, self.middleware_data, self, spec.default)
    except ValidationError as exc:
        self.data = snapshot
        await reject(self, spec, exc)
        return
    await advance(self, spec, outcome, snapshot)


def compile_tick(cls: type[RunningWizard]) -> Callable[..., Any]:
    """The registered ``on_timeout`` of the wizard's steps: send the reminder that is due, or
    time the step out (``on_timeout``)."""

    async def on_deadline(
        bot: Bot, conversation: ConversationKey, step_context: StateContext
    ) -> None:
        wizard = restore(cls, step_context, conversation, bot, None)
        if wizard is None:
            return
        ctx = aiostep.current_update.get()
        by_update = ctx is not None and ctx.event is not None
        # handler data: the update's, else what the scheduler has (the Dispatcher's
        # workflow data and the bot), so prompts and hooks that ask for ``db`` still get it
        wizard.middleware_data = ctx.data if ctx is not None else {"bot": bot}
        await settle(wizard)
        spec = wizard._spec()
        meta = step_context.kwargs
        found = cls._timing.get(spec.name)
        if found is None:
            # a deadline stored before a deploy that took this step's timeout away: the step
            # stays as it is, with no deadline, instead of timing out
            await park(wizard, spec)
            return
        sent, t0 = meta.get("r"), meta.get("t0")
        now = get_clock().now()
        if (
            isinstance(sent, int)
            and isinstance(t0, (int, float))
            and not found.timed_out(float(t0), now)
        ):
            if sent >= len(found.reminders):
                # stored before a deploy that made the timeout longer: wait for the new one
                wizard._wake = (float(t0), sent)
                await park(wizard, spec)
                return
            # after a restart several reminders may be overdue: one is sent, for all of them
            wizard._wake = (float(t0), found.sent_by(float(t0), now, sent + 1))
            if by_update:  # an answer that came just as the reminder was due needs none
                await park(wizard, spec)
                return
            # the prompt again, as a new message under the reminder (in one-message mode the
            # old prompt loses its keyboard, as after a typed answer, and the new id is stored)
            text = spec.reminder if spec.reminder is not None else cls.texts.reminder
            await park_and_prompt(wizard, spec, error=text)
            return
        await time_out(wizard)

    on_deadline.__qualname__ = f"{cls.__qualname__}.<deadline>"
    return on_deadline
