"""One-message mode: a wizard whose prompts replace each other in one chat message.

A wizard (or one of its steps) with ``ui = "edit"`` shows the prompt that follows a button
press by editing the pressed message in place (the press is answered, the keyboard replaced).
A typed answer, a command or a restart of the wizard sends the prompt as a new message and
takes the keyboard off the previous one, whose id the wizard keeps in its stored record
(``"m"``, one int, only for wizards that have an ``"edit"`` step). A message Telegram no longer
lets the bot edit (deleted, too old) is replaced by a new one. Nothing here runs for a wizard
without ``"edit"`` steps.

The functions take the running wizard: they read its ``bot``, ``key``, ``parse_mode``,
``prompt_message_id`` and the pending press, and update the last two.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, Message, ReplyKeyboardRemove
from aiogram.utils.formatting import Text

from aiostep_dialogs.spec import UI

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard

__all__ = ["UI"]  # declared in aiostep_dialogs.spec; named here too, where it was first

logger = logging.getLogger("aiostep_dialogs")

#: the most characters Telegram shows in a toast (answerCallbackQuery's text)
_TOAST_LIMIT = 200


def stored_message_id(meta: Mapping[str, Any]) -> int | None:
    """The prompt message id a wizard's stored kwargs hold (``"m"``), if it is one."""
    value = meta.get("m")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _editable(markup: Any) -> bool:
    """Whether an edit can carry ``markup``: only an inline keyboard (or none) can."""
    return markup is None or isinstance(markup, InlineKeyboardMarkup)


async def _edit(wizard: RunningWizard, message_id: int, text: str | Text, markup: Any) -> bool:
    """Edit the wizard's message ``message_id`` to ``text`` and ``markup``. ``True`` when the
    message now shows them (an edit that changes nothing included), ``False`` when Telegram
    refused the edit (deleted, too old, not editable): the caller sends a new message."""
    if isinstance(text, Text):
        content = text.as_kwargs()
    else:
        content = {"text": text, "parse_mode": wizard.parse_mode}
    try:
        await wizard.bot.edit_message_text(
            chat_id=wizard.key.chat_id, message_id=message_id, reply_markup=markup, **content
        )
    except TelegramBadRequest as exc:
        if "message is not modified" in exc.message:
            return True
        logger.info(
            "%s: message %d could not be edited (%s); sending a new one",
            wizard.key,
            message_id,
            exc.message,
        )
        return False
    return True


async def _clear_keyboard(wizard: RunningWizard, message_id: int) -> None:
    """Take the inline keyboard off the wizard's message ``message_id``. Cosmetic: a message
    that has none, is gone or is too old is left as it is."""
    try:
        await wizard.bot.edit_message_reply_markup(
            chat_id=wizard.key.chat_id, message_id=message_id, reply_markup=None
        )
    except TelegramBadRequest as exc:
        logger.debug("%s: keyboard of message %d left: %s", wizard.key, message_id, exc.message)
    except TelegramAPIError as exc:
        logger.warning("%s: keyboard of message %d left: %s", wizard.key, message_id, exc)


async def _take_press(wizard: RunningWizard, toast: str | None = None) -> int | None:
    """Answer the button press being handled, if any (with ``toast``); the id of the message
    the wizard shows now: the pressed one, else the stored one."""
    press, wizard._press = wizard._press, None
    current = wizard.prompt_message_id
    if press is None:
        return current
    try:
        await press.answer(toast)
    except TelegramAPIError as exc:
        logger.warning("%s: button press not answered: %s", wizard.key, exc)
    if isinstance(press.message, Message):
        return press.message.message_id
    return current  # too old for Telegram to include it


async def show_prompt(wizard: RunningWizard, text: str | Text, markup: Any, *, edit: bool) -> bool:
    """Show a prompt of a wizard that has ``"edit"`` steps; whether its stored message id
    changed (the caller stores it).

    ``edit``: the prompt's step is ``"edit"``. After a button press it replaces the pressed
    message; otherwise (or if that fails) it is sent, and the previous prompt loses its
    keyboard.
    """
    stored = wizard.prompt_message_id
    pressed = wizard._press is not None
    current = await _take_press(wizard)
    if (
        edit
        and pressed
        and current is not None
        and _editable(markup)
        and await _edit(wizard, current, text, markup)
    ):
        wizard.prompt_message_id = current
        return current != stored
    message = await wizard.answer(text, reply_markup=markup)
    if current is not None and current != message.message_id:
        await _clear_keyboard(wizard, current)
    wizard.prompt_message_id = message.message_id
    return message.message_id != stored


async def sent_anew(wizard: RunningWizard, message: Message) -> bool:
    """A prompt of a wizard with ``"edit"`` steps that could only be sent as a new message
    (a photo, say: a text message cannot be edited into one): the press is answered, the
    previous prompt loses its keyboard, and ``message`` is the prompt's message now. Whether
    the stored message id changed (the caller stores it)."""
    stored = wizard.prompt_message_id
    current = await _take_press(wizard)
    if current is not None and current != message.message_id:
        await _clear_keyboard(wizard, current)
    wizard.prompt_message_id = message.message_id
    return message.message_id != stored


async def refuse_press(wizard: RunningWizard, reason: str) -> bool:
    """Answer a rejected button press of an ``"edit"`` step with a toast saying ``reason``,
    leaving the message (and its buttons) as it is; ``False`` if no press is being handled."""
    if wizard._press is None:
        return False
    if len(reason) > _TOAST_LIMIT:  # Telegram refuses a longer toast: the reason would be lost
        reason = reason[: _TOAST_LIMIT - 1] + "…"
    await _take_press(wizard, reason)
    return True


async def close(wizard: RunningWizard, text: str | Text | None) -> None:
    """End a wizard's message: edit it to ``text`` without buttons (sent as a new message if it
    cannot be edited), or with ``text=None`` only take its buttons off. Runs once: the wizard
    has no message afterwards."""
    current = await _take_press(wizard)
    wizard.prompt_message_id = None
    if text is None:
        if current is not None:
            await _clear_keyboard(wizard, current)
        return
    closing = closing_markup(wizard)  # a reply keyboard is removed only by a new message
    if current is not None and closing is None and await _edit(wizard, current, text, None):
        return
    await wizard.answer(text, reply_markup=closing)
    if current is not None:
        await _clear_keyboard(wizard, current)


async def drop_press(wizard: RunningWizard) -> None:
    """Answer a pending button press without showing anything (its step failed)."""
    if wizard._press is not None:
        await _take_press(wizard)


async def quietly(call: Awaitable[Any]) -> None:
    """Run a cosmetic Bot API call (toast, removing buttons); its failure must not cost input."""
    try:
        await call
    except TelegramAPIError as exc:
        logger.warning("cosmetic Bot API call failed: %s", exc)


def closing_markup(self: RunningWizard) -> ReplyKeyboardRemove | None:
    """What removes a reply keyboard the wizard (or one that handed it the conversation in
    this update) showed (``None`` when it shows none)."""
    return ReplyKeyboardRemove() if self._uses_reply or self._shows_reply else None


async def answer_in_place(wizard: RunningWizard, text: str | Text) -> None:
    """The body of [`Wizard.answer_in_place`][aiostep_dialogs.Wizard.answer_in_place]: say a
    closing ``text``, in the wizard's message in one-message mode, else as a new message."""
    if wizard._edits:
        await close(wizard, text)
    else:
        await wizard.answer(text, reply_markup=closing_markup(wizard))
