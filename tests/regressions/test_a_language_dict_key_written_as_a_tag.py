"""A ``{locale: text}`` dict keyed ``"pt-BR"`` (as language tags are written) never matched a
Brazilian user: Telegram sends ``language_code="pt-br"`` (and aiogram's ``I18n`` says
``"pt_BR"``), the lookup compared keys exactly, and the user got the English text. A key
matches the user's locale whatever its case and whether it joins with ``-`` or ``_``."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step
from aiostep_dialogs.i18n import localize


class Greeting(Wizard, name="t_reg_pt_br"):
    """A prompt with a Brazilian and a European Portuguese text."""

    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt={"en": "Name?", "pt-BR": "Nome, por favor?", "pt_PT": "Nome?"})
    async def name(self, text: str) -> Finish:
        return self.finish(text)


def greeting_bot(dp: Dispatcher, storage: object) -> None:
    Greeting.setup(dp, entry=Command("hi"), storage=storage)


async def test_a_language_dict_key_matches_the_locale_whatever_its_case_and_separator(
    bot_simulator: Any,
) -> None:
    dp = Dispatcher()
    greeting_bot(dp, None)
    sim = bot_simulator(dp)
    brazil = sim.chat(sim.user(language_code="pt-br"))
    await brazil.send("/hi")
    brazil.assert_last("Nome, por favor?")
    portugal = sim.chat(sim.user(language_code="pt-pt"))
    await portugal.send("/hi")
    portugal.assert_last("Nome?")
    english = sim.chat(sim.user(language_code="de"))
    await english.send("/hi")
    english.assert_last("Name?")
    assert localize({"en": "Name?", "pt-BR": "Nome?"}, "pt_BR") == "Nome?"
    assert localize({"en": "Name?", "RU": "Имя?"}, "ru-RU") == "Имя?"
