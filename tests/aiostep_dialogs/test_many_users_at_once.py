"""Many users, each sending a burst of messages at the same moment: every conversation still
advances exactly one step per message, in order, and nothing of one user leaks into another's."""

from __future__ import annotations

import asyncio
from enum import Enum, auto

from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step, v
from tests.conftest import Backend

USERS = 12
ANSWERS = 6


class Tally(Wizard, name="test-many-users-tally"):
    """Collects numbers until it has ANSWERS of them, then reports them in the order taken."""

    class State(Enum):
        NUMBER = auto()

    @step(State.NUMBER, prompt="Number {count}?", validate=v.integer())
    async def number(self, value: int) -> Tally.State | Finish:
        numbers = [*self.data.get("numbers", []), value]
        self.data["numbers"] = numbers
        self.data["count"] = len(numbers) + 1
        if len(numbers) == ANSWERS:
            return self.finish()
        return self.State.NUMBER

    async def on_start(self) -> None:
        self.data["count"] = 1

    async def on_finish(self) -> None:
        await self.answer("got " + " ".join(map(str, self.data["numbers"])))


async def test_bursts_from_many_users_keep_each_conversation_in_order(backend: Backend) -> None:
    sim = backend.simulator(
        lambda dp, storage: Tally.setup(dp, entry=Command("tally"), storage=storage)
    )
    talks = [sim.chat(sim.user()) for _ in range(USERS)]  # each in a private chat
    await asyncio.gather(*(talk.send("/tally") for talk in talks))
    # every user's answers are sent at once, interleaved with everyone else's
    sends = []
    for n in range(ANSWERS):
        for i, talk in enumerate(talks):
            sends.append(talk.send(str(i * 100 + n)))
    await asyncio.gather(*sends)
    for i, talk in enumerate(talks):
        expected = " ".join(str(i * 100 + n) for n in range(ANSWERS))
        said = [m.text for m in talk.messages]
        prompts = [f"Number {k}?" for k in range(1, ANSWERS + 1)]
        assert said == [*prompts, f"got {expected}"], talk.transcript()
