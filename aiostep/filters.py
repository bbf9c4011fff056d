"""``IsState``: an aiogram filter on the state kept in an aiostep storage."""

from __future__ import annotations

from typing import Any, Literal

from aiogram import Bot
from aiogram.filters import Filter
from aiogram.types import Chat, User

from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import StateT, as_async, state_name

__all__ = ["IsState"]


class IsState(Filter):
    """Pass when the stored state of the sender is one of ``states``.

    Example:
        ```python
        @dp.message(IsState(Form.NAME, storage=storage))
        async def got_name(message: Message) -> None: ...
        ```

    Args:
        states: states (str or Enum member) to match; ``"*"`` matches any state, ``None``
            matches "no state".
        storage: the aiostep storage holding the state.
        key: whose state: ``"user"`` (the seed's ``set_state(user_id=...)``, default),
            ``"chat"`` or ``"conversation"`` (chat and user, as aiostep's steps key it).
    """

    def __init__(
        self,
        *states: StateT,
        storage: Any,
        key: Literal["user", "chat", "conversation"] = "user",
    ) -> None:
        if not states:
            raise TypeError("IsState needs at least one state ('*' for any, None for none)")
        if key not in ("user", "chat", "conversation"):
            raise ValueError(f"key must be 'user', 'chat' or 'conversation', got {key!r}")
        self.any_state = "*" in states
        self.states = frozenset(state_name(s) for s in states if s != "*")
        self.storage = as_async(storage)
        self.key = key

    def __str__(self) -> str:
        return f"IsState({sorted(map(str, self.states))}, key={self.key!r})"

    async def __call__(
        self,
        event: Any,
        event_from_user: User | None = None,
        event_chat: Chat | None = None,
        event_thread_id: int | None = None,
        bot: Bot | None = None,
    ) -> bool:
        """Check the stored state of the event's user/chat/conversation."""
        if self.key == "user":
            if event_from_user is None:
                return False
            skey: int | str = event_from_user.id
        elif self.key == "chat":
            if event_chat is None:
                return False
            skey = event_chat.id
        else:
            if event_chat is None or event_from_user is None:
                return False
            bot_id = None if bot is None else bot.id
            key = ConversationKey(event_chat.id, event_from_user.id, event_thread_id, bot_id)
            skey = storage_key(key)
        record = await self.storage.read(skey)
        current = None if record is None else record.current_state
        if self.any_state and current is not None:
            return True
        return current in self.states
