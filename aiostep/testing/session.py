"""A Bot API session that never touches the network: it records calls and answers like Telegram.

Give it to a ``Bot`` (``Bot("42:TEST", session=RecordingSession())``) and every method the bot
calls lands in `RecordingSession.calls` and gets a plausible answer: sends return a real
``Message`` (with a per-chat message id), edits return the edited message, ``getMe`` returns the
bot's user, anything returning ``bool`` returns ``True``. The session keeps a
[`ChatLog`][aiostep.testing.ChatLog] per chat, the simulated Telegram side of it.

Texts and captions sent with a ``parse_mode`` (given, or the bot's
``DefaultBotProperties(parse_mode=...)``) are parsed as Telegram parses them: malformed markup is
refused with ``TelegramBadRequest("Bad Request: can't parse entities: ...")``, and the chat holds
the text the user would see, with its entities (see `aiostep.testing.entities`).

This module records the calls and dispatches them; the answers themselves, the Telegram side,
are in `aiostep.testing.emulation`.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BotCommand,
    Message,
    User,
)

from aiostep.testing.emulation import _EDIT_WINDOW, TelegramEmulation
from aiostep.testing.telegram import ChatLog

if TYPE_CHECKING:
    from aiogram import Bot

__all__ = ["RecordingSession", "Responder"]

_M = TypeVar("_M", bound=TelegramMethod[Any])

#: Supplies the result of one API method: called with the method, returns the result (or an
#: awaitable of it), or raises (e.g. ``TelegramForbiddenError``) to simulate a failure.
Responder = Callable[[TelegramMethod[Any]], Any]


class RecordingSession(TelegramEmulation, BaseSession):
    """An aiogram session that records every Bot API call and answers without a network.

    Args:
        strict: answer like Telegram to mistakes (editing or deleting a message that does not
            exist, an edit that changes nothing, answering a button press twice, an empty
            text, a text over 4096 characters or a caption over 1024 once parsed, a toast over
            200, a button's ``callback_data`` over 64 bytes, a reply to a message that is not
            there without ``allow_sending_without_reply``) with ``TelegramBadRequest``;
            ``False`` ignores them.
        bot_name: the bot user's first name (``getMe``).
        bot_username: the bot user's username (``getMe``).
        check_entities: parse texts and captions sent with a ``parse_mode`` like Telegram:
            malformed markup raises ``TelegramBadRequest`` ("can't parse entities"), and the
            chat holds the plain text and entities. ``False`` records the text as it was sent,
            markup and all, and never refuses it.
        group_privacy: Telegram's privacy mode, on by default for a new bot: in a group the
            bot gets only commands and replies to its own messages; the user's other messages
            are not delivered (the transcript says so), and ``getMe`` says
            ``can_read_all_group_messages=False``. ``False`` (the default here): the bot reads
            every group message, as one with privacy mode off (``/setprivacy`` in @BotFather)
            or an admin does.
        edit_window: seconds after which the bot's message can no longer be edited
            (``"message can't be edited"``), by the test kit's clock (advance it with
            [`FakeClock`][aiostep.testing.FakeClock]); default 48 hours, Telegram's limit for
            some messages, so a bot is tested against the strictest case. ``None``: no limit.

    Attributes:
        calls: every method called, in order (the ``TelegramMethod`` objects themselves).
        chats: the simulated chats by id.
    """

    def __init__(
        self,
        *,
        strict: bool = True,
        bot_name: str = "Test Bot",
        bot_username: str = "test_bot",
        check_entities: bool = True,
        edit_window: float | None = _EDIT_WINDOW,
        group_privacy: bool = False,
    ) -> None:
        super().__init__()
        self.strict = strict
        self.edit_window = edit_window
        self.check_entities = check_entities
        self.group_privacy = group_privacy
        self.bot_name = bot_name
        self.bot_username = bot_username
        self.calls: list[TelegramMethod[Any]] = []
        self.chats: dict[int, ChatLog] = {}
        self.users: dict[int, User] = {}
        self.commands: list[BotCommand] = []
        self._responders: dict[str, Responder] = {}
        self._callbacks: dict[str, tuple[int, bool]] = {}  # query id -> (chat id, answered)
        self._file_ids = itertools.count(1)
        self._handlers: dict[str, Callable[[Bot, TelegramMethod[Any]], Any]] = {
            "getMe": self._get_me,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getMyCommands": self._get_my_commands,
            "setMyCommands": self._set_my_commands,
            "getFile": self._get_file,
            "copyMessage": self._copy_message,
            "copyMessages": self._copy_messages,
            "forwardMessages": self._copy_messages,
            "forwardMessage": self._forward_message,
            "sendMediaGroup": self._send_media_group,
            "editMessageText": self._edit_text,
            "editMessageCaption": self._edit_caption,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "editMessageMedia": self._edit_media,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
        }

    # --- reading what was called -------------------------------------------------------------

    @overload
    def calls_of(self, method: str) -> list[TelegramMethod[Any]]: ...

    @overload
    def calls_of(self, method: type[_M]) -> list[_M]: ...

    def calls_of(self, method: str | type[_M]) -> list[TelegramMethod[Any]] | list[_M]:
        """The recorded calls of one method, by API name (``"sendMessage"``) or class."""
        if isinstance(method, str):
            return [call for call in self.calls if call.__api_method__ == method]
        return [call for call in self.calls if isinstance(call, method)]

    @property
    def last_call(self) -> TelegramMethod[Any] | None:
        """The most recent call, or ``None`` if the bot called nothing yet."""
        return self.calls[-1] if self.calls else None

    def respond(self, api_method: str, responder: Responder | None) -> None:
        """Answer ``api_method`` (``"getChatMemberCount"``) with ``responder`` from now on.

        The responder gets the method object and returns the result (or an awaitable of it);
        it may raise an aiogram ``TelegramAPIError`` to simulate a failure. It replaces the
        built-in answer. ``None`` removes it.
        """
        if responder is None:
            self._responders.pop(api_method, None)
        else:
            self._responders[api_method] = responder

    # --- BaseSession -------------------------------------------------------------------------

    async def close(self) -> None:
        """Nothing to close: there is no connection."""

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """Not simulated: downloading files needs Telegram's file server.

        Raises:
            NotImplementedError: always, naming the URL.
        """
        raise NotImplementedError(f"RecordingSession cannot download files (asked for {url})")
        yield b""  # pragma: no cover - makes this an async generator like the base method

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,
    ) -> TelegramType:
        """Record ``method`` and answer it as Telegram would.

        Raises:
            NotImplementedError: for a method this session cannot answer (one that returns
                something other than ``bool`` and has no built-in answer or responder).
            TelegramBadRequest: in strict mode, where Telegram would refuse the call; with
                ``check_entities``, for text whose markup Telegram cannot parse.
        """
        self.calls.append(method)
        # Telegram parses the markup first; the chat then holds what it made of it.
        parsed = self._parsed(bot, method) if self.check_entities else method
        name = method.__api_method__
        responder = self._responders.get(name)
        if responder is not None:
            result = responder(method)  # the method as the bot sent it
            if inspect.isawaitable(result):
                result = await result
            return cast(TelegramType, result)
        method = parsed
        if self.strict:
            self._check_limits(method)
        handler = self._handlers.get(name)
        if handler is not None:
            return cast(TelegramType, handler(bot, method))
        if method.__returning__ is Message:
            return cast(TelegramType, self._send(bot, method))
        if method.__returning__ is bool:
            return cast(TelegramType, True)
        raise NotImplementedError(
            f"RecordingSession has no answer for {name} (it returns "
            f"{getattr(method.__returning__, '__name__', method.__returning__)}); give one with "
            f"session.respond({name!r}, lambda method: ...)"
        )
