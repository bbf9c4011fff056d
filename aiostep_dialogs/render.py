"""What a wizard shows: a step's prompt text (`render`, with the progress line and escaping),
its keyboard (`markup`), and sending it (`send_prompt`; one-message mode and media prompts
are in `aiostep_dialogs.ui` and `aiostep_dialogs.media`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.formatting import Text

from aiostep_dialogs import button_data
from aiostep_dialogs import choices as ch
from aiostep_dialogs import ui as _ui
from aiostep_dialogs.formatting import Markup, effective_parse_mode, escape, fill
from aiostep_dialogs.i18n import (
    LazyProxy,
    Localized,
    is_localized,
)
from aiostep_dialogs.injection import call
from aiostep_dialogs.media import send_media_prompt
from aiostep_dialogs.spec import StepSpec
from aiostep_dialogs.validators import ValidationError

if TYPE_CHECKING:
    from aiostep_dialogs.wizard import Wizard

logger = logging.getLogger("aiostep_dialogs")
_BUTTON_PREFIX = button_data.BUTTON_PREFIX


async def render(self: Wizard, spec: StepSpec) -> str | Text:
    """The prompt of ``spec``: markup for the wizard's parse mode, or a formatting node.

    Values formatted into a template come from users: they are escaped. ``texts.progress``
    is plain text like the other ``Texts``.
    """
    mode = effective_parse_mode(self.bot, self.parse_mode)
    prompt = spec.prompt
    body: str | Text
    if isinstance(prompt, Text):
        body = prompt
    elif spec.localized:  # a callable prompt too: it may read self.locale
        body = await self._render_localized(spec, mode)
    else:
        body = fill(cast(str, prompt), self.data, mode)
    if not self.show_progress:
        return body if isinstance(body, Text) else str(body)
    index = self._steps.index(spec) + 1
    language = await self._language()
    progress = language.say(self.texts.progress, index=index, total=len(self._steps))
    if isinstance(body, Text):
        return Text(progress, "\n", body)
    if isinstance(self.texts.progress, Markup):
        progress = Markup(progress)
    return f"{escape(progress, mode)}\n{body}"


async def render_localized(self: Wizard, spec: StepSpec, mode: str | None) -> str | Text:
    """A prompt in the user's language: a template from a ``{locale: template}`` dict or a
    lazy string (filled like a string prompt), or what a callable returns."""
    language = await self._language()
    prompt = spec.prompt
    if callable(prompt) and not isinstance(prompt, LazyProxy):
        with language.speaking():  # aiogram's gettext(...) in it answers in this language
            body = await call(prompt, spec.prompt_needs, self.middleware_data, self)
        return body if isinstance(body, Text) else str(body)
    assert not isinstance(prompt, Text)
    return fill(language.say(prompt), self.data, mode)


def choice_labels(self: Wizard, spec: StepSpec) -> dict[str, str] | None:
    """``spec``'s choices with their labels in the user's language (worked out by the
    caller: ``await self._language()`` first)."""
    if spec.choices is None:
        return None
    return {value: self._say(label) for value, label in spec.choices.items()}


def closing_markup(self: Wizard) -> ReplyKeyboardRemove | None:
    """What removes a reply keyboard the wizard showed (``None`` when it shows none)."""
    return ReplyKeyboardRemove() if self._uses_reply else None


def markup(self: Wizard, spec: StepSpec) -> Any:
    """The keyboard of ``spec``'s prompt: choices, a request button, or the closing markup."""
    if spec.picker is not None:
        return ch.markup(self, spec)
    if spec.request is not None:
        return self._requests[spec.state.name].markup_for(self)
    if not spec.choices:
        return self._closing_markup()
    choices = self._choice_labels(spec) if spec.localized else spec.choices
    labels = cast("list[str]", list((choices or {}).values()))  # plain, or said
    if spec.keyboard == "reply":
        return ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=label)] for label in labels],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    buttons = [
        InlineKeyboardButton(
            text=label,
            callback_data=f"{_BUTTON_PREFIX}:{self.key.user_id}:{self._fingerprint}:"
            f"{self.nonce}:{i}",
        )
        for i, label in enumerate(labels)
    ]
    one_row = len(buttons) <= 3 and sum(len(label) for label in labels) <= 30
    rows = [buttons] if one_row else [[b] for b in buttons]
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def send_prompt(
    self: Wizard,
    spec: StepSpec,
    error: ValidationError | Localized | None = None,
    *,
    park: bool = False,
) -> None:
    """Show the prompt of ``spec``. One-message mode: with ``park`` (the caller did not
    store the step), or when the prompt's message changed, the step is stored after it."""
    if spec.picker is not None:
        await ch.before_send(self, spec)
    if spec.localized or spec.picker is not None or spec.request is not None:
        await self._language()  # its labels are said in it (by the sync _markup)
    prompt = await self._render(spec)
    # a rejection's reason, ``error=`` or ``texts.interrupted``, in the user's language
    reason = None if error is None else await self._say_error(error)
    if spec.media is not None:
        sent = await send_media_prompt(self, spec.media, prompt, reason, self._markup(spec))
        # one-message mode: a medium is always a new message (text cannot become one)
        if self._edits and (await _ui.sent_anew(self, sent) or park):
            await self._park(spec)
        return
    if reason:
        # A rejection's reason is plain text: it often quotes what the user sent.
        if isinstance(prompt, Text):
            prompt = Text(reason, "\n\n", prompt)
        else:
            mode = effective_parse_mode(self.bot, self.parse_mode)
            prompt = f"{escape(reason, mode)}\n\n{prompt}"
    if not self._edits:
        await self.answer(prompt, reply_markup=self._markup(spec))
        return
    edit = spec.state.name in self._edit_states
    if await _ui.show_prompt(self, prompt, self._markup(spec), edit=edit) or park:
        await self._park(spec)


async def say_error(self: Wizard, error: ValidationError | Localized) -> str:
    """A rejection's reason (or ``error=``, ``texts.interrupted``) in the user's language."""
    if isinstance(error, ValidationError):
        text, params = error.message, error.params
    else:
        text, params = error, {}
    if isinstance(text, str) and not params and not is_localized(text):
        return text  # a plain string: said as is, with no language to work out
    return (await self._language()).say(text, **params)
