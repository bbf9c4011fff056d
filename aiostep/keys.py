"""Which conversation an update belongs to: the (chat, user, forum thread) key."""

from __future__ import annotations

from typing import Any, NamedTuple

from aiogram.types import CallbackQuery, Message

__all__ = ["ANYONE", "ConversationKey", "is_command", "key_of", "storage_key"]

#: The user id of a chat-wide conversation: anyone in the chat may answer its waiter/step
#: (``register_next_step(aiostep.ANYONE, fn, chat_id=...)``, with ``Listen(chat_wide=True)``).
ANYONE = 0


class ConversationKey(NamedTuple):
    """Identifies one conversation: a user in a chat (and forum topic, when there is one)."""

    chat_id: int
    user_id: int
    thread_id: int | None = None


def _thread_of(message: Any) -> int | None:
    # message_thread_id is also set on replies in ordinary supergroups; only forum topics
    # are separate conversations.
    if getattr(message, "is_topic_message", None):
        thread: int | None = message.message_thread_id
        return thread
    return None


def key_of(event: Any) -> ConversationKey | None:
    """The conversation key of a message or callback query, or ``None`` (no user or chat)."""
    if isinstance(event, Message):
        if event.from_user is None:
            return None
        return ConversationKey(event.chat.id, event.from_user.id, _thread_of(event))
    if isinstance(event, CallbackQuery):
        message = event.message
        if message is None:  # a button under an inline-mode message: no chat to speak of
            return None
        return ConversationKey(message.chat.id, event.from_user.id, _thread_of(message))
    return None


def storage_key(key: ConversationKey) -> str:
    """The storage key of a conversation: ``"chat:user"`` or ``"chat:user:thread"``."""
    if key.thread_id is None:
        return f"{key.chat_id}:{key.user_id}"
    return f"{key.chat_id}:{key.user_id}:{key.thread_id}"


def is_command(event: Any) -> bool:
    """True when ``event`` is a message that starts with a bot command (``/help``...)."""
    if not isinstance(event, Message):
        return False
    text = event.text if event.text is not None else event.caption
    return text is not None and text.startswith("/") and len(text) > 1
