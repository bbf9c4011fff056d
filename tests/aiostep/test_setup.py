"""aiostep.setup: where Listen goes, and what it says at startup."""

from __future__ import annotations

import logging

import pytest
from aiogram import Dispatcher
from aiogram.types import CallbackQuery, Message

import aiostep
from aiostep.testing import BotSimulator


async def test_setup_warns_about_update_types_polling_would_not_receive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message()
    async def any_message(message: Message) -> None:
        pass

    with caplog.at_level(logging.WARNING, logger="aiostep"):
        async with BotSimulator(dp) as sim:
            await sim.start()
    assert "edited_message, callback_query" in caplog.text
    assert "allowed_updates" in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING


async def test_only_unreceived_edits_are_an_info_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message()
    async def any_message(message: Message) -> None:
        pass

    @dp.callback_query()
    async def any_button(query: CallbackQuery) -> None:
        pass

    with caplog.at_level(logging.INFO, logger="aiostep"):
        async with BotSimulator(dp) as sim:
            await sim.start()
    notes = [r for r in caplog.records if "allowed_updates" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.INFO]


async def test_no_warning_when_every_listened_type_has_a_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dp = Dispatcher()
    aiostep.setup(dp, updates=("message", "callback_query"))

    @dp.message()
    async def any_message(message: Message) -> None:
        pass

    @dp.callback_query()
    async def any_button(query: CallbackQuery) -> None:
        pass

    with caplog.at_level(logging.WARNING, logger="aiostep"):
        async with BotSimulator(dp) as sim:
            await sim.start()
    assert "allowed_updates" not in caplog.text


def test_setting_up_twice_is_refused() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)
    with pytest.raises(ValueError, match="already has an aiostep Listen"):
        aiostep.setup(dp)
