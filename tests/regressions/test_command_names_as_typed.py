"""``Commands(back="/previous")``: the name is given as the user types it, with its ``/``.
aiogram's ``Command`` compares names without the prefix, so that command never matched and
``/previous`` silently did nothing but repeat the prompt. A name that can never be typed as a
command (a ``/`` in front, a space, empty, not a string) is refused where it is declared,
naming the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from aiostep_dialogs import Commands


@pytest.mark.parametrize(
    ("given", "error", "says"),
    [
        ({"back": "/previous"}, ValueError, "back='/previous'.*Commands\\(back='previous'\\)"),
        ({"cancel": "stop now"}, ValueError, "cancel='stop now'"),
        ({"skip": ""}, ValueError, "skip=''"),
        ({"back": 5}, TypeError, "back=5"),
    ],
)
def test_a_command_name_that_cannot_be_typed_is_refused_where_declared(
    given: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        Commands(**given)


def test_command_names_and_none_are_accepted() -> None:
    commands = Commands(back="previous", cancel=None, skip="pass_it")
    assert (commands.back, commands.cancel, commands.skip) == ("previous", None, "pass_it")
