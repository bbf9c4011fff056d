"""Telegram's side of a simulated chat: the messages in it, callback answers, and a transcript.

[`RecordingSession`][aiostep.testing.RecordingSession] writes here what the bot does (sends, edits,
deletes, answers to button presses); [`BotSimulator`][aiostep.testing.BotSimulator] writes
what users do. Both read it back: the simulator to find buttons to press, tests to assert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from aiogram.types import (
    Chat,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

__all__ = ["CallbackAnswer", "ChatLog", "MessageRecord", "ReplyMarkup"]

#: Any reply markup a bot can send with a message.
ReplyMarkup: TypeAlias = (
    InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply
)


@dataclass(eq=False)
class MessageRecord:
    """One message in a simulated chat, as Telegram holds it now (after edits).

    Attributes:
        message: the current version of the message.
        from_bot: whether the bot sent it (``False``: a simulated user did).
        edited: whether it was edited since it was sent.
        deleted: whether it was deleted (it stays in the log, flagged).
        markup: the reply markup sent with it. A ``Message`` holds only an inline keyboard;
            a reply keyboard, its removal or a force-reply is kept here.
    """

    message: Message
    from_bot: bool
    edited: bool = False
    deleted: bool = False
    markup: ReplyMarkup | None = None

    def __post_init__(self) -> None:
        if self.markup is None:
            self.markup = self.message.reply_markup

    @property
    def message_id(self) -> int:
        """The message's id in its chat."""
        return self.message.message_id

    @property
    def chat_id(self) -> int:
        """The id of the chat the message is in."""
        return self.message.chat.id

    @property
    def thread_id(self) -> int | None:
        """The forum topic (``message_thread_id``) the message is in, if any."""
        return self.message.message_thread_id

    @property
    def text(self) -> str | None:
        """The message's text, or its caption for media; ``None`` if it has neither."""
        if self.message.text is not None:
            return self.message.text
        return self.message.caption

    @property
    def kind(self) -> str:
        """What the message holds: ``"text"``, ``"photo"``, ``"document"``, ``"sticker"``..."""
        content_type = self.message.content_type
        return str(getattr(content_type, "value", content_type))

    @property
    def inline_keyboard(self) -> list[list[InlineKeyboardButton]]:
        """The inline keyboard's buttons, row by row (empty if there is none)."""
        markup = self.message.reply_markup
        if isinstance(markup, InlineKeyboardMarkup):
            return [list(row) for row in markup.inline_keyboard]
        return []

    @property
    def buttons(self) -> list[list[str]]:
        """The inline keyboard's button texts, row by row (empty if there is none)."""
        return [[button.text for button in row] for row in self.inline_keyboard]

    @property
    def keyboard(self) -> list[list[str]] | None:
        """The texts of the reply keyboard sent with the message, row by row, if it has one."""
        markup = self.markup
        if isinstance(markup, ReplyKeyboardMarkup):
            return [[button.text for button in row] for row in markup.keyboard]
        return None

    def find_button(self, text: str) -> InlineKeyboardButton | None:
        """The first inline button whose text is exactly ``text``, or ``None``."""
        for row in self.inline_keyboard:
            for button in row:
                if button.text == text:
                    return button
        return None


@dataclass(frozen=True)
class CallbackAnswer:
    """What the bot answered to a button press (``answerCallbackQuery``).

    Attributes:
        callback_query_id: the id of the callback query answered.
        text: the toast (or alert) text; ``None`` for a silent answer.
        show_alert: whether the text is shown as an alert rather than a toast.
        url: the URL the bot asked the client to open, if any.
    """

    callback_query_id: str
    text: str | None
    show_alert: bool = False
    url: str | None = None


def _indent(text: str, prefix: str) -> str:
    return text.replace("\n", "\n" + " " * len(prefix))


def _describe(message: Message, kind: str) -> str:
    """A short description of a media message's content, for the transcript."""
    detail: object = None
    if message.sticker is not None:
        detail = message.sticker.emoji
    elif message.document is not None:
        detail = message.document.file_name
    elif message.contact is not None:
        contact = message.contact
        detail = " ".join(
            filter(None, (contact.first_name, contact.last_name, contact.phone_number))
        )
    elif message.venue is not None:
        detail = message.venue.title
    elif message.location is not None:
        detail = f"{message.location.latitude}, {message.location.longitude}"
    elif message.dice is not None:
        detail = f"{message.dice.emoji} {message.dice.value}"
    return f"{kind} {detail}" if detail else kind


def _render(record: MessageRecord, label: str, tag: str | None = None) -> list[str]:
    """The transcript lines for ``record`` said by ``label`` (``"bot"``, ``"user"``, a name).

    ``tag`` marks what happened to it (``"edited"``, ``"deleted"``).
    """
    head = f"{label} [{tag}]> " if tag else f"{label}> "
    if record.thread_id is not None and record.message.is_topic_message:
        head = f"[topic {record.thread_id}] {head}"
    body = record.text or ""
    if record.kind != "text":
        body = f"[{_describe(record.message, record.kind)}] {body}".rstrip()
    lines = [head + _indent(body, head)]
    lines.extend("  " + " ".join(f"[{text}]" for text in row) for row in record.buttons)
    markup = record.markup if tag is None else None  # a reply keyboard comes with a send
    if isinstance(markup, ReplyKeyboardMarkup):
        lines.extend("  " + " ".join(f"({text})" for text in row) for row in record.keyboard or [])
    elif isinstance(markup, ReplyKeyboardRemove):
        lines.append("  (keyboard removed)")
    return lines


@dataclass(eq=False)
class ChatLog:
    """Everything that happened in one simulated chat, in order.

    Attributes:
        chat: the chat.
        records: its messages by id, in the order they were sent (user's and bot's alike).
        answers: the bot's answers to button presses in this chat.
        lines: the transcript, one line per entry.
    """

    chat: Chat
    records: dict[int, MessageRecord] = field(default_factory=dict)
    answers: list[CallbackAnswer] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    _last_id: int = 0

    def next_message_id(self) -> int:
        """Allocate the chat's next message id (ids grow per chat, like Telegram's)."""
        self._last_id += 1
        return self._last_id

    def post(self, record: MessageRecord, label: str) -> None:
        """Add a new message said by ``label`` to the chat."""
        self.records[record.message_id] = record
        self.lines.extend(_render(record, label))

    def replace(self, record: MessageRecord, message: Message, label: str) -> None:
        """Record that ``record`` was edited into ``message``."""
        record.message = message
        record.edited = True
        if record.markup is None or isinstance(record.markup, InlineKeyboardMarkup):
            record.markup = message.reply_markup  # an edit can change only an inline keyboard
        self.lines.extend(_render(record, label, "edited"))

    def delete(self, record: MessageRecord, label: str) -> None:
        """Record that ``record`` was deleted."""
        record.deleted = True
        self.lines.extend(_render(record, label, "deleted")[:1])

    def answer(self, answer: CallbackAnswer) -> None:
        """Record the bot's answer to a button press (a toast or an alert when it has text)."""
        self.answers.append(answer)
        if answer.text:
            kind = "alert" if answer.show_alert else "toast"
            self.lines.append(f"{kind}> {_indent(answer.text, kind + '> ')}")

    def note(self, line: str) -> None:
        """Add a free-form line to the transcript (a click, a restart marker...)."""
        self.lines.append(line)

    def bot_messages(self, thread_id: int | None = None) -> list[MessageRecord]:
        """The bot's messages here, oldest first, deleted ones included (flagged).

        With ``thread_id``, only those in that forum topic.
        """
        return [
            record
            for record in self.records.values()
            if record.from_bot and (thread_id is None or record.thread_id == thread_id)
        ]

    def transcript(self) -> str:
        """The chat's transcript as text, one entry per line."""
        title = self.chat.title or self.chat.first_name or str(self.chat.id)
        header = f"--- chat {self.chat.id} ({self.chat.type}: {title}) ---"
        return "\n".join([header, *self.lines]) if self.lines else header + "\n(nothing yet)"
