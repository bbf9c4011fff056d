"""aiostep_dialogs: a class-based Wizard DSL on top of aiostep.

Example:
    ```python
    class Signup(Wizard):
        class State(Enum):
            NAME = auto()
            AGE = auto()

        @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2))
        async def name(self, value: str) -> None:
            self.data["name"] = value

        @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
        async def age(self, value: int) -> None:
            self.data["age"] = value

    Signup.setup(dp, entry=Command("signup"))
    ```

Prompt templates are markup for the bot's parse mode; the data formatted into them is escaped
(`aiostep_dialogs.formatting`).
"""

from __future__ import annotations

from aiostep_dialogs import formatting, validators
from aiostep_dialogs import validators as v
from aiostep_dialogs.calls import CallDepthError, WizardNotSetUpError
from aiostep_dialogs.choices import ChoicesError
from aiostep_dialogs.formatting import Markup, effective_parse_mode, escape, fill
from aiostep_dialogs.requests import PrivateChatOnlyError
from aiostep_dialogs.validators import ValidationError
from aiostep_dialogs.wizard import Commands, Finish, StepSpec, Texts, Wizard, step

__all__ = [
    "CallDepthError",
    "ChoicesError",
    "Commands",
    "Finish",
    "Markup",
    "PrivateChatOnlyError",
    "StepSpec",
    "Texts",
    "ValidationError",
    "Wizard",
    "WizardNotSetUpError",
    "effective_parse_mode",
    "escape",
    "fill",
    "formatting",
    "step",
    "v",
    "validators",
]
