"""Choices beyond a fixed list of buttons: options that come from data, multi-select, pages and
the buttons' layout.

What a press resolves against is what the user was shown. The option values of a list that
came from a callable are stored with the conversation when it is shown (``"c"`` in the pending
step's kwargs: values only, never labels or objects); the values picked so far in a
multi-select are stored as ``"p"``. A toggle edits the checkmark on the message's own keyboard
(no call to the source); a page turn asks the source again and stores the values it shows.
The page itself lives only in the buttons' data (`aiostep_dialogs.button_data`), checked like
the rest of it, so a page turn stores no page.

This module holds the declaration (`Picker`, made by ``@step(choices=...)``, and the checks of
options); the step at work is `aiostep_dialogs.picking`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiostep_dialogs.injection import NOTHING, Needs, needs_of

__all__ = ["ChoiceSource", "ChoicesError", "Picker"]

#: An option's value: what the step method gets, and what is stored with the conversation.
OptionValue: TypeAlias = str | int
#: What a choices callable returns: ``{value: label}`` or a list of values (each its own label).
Options: TypeAlias = Mapping[Any, Any] | Sequence[Any]
#: ``choices=`` given as a callable: called with the wizard (and handler data by name).
ChoiceSource: TypeAlias = Callable[..., Options | Awaitable[Options]]

#: The longest string option value: values are stored with the conversation.
MAX_VALUE_LENGTH = 64
#: The most options one list may hold (each value is stored while it is shown).
MAX_OPTIONS = 1000
#: Telegram shows at most 100 buttons on one inline keyboard.
MAX_BUTTONS = 100
_SAFE_INT = 2**53  # larger ints lose precision in JSON readers (Redis' Lua cjson among them)


class ChoicesError(ValueError):
    """A step's ``choices`` (static, or what its callable returned) cannot be offered: a value
    that is not a short string or an int, a duplicate, or more buttons than Telegram shows.
    The message names the step, the offending value and the fix."""


@dataclass(frozen=True)
class Picker:
    """How a step offers its choices beyond a fixed single-choice list (see
    [`step`][aiostep_dialogs.step]): a ``source`` called when the prompt is shown, ``multi``
    select with ``min``/``max`` picks, ``per_page`` options a page, ``columns`` buttons a row."""

    source: ChoiceSource | None = None
    multi: bool = False
    min: int = 1
    max: int | None = None
    per_page: int | None = None
    columns: int | None = None
    #: what ``source`` asks for from the handler data after the wizard (read at definition)
    needs: Needs = NOTHING


@dataclass(frozen=True)
class Picked:
    """The answer a press gave (a value, or a multi-select's list of values): already one of
    the options shown, so it skips the typed-answer matching."""

    value: Any


def make_picker(
    source: ChoiceSource | None,
    *,
    where: str,
    static: Mapping[str, str] | None,
    keyboard: str,
    multi: bool,
    min: int | None,
    max: int | None,
    per_page: int | None,
    columns: int | None,
) -> Picker | None:
    """The ``Picker`` of a step's options, or ``None`` for a plain fixed list (which then costs
    nothing more than before). Raises ``TypeError``/``ValueError`` naming a bad option."""
    picks = (min, max)
    if (source, multi, per_page, columns) == (None, False, None, None) and picks == (None, None):
        return None
    if source is None and static is None:
        raise TypeError(f"{where}: multi=, min=, max=, per_page= and columns= need choices=")
    if keyboard != "inline":
        raise TypeError(
            f"{where}: choices from a callable, multi=, per_page= and columns= are inline "
            "buttons: leave keyboard='inline'"
        )
    if not multi and picks != (None, None):
        raise TypeError(f"{where}: min= and max= count the picks of a multi-select: add multi=True")
    for name, number in (("per_page", per_page), ("columns", columns)):
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or number < 1
        ):
            raise ValueError(f"{where}: {name} must be an int from 1, got {number!r}")
    low = 1 if min is None else min
    if isinstance(low, bool) or not isinstance(low, int) or low < 0:
        raise ValueError(f"{where}: min must be an int from 0, got {min!r}")
    if max is not None and (isinstance(max, bool) or not isinstance(max, int) or max < 1):
        raise ValueError(f"{where}: max must be an int from 1, got {max!r}")
    if max is not None and low > max:
        raise ValueError(f"{where}: min={low} is above max={max}: nothing could be submitted")
    if per_page is not None and per_page > MAX_BUTTONS - 3:
        raise ValueError(
            f"{where}: per_page={per_page}, and a page holds at most {MAX_BUTTONS - 3} options"
        )
    if static is not None:
        check_static(static, per_page, where)
    needs = NOTHING if source is None else needs_of(source, 1, owner=f"{where}: choices")
    return Picker(source, multi, low, max, per_page, columns, needs)


def static_options(options: Mapping[Any, Any], where: str) -> dict[OptionValue, Any]:
    """A fixed list's ``{value: label}`` as offered: each value a str or an int (what the step
    method gets, and stores), a number given as a label said as its text."""
    offered: dict[OptionValue, Any] = {}
    for value, label in options.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ChoicesError(
                f"{where}: choices: the option value {value!r} is a {type(value).__name__}; "
                "each must be a str or an int (the step method gets it, and it is stored "
                "with the data): give {id: label} and look the object up in the step method"
            )
        number = isinstance(label, (int, float)) and not isinstance(label, bool)
        offered[value] = str(label) if number else label
    return offered


def check_button_count(count: int, where: str) -> None:
    """Refuse a plain fixed list of more inline buttons than one keyboard shows."""
    if count > MAX_BUTTONS:
        raise ChoicesError(
            f"{where}: choices has {count} options, and Telegram shows at most {MAX_BUTTONS} "
            "buttons: page them with per_page=..."
        )


def check_static(options: Mapping[str, str], per_page: int | None, where: str) -> None:
    """Refuse a fixed list a picker could not show."""
    for value in options:
        _check_value(value, f"{where}: choices")
    if per_page is None and len(options) > MAX_BUTTONS - 1:
        raise ChoicesError(
            f"{where}: choices has {len(options)} options, and Telegram shows at most "
            f"{MAX_BUTTONS} buttons: page them with per_page=..."
        )


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, str):
        if not 1 <= len(value) <= MAX_VALUE_LENGTH:
            raise ChoicesError(
                f"{where}: the option value {value[:80]!r} is {len(value)} characters; values "
                f"are stored with the conversation while shown, so each must be a str of 1 to "
                f"{MAX_VALUE_LENGTH} characters or an int: use a short id (a database key) as "
                "the value and show the long text as its label ({id: label})"
            )
        return
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= _SAFE_INT:
            raise ChoicesError(
                f"{where}: the option value {value} is too large to store exactly in JSON "
                "(at most 2**53 - 1): use it as a str"
            )
        return
    raise ChoicesError(
        f"{where}: the option value {value!r} is a {type(value).__name__}; values are stored "
        "with the conversation while shown, so each must be a short str or an int (a JSON "
        "scalar): return {id: label} with the object's id and look the object up in the step "
        "method"
    )


def check_options(raw: Any, where: str, say: Callable[[Any], str] = str) -> dict[OptionValue, str]:
    """``raw`` (what a choices callable returned) as ``{value: label}``, each label as ``say``
    says it (in the user's language: a label may be a ``Localized``); ``ChoicesError`` naming
    what cannot be offered."""
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, Sequence) and not isinstance(raw, (str, bytes)):
        pairs = [(value, value) for value in raw]
    else:
        raise ChoicesError(
            f"{where} returned {type(raw).__name__}; return {{value: label}} or a list of values"
        )
    if len(pairs) > MAX_OPTIONS:
        raise ChoicesError(
            f"{where} returned {len(pairs)} options; at most {MAX_OPTIONS} are offered at once "
            "(their values are stored while shown): narrow the list (a search step first)"
        )
    options: dict[OptionValue, str] = {}
    for value, label in pairs:
        _check_value(value, where)
        if value in options:
            raise ChoicesError(f"{where} returned the value {value!r} twice; values must differ")
        options[value] = label if type(label) is str else say(label)
    return options
