"""``Texts(cancelled=None)`` (meant as "say nothing") or another value that is not a text was
accepted, and raised ``TypeError: cannot say None`` only when the wizard came to say it (the
user who cancelled got no reply). It is refused where ``Texts`` is made, naming the field and
what to give instead."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.utils.i18n import lazy_gettext

from aiostep_dialogs import Texts


@pytest.mark.parametrize(
    ("given", "error"),
    [({"cancelled": None}, TypeError), ({"reminder": 5}, TypeError), ({"gave_up": {}}, ValueError)],
)
def test_a_text_that_cannot_be_said_is_refused_by_texts(
    given: dict[str, Any], error: type[Exception]
) -> None:
    (name,) = given
    with pytest.raises(error, match=rf"Texts\({name}=\.\.\.\)"):
        Texts(**given)


def test_every_kind_of_text_is_accepted() -> None:
    Texts(
        cancelled="Bye.",
        gave_up={"en": "Enough.", "ru": "Хватит."},
        reminder=lambda locale: "Still there?",
        timed_out=lazy_gettext("Time is up."),
    )
