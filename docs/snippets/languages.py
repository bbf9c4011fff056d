"""Languages: a wizard's own texts in the user's language, with dicts and callables, or with
aiogram's i18n (gettext catalogs and its middleware)."""

from __future__ import annotations

from enum import Enum, auto
from pathlib import Path

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.utils.i18n import I18n, SimpleI18nMiddleware
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

from aiostep_dialogs import Finish, Texts, Wizard, step, v


# --8<-- [start:dict]
def size_prompt(locale: str) -> str:  # one parameter named `locale`: it gets the language
    return "Какой размер?" if locale.startswith("ru") else "Which size?"


class Pizza(Wizard, name="docs-pizza"):
    texts = Texts(cancelled={"en": "No pizza, then.", "ru": "Значит, без пиццы."})

    class State(Enum):
        NAME = auto()
        SIZE = auto()

    @step(
        State.NAME,
        prompt={"en": "Your name?", "ru": "Ваше имя?"},
        validate=v.text(min_len=2, error={"en": "Too short.", "ru": "Слишком коротко."}),
    )
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.SIZE,
        prompt=size_prompt,
        choices={"s": {"en": "Small", "ru": "Маленькая"}, "l": {"en": "Large", "ru": "Большая"}},
    )
    async def size(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        done = {"en": "{name}: {size}, coming!", "ru": "{name}: {size}, уже едет!"}
        await self.answer(done[self.locale].format(name=self.data["name"], size=self.result))
        # --8<-- [end:dict]


# --8<-- [start:gettext]
class Feedback(Wizard, name="docs-feedback"):
    class State(Enum):
        SCORE = auto()
        COMMENT = auto()

    @step(State.SCORE, prompt=__("From 1 to 5, how was it?"), validate=v.integer(min=1, max=5))
    async def score(self, value: int) -> None:
        self.data["score"] = value

    @step(State.COMMENT, prompt=lambda self: _("Why {score}?").format(score=self.data["score"]))
    async def comment(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(_("Thank you!"))


def build(storage: object = None, locales: str | Path = "locales") -> Dispatcher:
    dp = Dispatcher()
    i18n = I18n(path=locales, default_locale="en", domain="messages")
    SimpleI18nMiddleware(i18n).setup(dp)  # before the wizards: on_finish calls _() itself
    Pizza.setup(dp, entry=Command("pizza"), storage=storage)
    Feedback.setup(dp, entry=Command("feedback"), storage=storage)
    return dp


# --8<-- [end:gettext]
