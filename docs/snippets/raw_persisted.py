"""Persisted next steps: registered by name, JSON kwargs, a timeout that survives restarts."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep


# --8<-- [start:steps]
@aiostep.persisted_step("feedback.rating")  # the stored name: keep it stable across deploys
async def got_rating(message: Message, product: str) -> None:
    text = message.text or ""
    if not (text.isdigit() and 1 <= int(text) <= 5):
        await ask_rating(message, product)  # register the same step again, then say why
        await message.answer("Please send a number from 1 to 5.")
        return
    # register first, then ask: a crash in between never loses the step
    await aiostep.register_next_step(
        message.from_user.id, got_comment, kwargs={"product": product, "rating": int(text)}
    )
    await message.answer(f"Any comment on the {product}?")


@aiostep.persisted_step("feedback.comment")
async def got_comment(message: Message, product: str, rating: int) -> None:
    await message.answer(f"Thanks! {product}: {rating}/5, {message.text!r}")


@aiostep.persisted_step("feedback.expired")
async def rating_expired(bot: Bot, chat_id: int, product: str) -> None:
    await bot.send_message(chat_id, f"No rating for the {product}; maybe next time.")


async def ask_rating(message: Message, product: str) -> None:
    await aiostep.register_next_step(
        message.from_user.id,
        got_rating,  # a registered function (or its name, "feedback.rating")
        kwargs={"product": product},  # JSON only: checked here, on every backend
        timeout=600,
        on_timeout=rating_expired,
    )


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)  # File/Redis: the steps above survive a restart

    @dp.message(Command("feedback"))
    async def feedback(message: Message) -> None:
        await ask_rating(message, "pizza")
        await message.answer("Rate our pizza from 1 to 5:")

    @dp.message()
    async def fallback(message: Message) -> None:
        await message.answer("Send /feedback to rate us.")

    return dp


# --8<-- [end:steps]
