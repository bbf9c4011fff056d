"""A filter or step made for one conversation is freed when that conversation ends.

Bug: ``aiostep/calling.py`` caches the signature of every callable it calls in the module-level
dict ``_signatures``, keyed by the callable itself and never evicted. A filter (or step, or
``on_timeout``) built per conversation, such as ``filter=lambda m: m.text in choices``, is kept
alive forever together with everything it closes over: memory grows with every conversation,
against "nothing per user may outlive it".
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


class Choices:
    """What a per-conversation filter closes over (weak-referenceable, unlike a list)."""

    def __init__(self, *items: str) -> None:
        self.items = items


async def test_a_per_conversation_filter_and_step_are_freed_after_the_conversation() -> None:
    refs: list[weakref.ref[Any]] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("menu"))
    async def menu(message: Message) -> None:
        assert message.from_user is not None
        choices = Choices("tea", "coffee")

        def is_choice(answer: Message) -> bool:
            return answer.text in choices.items

        async def chosen(answer: Message) -> None:
            await answer.answer(f"one {answer.text}, {len(choices.items)} choices")

        refs.extend([weakref.ref(choices), weakref.ref(is_choice), weakref.ref(chosen)])
        await message.answer("tea or coffee?")
        await aiostep.register_next_step(message.from_user.id, chosen, filter=is_choice)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/menu")
        await talk.send("tea")
        talk.assert_last("one tea, 2 choices")

    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]
