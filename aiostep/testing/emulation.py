"""The Telegram side of the test kit's session: what Telegram answers to each Bot API method.

Sends become messages in the chat's [`ChatLog`][aiostep.testing.ChatLog] (texts and captions
parsed per their ``parse_mode``, as Telegram parses them), edits and deletions change them as
Telegram would (and refuse what it refuses, in strict mode), and button presses are answered.
[`RecordingSession`][aiostep.testing.RecordingSession] records the calls and hands them here.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from aiogram.client.default import Default
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    Chat,
    InlineKeyboardMarkup,
    Message,
    MessageId,
    User,
)

from aiostep.clock import get_clock
from aiostep.testing.entities import PARSE_MODES, EntityParseError, parse_entities
from aiostep.testing.telegram import CallbackAnswer, ChatLog, MessageRecord

if TYPE_CHECKING:
    from aiogram import Bot


__all__ = ["TelegramEmulation"]

_M = TypeVar("_M", bound=TelegramMethod[Any])

# Fields of a Message that carry its content (what copyMessage/forwardMessage copy).
_CONTENT_FIELDS = frozenset(
    {
        "text", "entities", "caption", "caption_entities", "photo", "document", "audio",
        "video", "animation", "voice", "video_note", "sticker", "contact", "location", "venue",
        "dice", "poll",
    }
)  # fmt: skip

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


#: Seconds after which the simulated Telegram refuses to edit a bot's message (48 hours).
_EDIT_WINDOW = 48 * 3600.0

# Telegram's limits: characters of a text and of a caption (after the markup is parsed; counted
# here in code points, never more than Telegram counts), bytes of a button's callback_data.
_TEXT_LIMIT = 4096
_CAPTION_LIMIT = 1024
_CALLBACK_DATA_LIMIT = 64
_TOAST_LIMIT = 200  # answerCallbackQuery's text


def _arg(method: TelegramMethod[Any], name: str) -> Any:
    return getattr(method, name, None)


def _now() -> datetime:
    return datetime.fromtimestamp(get_clock().now(), tz=timezone.utc)


class TelegramEmulation:
    """Answers to Bot API methods as Telegram gives them, over the session's simulated chats
    (the part of [`RecordingSession`][aiostep.testing.RecordingSession] that plays Telegram)."""

    strict: bool
    edit_window: float | None
    group_privacy: bool
    bot_name: str
    bot_username: str
    chats: dict[int, ChatLog]
    users: dict[int, User]
    commands: list[BotCommand]
    _callbacks: dict[str, tuple[int, bool]]
    _file_ids: itertools.count[int]

    # --- the simulated Telegram side ---------------------------------------------------------

    def bot_user(self, bot_id: int) -> User:
        """The bot's own user (what ``getMe`` returns)."""
        return User(
            id=bot_id,
            is_bot=True,
            first_name=self.bot_name,
            username=self.bot_username,
            can_join_groups=True,
            can_read_all_group_messages=not self.group_privacy,
            supports_inline_queries=False,
        )

    def chat_log(self, chat: Chat | int) -> ChatLog:
        """The log of ``chat``, created on first use (a plain id makes a private chat if it is
        positive, a supergroup if negative, as an unknown chat would be for Telegram)."""
        chat_id = chat if isinstance(chat, int) else chat.id
        log = self.chats.get(chat_id)
        if log is None:
            if isinstance(chat, int):
                chat = (
                    Chat(id=chat_id, type="private", first_name=f"User {chat_id}")
                    if chat_id > 0
                    else Chat(id=chat_id, type="supergroup", title=f"Chat {chat_id}")
                )
            log = self.chats[chat_id] = ChatLog(chat)
        return log

    def delivers(self, message: Message, bot_id: int) -> bool:
        """Whether Telegram delivers the user's ``message`` to the bot: always, unless it is
        in a group and ``group_privacy`` is on; then only a command or a reply to the bot."""
        if not self.group_privacy or message.chat.type not in ("group", "supergroup"):
            return True
        text = message.text if message.text is not None else message.caption
        if text is not None and text.startswith("/"):
            return True
        replied = message.reply_to_message
        return (
            replied is not None
            and replied.from_user is not None
            and (replied.from_user.id == bot_id)
        )

    def add_user(self, user: User) -> None:
        """Make ``user`` known (``getChatMember`` answers for known users)."""
        self.users[user.id] = user

    def expect_callback(self, query_id: str, chat_id: int) -> None:
        """Note that a button press ``query_id`` was sent from ``chat_id`` (for its answer)."""
        self._callbacks[query_id] = (chat_id, False)

    def unanswered_callbacks(self, chat_id: int | None = None) -> list[str]:
        """Ids of button presses the bot has not answered yet (in ``chat_id``, or anywhere)."""
        return [
            query_id
            for query_id, (chat, answered) in self._callbacks.items()
            if not answered and (chat_id is None or chat == chat_id)
        ]

    # --- helpers -----------------------------------------------------------------------------

    def _check_limits(self, method: TelegramMethod[Any]) -> None:
        """Refuse, as Telegram does, an empty or too long text, a too long caption or toast,
        and a button whose ``callback_data`` is empty or longer than 64 bytes (``method``
        parsed)."""
        name = method.__api_method__
        text = _arg(method, "text")
        if name in ("sendMessage", "editMessageText") and isinstance(text, str):
            if not text.strip():
                self._fail(method, "Bad Request: message text is empty")
            elif len(text) > _TEXT_LIMIT:
                self._fail(
                    method,
                    "Bad Request: message is too long"
                    if name == "sendMessage"
                    else "Bad Request: MESSAGE_TOO_LONG",
                )
        if name == "answerCallbackQuery" and isinstance(text, str) and len(text) > _TOAST_LIMIT:
            self._fail(method, "Bad Request: MESSAGE_TOO_LONG")
        media = _arg(method, "media")
        holders = [method, *(media if isinstance(media, list) else [media])]
        for holder in holders:
            caption = getattr(holder, "caption", None)
            if isinstance(caption, str) and len(caption) > _CAPTION_LIMIT:
                self._fail(method, "Bad Request: message caption is too long")
        markup = _arg(method, "reply_markup")
        if isinstance(markup, InlineKeyboardMarkup):
            for row in markup.inline_keyboard:
                for button in row:
                    data = button.callback_data
                    if data is not None and not 0 < len(data.encode()) <= _CALLBACK_DATA_LIMIT:
                        self._fail(method, "Bad Request: BUTTON_DATA_INVALID")

    def _fail(self, method: TelegramMethod[Any], message: str) -> None:
        if self.strict:
            raise TelegramBadRequest(method=method, message=message)

    @staticmethod
    def _value(bot: Bot, value: Any) -> Any:
        return bot.default[value.name] if isinstance(value, Default) else value

    def _parsed(self, bot: Bot, method: _M) -> _M:
        """``method`` with its text and caption parsed per their ``parse_mode`` (plain text and
        entities, no parse mode left), as Telegram would store the message.

        Raises:
            TelegramBadRequest: the markup is malformed, or the parse mode unknown.
        """
        changes = self._parse_fields(bot, method, method)
        media = _arg(method, "media")
        if isinstance(media, list):
            parsed = [self._parse_media(bot, method, item) for item in media]
            if any(new is not old for new, old in zip(parsed, media, strict=True)):
                changes["media"] = parsed
        elif media is not None and not isinstance(media, str):
            parsed_one = self._parse_media(bot, method, media)
            if parsed_one is not media:
                changes["media"] = parsed_one
        return method.model_copy(update=changes) if changes else method

    def _parse_media(self, bot: Bot, method: TelegramMethod[Any], media: Any) -> Any:
        changes = self._parse_fields(bot, method, media)
        return media.model_copy(update=changes) if changes else media

    def _parse_fields(self, bot: Bot, method: TelegramMethod[Any], holder: Any) -> dict[str, Any]:
        """The parsed ``text``/``caption`` of ``holder`` (a method or an ``InputMedia``)."""
        mode = self._value(bot, getattr(holder, "parse_mode", None))
        if not mode:
            return {}
        changes: dict[str, Any] = {}
        for text_field, entities_field in (("text", "entities"), ("caption", "caption_entities")):
            text = getattr(holder, text_field, None)
            if not isinstance(text, str):
                continue
            if str(mode).lower() not in PARSE_MODES:
                raise TelegramBadRequest(
                    method=method, message="Bad Request: unsupported parse_mode"
                )
            try:
                plain, entities = parse_entities(text, str(mode))
            except EntityParseError as exc:
                raise TelegramBadRequest(
                    method=method, message=f"Bad Request: can't parse entities: {exc}"
                ) from None
            changes[text_field] = plain
            changes[entities_field] = entities
        if changes:
            changes["parse_mode"] = None
        return changes

    def _log_of(self, method: TelegramMethod[Any], chat_id: int | str) -> ChatLog:
        if isinstance(chat_id, int):
            return self.chat_log(chat_id)
        for log in self.chats.values():
            if chat_id in (f"@{log.chat.username}", str(log.chat.id)):
                return log
        raise TelegramBadRequest(method=method, message="Bad Request: chat not found")

    def _record(
        self, method: TelegramMethod[Any], chat_id: int | str, message_id: int
    ) -> MessageRecord | None:
        record = self._log_of(method, chat_id).records.get(message_id)
        return None if record is None or record.deleted else record

    def _file(self, value: Any, kind: str) -> dict[str, Any]:
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            file_id = value
        else:
            file_id = f"{kind}-{next(self._file_ids)}"
        return {"file_id": file_id, "file_unique_id": f"u{file_id}"}

    def _content(self, name: str, method: TelegramMethod[Any]) -> dict[str, Any]:
        """The content fields of the Message that ``method`` (a send) creates."""
        content: dict[str, Any] = {}
        if name == "sendMessage":
            content["text"] = _arg(method, "text")
            content["entities"] = _arg(method, "entities")
        elif name == "sendPhoto":
            file = self._file(_arg(method, "photo"), "photo")
            content["photo"] = [
                {**file, "width": 90, "height": 90},
                {**file, "file_id": file["file_id"] + "-big", "width": 800, "height": 800},
            ]
        elif name == "sendDocument":
            document = _arg(method, "document")
            content["document"] = {
                **self._file(document, "document"),
                "file_name": getattr(document, "filename", None),
            }
        elif name in ("sendAudio", "sendVoice"):
            kind = name[4:].lower()
            content[kind] = {
                **self._file(_arg(method, kind), kind),
                "duration": _arg(method, "duration") or 0,
            }
        elif name in ("sendVideo", "sendAnimation"):
            kind = name[4:].lower()
            content[kind] = {
                **self._file(_arg(method, kind), kind),
                "width": _arg(method, "width") or 640,
                "height": _arg(method, "height") or 480,
                "duration": _arg(method, "duration") or 0,
            }
        elif name == "sendVideoNote":
            content["video_note"] = {
                **self._file(_arg(method, "video_note"), "video_note"),
                "length": _arg(method, "length") or 240,
                "duration": _arg(method, "duration") or 0,
            }
        elif name == "sendSticker":
            content["sticker"] = {
                **self._file(_arg(method, "sticker"), "sticker"),
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": _arg(method, "emoji"),
            }
        elif name == "sendContact":
            content["contact"] = {
                "phone_number": _arg(method, "phone_number"),
                "first_name": _arg(method, "first_name"),
                "last_name": _arg(method, "last_name"),
                "vcard": _arg(method, "vcard"),
            }
        elif name == "sendLocation":
            content["location"] = {
                "latitude": _arg(method, "latitude"),
                "longitude": _arg(method, "longitude"),
            }
        elif name == "sendVenue":
            content["venue"] = {
                "location": {
                    "latitude": _arg(method, "latitude"),
                    "longitude": _arg(method, "longitude"),
                },
                "title": _arg(method, "title"),
                "address": _arg(method, "address"),
            }
        elif name == "sendDice":
            content["dice"] = {"emoji": _arg(method, "emoji") or "🎲", "value": 1}
        if name != "sendMessage" and _arg(method, "caption") is not None:
            content["caption"] = _arg(method, "caption")
            content["caption_entities"] = _arg(method, "caption_entities")
        return content

    def _post(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        chat_id: int | str,
        content: dict[str, Any],
        **extra: Any,
    ) -> Message:
        """Create a message from the bot in ``chat_id`` and log it."""
        log = self._log_of(method, chat_id)
        reply_parameters = self._value(bot, _arg(method, "reply_parameters"))
        reply_to = (
            reply_parameters.message_id
            if reply_parameters is not None
            else _arg(method, "reply_to_message_id")
        )
        replied = log.records.get(reply_to) if reply_to is not None else None
        if replied is not None and replied.deleted:
            replied = None
        if reply_to is not None and replied is None:
            allow = (
                reply_parameters.allow_sending_without_reply
                if reply_parameters is not None
                else _arg(method, "allow_sending_without_reply")
            )
            if not self._value(bot, allow):
                self._fail(method, "Bad Request: message to be replied not found")
        data: dict[str, Any] = {
            "message_id": log.next_message_id(),
            "date": _now(),
            "chat": log.chat.model_dump(),
            "from": self.bot_user(bot.id).model_dump(),
            **{key: value for key, value in content.items() if value is not None},
            **extra,
        }
        thread_id = _arg(method, "message_thread_id")
        if thread_id is not None:
            data["message_thread_id"] = thread_id
            data["is_topic_message"] = bool(log.chat.is_forum) or None
        markup = _arg(method, "reply_markup")
        if isinstance(markup, InlineKeyboardMarkup):  # the only markup a Message holds
            data["reply_markup"] = markup.model_dump()
        if replied is not None:
            data["reply_to_message"] = replied.message.model_dump()
        message = Message.model_validate(data, context={"bot": bot})
        log.post(MessageRecord(message, from_bot=True, markup=markup), "bot")
        return message

    def _send(self, bot: Bot, method: TelegramMethod[Any]) -> Message:
        content = self._content(method.__api_method__, method)
        return self._post(bot, method, _arg(method, "chat_id"), content)

    # --- built-in answers --------------------------------------------------------------------

    def _get_me(self, bot: Bot, method: TelegramMethod[Any]) -> User:
        return self.bot_user(bot.id)

    def _get_chat(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        from aiogram.types import ChatFullInfo

        chat = self._log_of(method, _arg(method, "chat_id")).chat
        return ChatFullInfo.model_validate(
            {
                **chat.model_dump(exclude_none=True),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            },
            context={"bot": bot},
        )

    def _get_chat_member(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        from aiogram.types import ChatMemberMember

        user_id = _arg(method, "user_id")
        user = self.bot_user(bot.id) if user_id == bot.id else self.users.get(user_id)
        if user is None:
            raise TelegramBadRequest(method=method, message="Bad Request: user not found")
        return ChatMemberMember(user=user)

    def _get_my_commands(self, bot: Bot, method: TelegramMethod[Any]) -> list[BotCommand]:
        return list(self.commands)

    def _set_my_commands(self, bot: Bot, method: TelegramMethod[Any]) -> bool:
        self.commands = list(_arg(method, "commands"))
        return True

    def _get_file(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        from aiogram.types import File

        file_id = _arg(method, "file_id")
        return File(file_id=file_id, file_unique_id=f"u{file_id}", file_path=f"files/{file_id}")

    def _source(self, method: TelegramMethod[Any], message_id: int) -> MessageRecord | None:
        record = self._record(method, _arg(method, "from_chat_id"), message_id)
        if record is None:
            self._fail(method, "Bad Request: message to copy not found")
        return record

    def _copy_one(
        self, bot: Bot, method: TelegramMethod[Any], message_id: int, **extra: Any
    ) -> Message:
        source = self._source(method, message_id)
        content = (
            source.message.model_dump(include=set(_CONTENT_FIELDS), exclude_none=True)
            if source is not None
            else {}
        )
        if _arg(method, "caption") is not None:
            content["caption"] = _arg(method, "caption")
            content["caption_entities"] = _arg(method, "caption_entities")
        return self._post(bot, method, _arg(method, "chat_id"), content, **extra)

    def _copy_message(self, bot: Bot, method: TelegramMethod[Any]) -> MessageId:
        return MessageId(
            message_id=self._copy_one(bot, method, _arg(method, "message_id")).message_id
        )

    def _copy_messages(self, bot: Bot, method: TelegramMethod[Any]) -> list[MessageId]:
        return [
            MessageId(message_id=self._copy_one(bot, method, message_id).message_id)
            for message_id in _arg(method, "message_ids")
        ]

    def _forward_message(self, bot: Bot, method: TelegramMethod[Any]) -> Message:
        source = self._source(method, _arg(method, "message_id"))
        extra: dict[str, Any] = {}
        if source is not None and source.message.from_user is not None:
            extra["forward_origin"] = {
                "type": "user",
                "date": source.message.date,
                "sender_user": source.message.from_user.model_dump(),
            }
        content = (
            source.message.model_dump(include=set(_CONTENT_FIELDS), exclude_none=True)
            if source is not None
            else {}
        )
        return self._post(bot, method, _arg(method, "chat_id"), content, **extra)

    def _send_media_group(self, bot: Bot, method: TelegramMethod[Any]) -> list[Message]:
        group_id = f"group-{next(self._file_ids)}"
        messages = []
        for item in _arg(method, "media"):
            kind = item.type
            file = self._file(item.media, kind)
            media: Any = (
                [{**file, "width": 800, "height": 800}]
                if kind == "photo"
                else {**file, "width": 640, "height": 480, "duration": 0}
                if kind == "video"
                else {**file, "duration": 0}
                if kind == "audio"
                else file
            )
            content = {
                kind: media,
                "caption": item.caption,
                "caption_entities": item.caption_entities,
            }
            messages.append(
                self._post(bot, method, _arg(method, "chat_id"), content, media_group_id=group_id)
            )
        return messages

    def _editable(self, bot: Bot, method: TelegramMethod[Any]) -> MessageRecord | None:
        """The bot message an edit targets, or ``None`` (strict mode raises instead)."""
        record = self._record(method, _arg(method, "chat_id"), _arg(method, "message_id"))
        if record is None:
            self._fail(method, "Bad Request: message to edit not found")
        elif not record.from_bot or self._too_old(record):
            self._fail(method, "Bad Request: message can't be edited")
            return None
        return record

    def _too_old(self, record: MessageRecord) -> bool:
        if self.edit_window is None:
            return False
        return get_clock().now() - record.message.date.timestamp() > self.edit_window

    def _apply_edit(
        self, bot: Bot, method: TelegramMethod[Any], record: MessageRecord, changes: dict[str, Any]
    ) -> Message:
        markup = _arg(method, "reply_markup")
        # Like Telegram: an edit that does not pass reply_markup removes the inline keyboard.
        changes["reply_markup"] = markup.model_dump() if markup is not None else None
        data = {**record.message.model_dump(by_alias=True), **changes}
        data["edit_date"] = int(get_clock().now())
        message = Message.model_validate(data, context={"bot": bot})
        compared = {*changes} - {"entities", "caption_entities"}
        if message.model_dump(include=compared) == record.message.model_dump(include=compared):
            self._fail(method, _NOT_MODIFIED)
            return record.message
        self.chat_log(record.chat_id).replace(record, message, "bot")
        return message

    def _edit_text(self, bot: Bot, method: TelegramMethod[Any]) -> Message | bool:
        if _arg(method, "inline_message_id") is not None:
            return True
        record = self._editable(bot, method)
        if record is None:
            return True
        if record.message.text is None:
            self._fail(method, "Bad Request: there is no text in the message to edit")
        changes = {"text": _arg(method, "text"), "entities": _arg(method, "entities")}
        return self._apply_edit(bot, method, record, changes)

    def _edit_caption(self, bot: Bot, method: TelegramMethod[Any]) -> Message | bool:
        if _arg(method, "inline_message_id") is not None:
            return True
        record = self._editable(bot, method)
        if record is None:
            return True
        if record.message.text is not None:
            self._fail(method, "Bad Request: there is no caption in the message to edit")
        changes = {
            "caption": _arg(method, "caption"),
            "caption_entities": _arg(method, "caption_entities"),
        }
        return self._apply_edit(bot, method, record, changes)

    def _edit_reply_markup(self, bot: Bot, method: TelegramMethod[Any]) -> Message | bool:
        if _arg(method, "inline_message_id") is not None:
            return True
        record = self._editable(bot, method)
        if record is None:
            return True
        return self._apply_edit(bot, method, record, {})

    def _edit_media(self, bot: Bot, method: TelegramMethod[Any]) -> Message | bool:
        if _arg(method, "inline_message_id") is not None:
            return True
        record = self._editable(bot, method)
        if record is None:
            return True
        media = _arg(method, "media")
        kind = media.type
        file = self._file(media.media, kind)
        changes: dict[str, Any] = {field: None for field in _CONTENT_FIELDS}
        changes[kind] = (
            [{**file, "width": 800, "height": 800}]
            if kind == "photo"
            else {**file, "width": 640, "height": 480, "duration": 0}
            if kind in ("video", "animation")
            else {**file, "duration": 0}
            if kind == "audio"
            else file
        )
        changes["caption"] = media.caption
        changes["caption_entities"] = media.caption_entities
        return self._apply_edit(bot, method, record, changes)

    def _delete_message(self, bot: Bot, method: TelegramMethod[Any]) -> bool:
        record = self._record(method, _arg(method, "chat_id"), _arg(method, "message_id"))
        if record is None:
            self._fail(method, "Bad Request: message to delete not found")
            return True
        self.chat_log(record.chat_id).delete(record, "bot" if record.from_bot else "user")
        return True

    def _delete_messages(self, bot: Bot, method: TelegramMethod[Any]) -> bool:
        for message_id in _arg(method, "message_ids"):
            record = self._record(method, _arg(method, "chat_id"), message_id)
            if record is not None:
                self.chat_log(record.chat_id).delete(record, "bot" if record.from_bot else "user")
        return True

    def _answer_callback_query(self, bot: Bot, method: TelegramMethod[Any]) -> bool:
        query_id = _arg(method, "callback_query_id")
        known = self._callbacks.get(query_id)
        if known is None or known[1]:
            self._fail(
                method,
                "Bad Request: query is too old and response timeout expired or query ID is "
                f"invalid (callback query {query_id!r} "
                f"{'was already answered' if known else 'is unknown'})",
            )
            return True
        chat_id = known[0]
        self._callbacks[query_id] = (chat_id, True)
        self.chat_log(chat_id).answer(
            CallbackAnswer(
                query_id,
                _arg(method, "text"),
                bool(_arg(method, "show_alert")),
                _arg(method, "url"),
            )
        )
        return True
