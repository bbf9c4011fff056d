"""Which conversation an update belongs to: the (chat, user, forum thread) key."""

from __future__ import annotations

from typing import Any, NamedTuple

from aiogram.types import CallbackQuery, Message

__all__ = ["ANYONE", "ConversationKey", "is_command", "key_of", "storage_key"]

#: The user id of a chat-wide conversation: anyone in the chat may answer its waiter/step
#: (``register_next_step(aiostep.ANYONE, fn, chat_id=...)``, with ``Listen(chat_wide=True)``).
ANYONE = 0


class ConversationKey(NamedTuple):
    """Identifies one conversation: a user in a chat (and forum topic, when there is one),
    with one bot (one Dispatcher may serve several bots, and a private chat's id is the
    user's id whichever bot it is with)."""

    chat_id: int
    user_id: int
    thread_id: int | None = None
    bot_id: int | None = None


def _thread_of(message: Any) -> int | None:
    # message_thread_id is also set on replies in ordinary supergroups; only forum topics
    # are separate conversations.
    if getattr(message, "is_topic_message", None):
        thread: int | None = message.message_thread_id
        return thread
    return None


def _bot_id(event: Any, bot: Any = None) -> int | None:
    if bot is None:
        bot = event.bot  # a private attribute of the event: pydantic's slow path, so given if known
        if bot is None:
            return None
    bot_id: int = bot.id
    if bot_id not in seen_bots:
        seen_bots.add(bot_id)
    return bot_id


#: The bots whose updates were seen in this process; when there is exactly one, a waiter or
#: step registered outside any update (a scheduler, a startup hook) belongs to it.
seen_bots: set[int] = set()


def default_bot_id() -> int | None:
    """The bot of a conversation named outside any update: the only bot seen, else ``None``."""
    return next(iter(seen_bots)) if len(seen_bots) == 1 else None


# the key built straight from its tuple: a NamedTuple's own __new__ is a Python function
# (measured: 153 -> 70 ns a key, and every update makes one)
_new_key = tuple.__new__


def key_of(event: Any, bot: Any = None) -> ConversationKey | None:
    """The conversation key of a message or callback query, or ``None`` (no user or chat).
    ``bot``: the bot the update came to (handler data's ``bot``), when the caller has it."""
    if isinstance(event, Message):
        user = event.from_user
        if user is None:
            return None
        return _new_key(
            ConversationKey, (event.chat.id, user.id, _thread_of(event), _bot_id(event, bot))
        )
    if isinstance(event, CallbackQuery):
        message = event.message
        if message is None:  # a button under an inline-mode message: no chat to speak of
            return None
        return _new_key(
            ConversationKey,
            (message.chat.id, event.from_user.id, _thread_of(message), _bot_id(event, bot)),
        )
    return None


def storage_key(key: ConversationKey) -> str:
    """The storage key of a conversation: ``"chat:user"``, then ``":thread"`` in a forum topic
    and ``"@bot"`` when the bot is known (``"-100123:42:7@5000"``).

    Raises:
        TypeError: an id is not an ``int`` (``thread_id``/``bot_id`` may be ``None``): a str id
            such as ``"1:2"`` would make another conversation's key.
    """
    chat_id, user_id, thread_id, bot_id = key
    # exact ints: they hold no ':' or '@', so different conversations never share a key
    if (
        type(chat_id) is not int
        or type(user_id) is not int
        or (thread_id is not None and type(thread_id) is not int)
        or (bot_id is not None and type(bot_id) is not int)
    ):
        raise TypeError(
            f"ConversationKey ids must be ints (thread_id and bot_id may be None), got {key!r}; "
            "a str id could make the storage key of another conversation"
        )
    text = f"{chat_id}:{user_id}"
    if thread_id is not None:
        text += f":{thread_id}"
    if bot_id is not None:
        text += f"@{bot_id}"
    return text


def is_command(event: Any) -> bool:
    """True when ``event`` is a message that starts with a bot command (``/help``...)."""
    if not isinstance(event, Message):
        return False
    text = event.text if event.text is not None else event.caption
    return text is not None and text.startswith("/") and len(text) > 1
