"""Send a button press with any callback data, as a hostile client could (shared by the choice
tests)."""

from __future__ import annotations

from aiogram.types import CallbackQuery

from aiostep.testing import Conversation, MessageRecord


async def press(talk: Conversation, message: MessageRecord, data: str) -> None:
    """Send a callback query with any ``data`` from ``message``, as a client could forge it."""
    sim = talk.sim
    query = CallbackQuery.model_validate(
        {
            "id": f"forged-{len(sim.session.calls)}-{talk.user.id}",
            "from": talk.user.model_dump(),
            "chat_instance": f"ci{talk.chat.id}",
            "message": message.message.model_dump(by_alias=True),
            "data": data,
        },
        context={"bot": sim.bot},
    )
    sim.session.expect_callback(query.id, talk.chat.id)
    await sim.feed(sim._update(callback_query=query), chat_id=talk.chat.id)
