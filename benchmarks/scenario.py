"""The one dialog every contender runs, the updates that drive it, and a Bot API session that
never touches the network.

The dialog (five updates per user, each answered with exactly one message):

    /start  -> "What is your name?"
    Alice   -> "How old are you?"
    abc     -> "Please send a whole number from 1 to 120." + the age prompt again (rejected)
    33      -> "Alice, 33. Correct?"
    yes     -> "Welcome, Alice!"
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.types import Chat, Message, Update

TEXTS = ("/start", "Alice", "abc", "33", "yes")
STEP_LABELS = ("/start", "name", "bad age", "age", "yes")

NAME_PROMPT = "What is your name?"
AGE_PROMPT = "How old are you?"
AGE_ERROR = "Please send a whole number from 1 to 120."
AGE_REPROMPT = f"{AGE_ERROR}\n\n{AGE_PROMPT}"
CONFIRM_ERROR = "Please choose one of: yes, no."


def confirm_prompt(name: str, age: int) -> str:
    """The confirmation question."""
    return f"{name}, {age}. Correct?"


def welcome(name: str) -> str:
    """The last message of the dialog."""
    return f"Welcome, {name}!"


def parse_age(text: str | None) -> int | None:
    """The age in ``text`` (a whole number from 1 to 120), or ``None``."""
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    age = int(text)
    return age if 1 <= age <= 120 else None


#: What a correct run sends per user (the check that every contender ran the whole dialog).
EXPECTED = Counter(
    {
        NAME_PROMPT: 1,
        AGE_PROMPT: 1,
        AGE_REPROMPT: 1,
        confirm_prompt("Alice", 33): 1,
        welcome("Alice"): 1,
    }
)

NOW = datetime(2024, 1, 1)
_update_ids = itertools.count(1)


def make_update(user: int, text: str, bot: Bot, update_id: int | None = None) -> Update:
    """A private-chat text message from ``user`` (``/start`` carries its command entity),
    mounted on ``bot`` as polling mounts what it receives: ``feed_update`` would otherwise
    rebuild it through a ``model_dump``/``model_validate`` round trip on every update.
    ``update_id``: its id (and message id); by default the next of this process's count."""
    uid = next(_update_ids) if update_id is None else update_id
    message: dict[str, Any] = {
        "message_id": uid,
        "date": NOW,
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "U"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return Update.model_validate({"update_id": uid, "message": message}, context={"bot": bot})


def interleaved(bot: Bot, users: range, steps: range = range(len(TEXTS))) -> Iterator[Update]:
    """Update 1 of every user, then update 2 of every user, ... (built on demand, so that
    nothing holds an update the framework let go of)."""
    for step in steps:
        for user in users:
            yield make_update(user, TEXTS[step], bot)


class NullSession(BaseSession):
    """Answers every Bot API call with one prebuilt Message (or True), and counts the calls
    and the texts sent (a bounded Counter: the dialog has a handful of distinct texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.reply = Message(message_id=1, date=NOW, chat=Chat(id=1, type="private"), text="ok")
        self.calls = 0
        self.texts: Counter[str] = Counter()

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        self.calls += 1
        text = getattr(method, "text", None)
        if isinstance(text, str):
            self.texts[text] += 1
        return self.reply if method.__returning__ is Message else True
