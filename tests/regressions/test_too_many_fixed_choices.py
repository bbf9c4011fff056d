"""A fixed list of more inline buttons than Telegram shows on one keyboard (``MAX_BUTTONS``,
a list of countries, say) was accepted, and every prompt of that step then failed to send.
It is refused at ``@step``, naming the count and the fix (``per_page=``), as the same list
with ``multi=True`` or ``columns=`` already was; paged, it is accepted."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest

from aiostep_dialogs import ChoicesError, step
from aiostep_dialogs.choices import MAX_BUTTONS

COUNTRIES = [f"country {i}" for i in range(MAX_BUTTONS + 1)]


class State(Enum):
    COUNTRY = auto()


def test_a_fixed_list_of_more_inline_buttons_than_telegram_shows_is_refused() -> None:
    with pytest.raises(ChoicesError, match=rf"{MAX_BUTTONS + 1} options.*per_page="):

        @step(State.COUNTRY, prompt="Where from?", choices=COUNTRIES)
        async def country(self: Any, value: str) -> None: ...


def test_the_same_list_paged_or_at_the_limit_is_accepted() -> None:
    @step(State.COUNTRY, prompt="Where from?", choices=COUNTRIES, per_page=10)
    async def paged(self: Any, value: str) -> None: ...

    @step(State.COUNTRY, prompt="Where from?", choices=COUNTRIES[:MAX_BUTTONS])
    async def at_the_limit(self: Any, value: str) -> None: ...
