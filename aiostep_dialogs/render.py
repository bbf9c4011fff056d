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
)
from aiogram.utils.formatting import Text

from aiostep_dialogs import button_data
from aiostep_dialogs import ui as _ui
from aiostep_dialogs.formatting import Markup, effective_parse_mode, escape, fill
from aiostep_dialogs.i18n import (
    LazyProxy,
    Localized,
    is_localized,
)
from aiostep_dialogs.injection import call
from aiostep_dialogs.media import Media, MediaCall, send_media_prompt
from aiostep_dialogs.picking import before_send
from aiostep_dialogs.picking import markup as picker_markup
from aiostep_dialogs.record import park as _park
from aiostep_dialogs.requests import CompiledRequest, PrivateChatOnlyError
from aiostep_dialogs.spec import StepSpec
from aiostep_dialogs.ui import closing_markup
from aiostep_dialogs.validators import ValidationError

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard

logger = logging.getLogger("aiostep_dialogs")
_BUTTON_PREFIX = button_data.BUTTON_PREFIX


async def render(self: RunningWizard, spec: StepSpec) -> str | Text:
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
        body = await render_localized(self, spec, mode)
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


async def render_localized(self: RunningWizard, spec: StepSpec, mode: str | None) -> str | Text:
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


def markup(self: RunningWizard, spec: StepSpec) -> Any:
    """The keyboard of ``spec``'s prompt: choices, a request button, or the closing markup."""
    if spec.picker is not None:
        return picker_markup(self, spec)
    if spec.request is not None:
        return _request_markup(self, self._requests[spec.name])
    if not spec.choices:
        return closing_markup(self)
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


def _request_markup(self: RunningWizard, compiled: CompiledRequest) -> ReplyKeyboardMarkup:
    """A request step's keyboard with the label in the user's language (the compiled one
    when the label is a plain string)."""
    if compiled.label is None:
        return compiled.markup
    button = compiled.markup.keyboard[0][0]
    said = button.model_copy(update={"text": self._say(compiled.label)})
    return compiled.markup.model_copy(update={"keyboard": [[said]]})


async def send_prompt(
    self: RunningWizard,
    spec: StepSpec,
    error: ValidationError | Localized | None = None,
    *,
    park: bool = False,
) -> None:
    """Show the prompt of ``spec``. One-message mode: with ``park`` (the caller did not
    store the step), or when the prompt's message changed, the step is stored after it."""
    if spec.picker is not None:
        await before_send(self, spec)
    if spec.localized or spec.picker is not None or spec.request is not None:
        await self._language()  # its labels are said in it (by the sync _markup)
        if spec.request is not None and self.key.chat_id < 0:
            # groups and channels have negative ids; request buttons work in private chats
            await self.answer(self._text(self.texts.private_only))
            step = f"{type(self).__qualname__}.{spec.method.__name__}"
            raise PrivateChatOnlyError(step, self.key.chat_id)
    prompt: str | Text
    text = spec.prompt
    if type(text) is str and not spec.localized and not self.show_progress:
        # render()'s common case, without its coroutine; a template with no braces is
        # what fill() would return, with no parse mode to work out
        if "{" in text or "}" in text:
            text = fill(text, self.data, effective_parse_mode(self.bot, self.parse_mode))
        prompt = text
    else:
        prompt = await render(self, spec)
    # a rejection's reason, ``error=`` or ``texts.interrupted``, in the user's language
    reason = None if error is None else await say_error(self, error)
    if spec.media is not None:  # a step without media pays this one check, as before
        media: Media | MediaCall | None = spec.media
        if spec.media.dynamic:  # from a callable: decided at class definition
            step = f"{type(self).__qualname__}.{spec.method.__name__}"
            media = await cast("MediaCall", media).resolve(self, step)  # None: a text prompt
        if media is not None:
            sent = await send_media_prompt(
                self, cast(Media, media), prompt, reason, markup(self, spec)
            )
            # one-message mode: a medium is always a new message (text cannot become one)
            if self._edits and (await _ui.sent_anew(self, sent) or park):
                await _park(self, spec)
            return
    if reason:
        # A rejection's reason is plain text: it often quotes what the user sent.
        if isinstance(prompt, Text):
            prompt = Text(reason, "\n\n", prompt)
        else:
            mode = effective_parse_mode(self.bot, self.parse_mode)
            prompt = f"{escape(reason, mode)}\n\n{prompt}"
    if not self._edits:
        await self.answer(prompt, reply_markup=markup(self, spec))
        return
    edit = spec.name in self._edit_states
    if await _ui.show_prompt(self, prompt, markup(self, spec), edit=edit) or park:
        await _park(self, spec)


async def say_error(self: RunningWizard, error: ValidationError | Localized) -> str:
    """A rejection's reason (or ``error=``, ``texts.interrupted``) in the user's language."""
    if isinstance(error, ValidationError):
        text, params = error.message, error.params
    else:
        text, params = error, {}
    if isinstance(text, str) and not params and not is_localized(text):
        return text  # a plain string: said as is, with no language to work out
    return (await self._language()).say(text, **params)
