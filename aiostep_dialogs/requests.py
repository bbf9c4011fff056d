"""Reply-keyboard request buttons of wizard steps: "Share my phone", "Send my location"...

A step declared with ``request=`` shows one reply-keyboard button that makes the user's Telegram
app send something only the app can: the user's own contact, a location, a poll made in the
poll editor, users or a chat picked from a list. The button and the step's default validator
are built once per wizard class (the button's label comes from the step's ``request_label`` or
the wizard's [`Texts`][aiostep_dialogs.Texts]); a step without ``request`` never looks here.
A label in the user's language (the default ``Texts`` are) is said when the prompt is shown:
the compiled keyboard is copied with the label in that language.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, cast

from aiogram.types import (
    KeyboardButton,
    KeyboardButtonPollType,
    KeyboardButtonRequestChat,
    KeyboardButtonRequestUsers,
    ReplyKeyboardMarkup,
)

from aiostep.exceptions import AiostepError
from aiostep_dialogs import validators as v
from aiostep_dialogs.i18n import Localized, is_localized, localize
from aiostep_dialogs.validators import Validator

__all__ = ["PrivateChatOnlyError", "Request", "RequestKind"]

#: What a request button asks the user's app to send.
RequestKind = Literal["contact", "location", "poll", "users", "chat"]

#: A step's ``request=``: a kind by name (defaults for everything), or aiogram's own object
#: for the kinds that have options (a quiz only, up to 3 users, channels only...).
Request = (
    RequestKind | KeyboardButtonPollType | KeyboardButtonRequestUsers | KeyboardButtonRequestChat
)

_KINDS: tuple[str, ...] = ("contact", "location", "poll", "users", "chat")


class PrivateChatOnlyError(AiostepError, RuntimeError):
    """A step with ``request=`` was reached outside a private chat, where Telegram's request
    buttons do not work (the user could never answer it). The user is told
    ``texts.private_only``, and the conversation in that chat ends."""

    def __init__(self, step: str, chat_id: int) -> None:
        super().__init__(
            f"step {step} asks with a request button (request=...), and Telegram's request "
            f"buttons work in private chats only; chat {chat_id} is a group or channel. Start "
            "this wizard in private chats only (e.g. entry=Command(...) with "
            "F.chat.type == 'private'), or ask in a step without request= there"
        )
        self.step = step
        self.chat_id = chat_id


def request_kind(request: object) -> RequestKind:
    """The kind of a step's ``request=`` value.

    Raises:
        TypeError: ``request`` is not one of the kinds nor aiogram's request object.
    """
    if isinstance(request, KeyboardButtonPollType):
        return "poll"
    if isinstance(request, KeyboardButtonRequestUsers):
        return "users"
    if isinstance(request, KeyboardButtonRequestChat):
        return "chat"
    if isinstance(request, str) and request in _KINDS:
        return cast(RequestKind, request)
    raise TypeError(
        f"request={request!r}: use one of {', '.join(repr(k) for k in _KINDS)}, or aiogram's "
        "KeyboardButtonPollType / KeyboardButtonRequestUsers / KeyboardButtonRequestChat"
    )


@dataclass(frozen=True)
class CompiledRequest:
    """A request step's reply keyboard and the validator it uses when it declares none."""

    markup: ReplyKeyboardMarkup
    validator: Validator
    #: the button's label when it depends on the language (``None``: ``markup`` is said as is)
    label: Localized | None = None


def _hint(use_button: Localized, label: Localized) -> Localized:
    """The reason for an answer that is not the button's: ``use_button`` with the label, in
    the user's language when either depends on it (both said in the same one)."""
    if not is_localized(use_button) and not is_localized(label):
        return cast(str, use_button).format(label=label)

    def hint(locale: str) -> str:
        return localize(use_button, locale, label=localize(label, locale))

    return hint


def _request_id(step_name: str) -> int:
    """A stable ``request_id`` for a step's users/chat button (a signed 32-bit int): the same
    in every process, so an answer after a restart still matches its button."""
    return int.from_bytes(hashlib.sha1(step_name.encode()).digest()[:4], "big") >> 1


def compile_request(
    request: Request, step_name: str, given: Localized, use_button: Localized
) -> CompiledRequest:
    """The button, keyboard and default validator of the step ``step_name`` that asks for
    ``request`` with the label ``given``; ``use_button`` says why another answer is refused."""
    kind = request_kind(request)
    hint = _hint(use_button, given)
    # the compiled button carries the English (or plain) label; markup_for says it per user
    label = localize(given, "en") if is_localized(given) else cast(str, given)
    button: KeyboardButton
    validator: Validator
    if kind == "contact":
        button = KeyboardButton(text=label, request_contact=True)
        validator = v.contact(error=hint)
    elif kind == "location":
        button = KeyboardButton(text=label, request_location=True)
        validator = v.location(error=hint)
    elif kind == "poll":
        poll = request if isinstance(request, KeyboardButtonPollType) else KeyboardButtonPollType()
        button = KeyboardButton(text=label, request_poll=poll)
        validator = v.poll(error=hint)
    elif kind == "users":
        users = (
            request
            if isinstance(request, KeyboardButtonRequestUsers)
            else KeyboardButtonRequestUsers(request_id=_request_id(step_name))
        )
        button = KeyboardButton(text=label, request_users=users)
        validator = v.users_shared(request_id=users.request_id, error=hint)
    else:
        chat = (
            request
            if isinstance(request, KeyboardButtonRequestChat)
            else KeyboardButtonRequestChat(request_id=_request_id(step_name), chat_is_channel=False)
        )
        button = KeyboardButton(text=label, request_chat=chat)
        validator = v.chat_shared(request_id=chat.request_id, error=hint)
    markup = ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)
    return CompiledRequest(markup, validator, given if is_localized(given) else None)
