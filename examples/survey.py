"""A survey with branching and optional steps (``/skip``). Try it in the terminal:

python -m aiostep_dialogs play examples/survey.py
"""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

from aiostep_dialogs import Wizard, step, v


class Survey(Wizard, name="survey"):
    """Do you use Python? Then which version; otherwise which language. Email is optional."""

    show_progress = True

    class State(Enum):
        USES_PYTHON = auto()
        VERSION = auto()
        OTHER_LANGUAGE = auto()
        EMAIL = auto()
        COMMENT = auto()

    @step(State.USES_PYTHON, prompt="Do you use Python?", choices={"yes": "Yes", "no": "No"})
    async def uses_python(self, value: str) -> Survey.State:
        self.data["python"] = value == "yes"
        return self.State.VERSION if value == "yes" else self.State.OTHER_LANGUAGE

    @step(
        State.VERSION,
        prompt="Which Python version do you use most?",
        choices=["3.10", "3.11", "3.12", "3.13"],
    )
    async def version(self, value: str) -> Survey.State:
        self.data["version"] = value
        return self.State.EMAIL  # skip OTHER_LANGUAGE, which follows in declaration order

    @step(
        State.OTHER_LANGUAGE,
        prompt="Which language do you use instead?",
        validate=v.text(min_len=1, max_len=40),
    )
    async def other_language(self, value: str) -> None:
        self.data["language"] = value

    @step(
        State.EMAIL,
        prompt="Your e-mail, if we may follow up (or /skip):",
        validate=v.email(),
        optional=True,
    )
    async def email(self, value: str | None) -> None:
        self.data["email"] = value

    @step(
        State.COMMENT,
        prompt="Anything else? (or /skip)",
        validate=v.text(max_len=500),
        optional=True,
        default="",
    )
    async def comment(self, value: str) -> None:
        self.data["comment"] = value

    async def on_finish(self) -> None:
        answers = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        await self.answer(f"Thanks! Recorded: {answers}")


def build(storage: object = None) -> Dispatcher:
    """The bot's Dispatcher: /start or /survey starts the survey."""
    dp = Dispatcher()
    Survey.setup(dp, entry=[Command("start")], storage=storage)

    @dp.message(Command("survey"))
    async def survey(message: Message) -> None:
        await Survey.start(message)

    return dp


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script
    from examples._run import run_bot

    run_bot(build)
