"""aiogram's i18n middleware installed on the update observer
(``dp.update.outer_middleware(ConstI18nMiddleware(...))``, a common way to cover every event)
chose the language, but the wizard looked for it only on the message and callback observers,
so it answered in the sender's ``language_code`` instead: the lazy texts followed the
middleware, the built-in texts did not. Its choice is taken wherever it is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.utils.i18n import ConstI18nMiddleware, I18n

from tests.aiostep_dialogs.test_i18n import SAID, Age, compile_bot_catalogs, speaker


async def test_an_i18n_middleware_on_the_update_observer_chooses_the_language(
    bot_simulator: Any, tmp_path: Path
) -> None:
    i18n = I18n(path=compile_bot_catalogs(tmp_path / "locales"))
    dp = Dispatcher()
    dp.update.outer_middleware(ConstI18nMiddleware("es", i18n))
    Age.setup(dp, entry=Command("age"))
    talk = speaker(bot_simulator(dp), "ru")
    await talk.send("/age")
    await talk.send("0")
    progress, out_of_range, *_ = SAID["es"]
    talk.assert_last(f"{out_of_range}\n\n{progress}\nAge?")
