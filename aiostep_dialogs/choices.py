"""Choices beyond a fixed list of buttons: options that come from data, multi-select, pages and
the buttons' layout.

What a press resolves against is what the user was shown. The option values of a list that
came from a callable are stored with the conversation when it is shown (``"c"`` in the pending
step's kwargs: values only, never labels or objects); the values picked so far in a
multi-select are stored as ``"p"``. A toggle edits the checkmark on the message's own keyboard
(no call to the source); a page turn asks the source again and stores the values it shows.
The page itself lives only in the buttons' data (`aiostep_dialogs.button_data`), checked like
the rest of it, so a page turn stores no page.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from aiostep_dialogs.button_data import encode, index_of, is_current, parse, refusal
from aiostep_dialogs.i18n import N_
from aiostep_dialogs.injection import NOTHING, Needs, call, needs_of
from aiostep_dialogs.ui import quietly as _quietly
from aiostep_dialogs.validators import ValidationError

if TYPE_CHECKING:
    from aiostep_dialogs.spec import StepSpec
    from aiostep_dialogs.wizard import Wizard

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


def _where(wizard: Wizard, spec: StepSpec) -> str:
    return f"{type(wizard).__qualname__}.{spec.method.__name__}: choices"


async def fetch(wizard: Wizard, spec: StepSpec) -> dict[OptionValue, str]:
    """Call the step's choices callable now and check what it returned."""
    picker = spec.picker
    assert picker is not None and picker.source is not None
    language = await wizard._language()
    with language.speaking():  # aiogram's gettext(...) in it answers in this language
        raw = await call(picker.source, picker.needs, wizard.middleware_data, wizard)
    options = check_options(raw, _where(wizard, spec), _label_sayer(wizard))
    if picker.per_page is None and len(options) > MAX_BUTTONS - 1:
        raise ChoicesError(
            f"{_where(wizard, spec)} returned {len(options)} options, and Telegram shows at "
            f"most {MAX_BUTTONS} buttons: page them with per_page=..."
        )
    return options


def _label_sayer(wizard: Wizard) -> Callable[[Any], str]:
    """How a label that is not a plain string is said: a number as text, a ``Localized`` in
    the user's language."""

    def say(label: Any) -> str:
        if isinstance(label, (int, float)) and not isinstance(label, bool):
            return str(label)
        return wizard._say(label)

    return say


def _stored_values(raw: Any) -> list[OptionValue] | None:
    """A stored list of option values, or ``None`` when it is not one (never trusted blindly)."""
    if not isinstance(raw, list):
        return None
    for value in raw:
        if not (isinstance(value, (str, int)) and not isinstance(value, bool)):
            return None
    return raw


def restore(wizard: Wizard, meta: Mapping[str, Any]) -> None:
    """Read what a picker step stored with the conversation (shown values, picks)."""
    shown = _stored_values(meta.get("c"))
    if shown is not None:
        wizard._shown = shown
    picked = _stored_values(meta.get("p"))
    if picked:
        wizard._picked = tuple(picked)


async def prepare(wizard: Wizard, spec: StepSpec) -> None:
    """Before a picker step's prompt is stored and sent: ask the source for the options to
    show (they are stored with the write that follows)."""
    picker = spec.picker
    assert picker is not None
    if picker.source is not None:
        options = await fetch(wizard, spec)
        wizard._shown = list(options)
        wizard._labels = options


async def before_send(wizard: Wizard, spec: StepSpec) -> None:
    """Before a picker step's prompt is sent again (no write came first): ask the source, and
    if it now offers other values, store them with a new nonce (the old copies' buttons go
    stale) so a press resolves against what this prompt shows."""
    picker = spec.picker
    assert picker is not None
    if picker.source is None or wizard._labels is not None:
        return
    if await _refetch(wizard, spec):
        await wizard._park(spec, step_only=True)


async def _refetch(wizard: Wizard, spec: StepSpec) -> bool:
    """Ask the step's source for its options now; if they differ from those shown, they are
    the ones shown from now on, under a new nonce (buttons sent with the old list go stale, so
    no press can pick by an index into another list). Whether they changed (not yet stored)."""
    options = await fetch(wizard, spec)
    wizard._labels = options
    if list(options) == wizard._shown:
        return False
    wizard._shown = list(options)
    wizard.nonce = secrets.token_hex(4)
    return True


def _options(wizard: Wizard, spec: StepSpec) -> tuple[list[OptionValue], Mapping[Any, str]]:
    """The values a press resolves against, and their labels if known."""
    if spec.picker is not None and spec.picker.source is not None:
        return list(wizard._shown or ()), wizard._labels or {}
    static = spec.choices or {}
    if spec.localized:  # labels in the user's language
        return list(static), wizard._choice_labels(spec) or {}
    return list(static), cast("Mapping[Any, str]", static)


def markup(wizard: Wizard, spec: StepSpec, page: int = 0) -> InlineKeyboardMarkup | None:
    """The inline keyboard of a picker step: one page of options (checkmarks on picks), the
    page buttons, and Done for a multi-select."""
    picker = spec.picker
    assert picker is not None
    values, labels = _options(wizard, spec)
    texts = wizard.texts
    say = wizard._say  # Done, the page buttons and the mark in the user's language
    if not values:
        return None
    per_page = picker.per_page or len(values)
    pages = math.ceil(len(values) / per_page)
    page = min(max(page, 0), pages - 1)
    first = page * per_page
    picked = set(wizard._picked)
    buttons = []
    for index in range(first, min(first + per_page, len(values))):
        value = values[index]
        label = labels.get(value, str(value))
        if picker.multi:
            text = f"{say(texts.selected_mark)}{label}" if value in picked else label
            buttons.append(
                InlineKeyboardButton(text=text, callback_data=encode(wizard, f"t{index}"))
            )
        else:
            buttons.append(
                InlineKeyboardButton(text=label, callback_data=encode(wizard, str(index)))
            )
    rows = _rows(buttons, picker.columns)
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                text=say(texts.previous_page), callback_data=encode(wizard, f"p{page - 1}")
            )
        )
    if page + 1 < pages:
        nav.append(
            InlineKeyboardButton(
                text=say(texts.next_page), callback_data=encode(wizard, f"p{page + 1}")
            )
        )
    if nav:
        rows.append(nav)
    if picker.multi:
        done = InlineKeyboardButton(text=say(texts.done), callback_data=encode(wizard, "d"))
        rows.append([done])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _rows(
    buttons: list[InlineKeyboardButton], columns: int | None
) -> list[list[InlineKeyboardButton]]:
    if columns is None:
        # as for a fixed list: a few short labels on one row, else one a row
        short = len(buttons) <= 3 and sum(len(b.text) for b in buttons) <= 30
        columns = len(buttons) if short else 1
    return [buttons[i : i + columns] for i in range(0, len(buttons), columns)]


def _toggled(message: Message, data: str, mark: str, on: bool) -> InlineKeyboardMarkup | None:
    """The message's own keyboard with the checkmark of the button ``data`` set to ``on``."""
    keyboard = message.reply_markup
    if not isinstance(keyboard, InlineKeyboardMarkup):
        return None
    rows = []
    for row in keyboard.inline_keyboard:
        new_row = []
        for button in row:
            if button.callback_data == data:
                base = button.text[len(mark) :] if button.text.startswith(mark) else button.text
                button = button.model_copy(update={"text": f"{mark}{base}" if on else base})
            new_row.append(button)
        rows.append(new_row)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def on_press(wizard: Wizard, spec: StepSpec, query: CallbackQuery) -> Picked | None:
    """Handle a press on a picker step: the answer it gives (a pick, or Done with the picks),
    or ``None`` when it was not an answer (a toggle, a page turn, a refused press), which is
    then answered here and written as one step-only update (no attempts, no history)."""
    picker = spec.picker
    assert picker is not None
    texts = wizard.texts
    press = parse(query.data)
    if press is None or not is_current(wizard, press):
        await _quietly(query.answer(await wizard._said(refusal(texts, query))))
        await wizard._park(spec, step_only=True)  # the claim took the step: put it back
        return None
    values, _ = _options(wizard, spec)
    code = press.code
    if not picker.multi:
        index = index_of(code, "", len(values))
        if index is not None:
            return Picked(values[index])
    elif code == "d":
        count = len(wizard._picked)
        if count >= picker.min and (picker.max is None or count <= picker.max):
            return Picked(list(wizard._picked))
        await _quietly(query.answer(await wizard._said(texts.too_few, min=picker.min)))
        await wizard._park(spec, step_only=True)
        return None
    else:
        index = index_of(code, "t", len(values))
        if index is not None:
            await _toggle(wizard, spec, query, values[index])
            return None
    page = index_of(code, "p", _page_count(picker, len(values)))
    if page is None:  # a forged or outdated code: nothing changes
        await _quietly(query.answer(await wizard._said(texts.stale_button)))
        await wizard._park(spec, step_only=True)
        return None
    await _turn_page(wizard, spec, query, page)
    return None


def _page_count(picker: Picker, count: int) -> int:
    if picker.per_page is None:
        return 0
    return math.ceil(count / picker.per_page)


async def _toggle(wizard: Wizard, spec: StepSpec, query: CallbackQuery, value: Any) -> None:
    picker = spec.picker
    assert picker is not None
    picked = list(wizard._picked)
    on = value not in picked
    if on and picker.max is not None and len(picked) >= picker.max:
        await _quietly(query.answer(await wizard._said(wizard.texts.too_many, max=picker.max)))
        await wizard._park(spec, step_only=True)
        return
    if on:
        picked.append(value)
    else:
        picked.remove(value)
    wizard._picked = tuple(picked)
    await wizard._park(spec, step_only=True)
    await _quietly(query.answer())
    message = query.message
    if isinstance(message, Message) and query.data is not None:
        mark = await wizard._said(wizard.texts.selected_mark)
        keyboard = _toggled(message, query.data, mark, on)
        if keyboard is not None:
            await _quietly(message.edit_reply_markup(reply_markup=keyboard))


async def _turn_page(wizard: Wizard, spec: StepSpec, query: CallbackQuery, page: int) -> None:
    picker = spec.picker
    assert picker is not None
    if picker.source is not None:
        await _refetch(wizard, spec)  # a page turn shows the options as they are now
    await wizard._park(spec, step_only=True)
    await _quietly(query.answer())
    message = query.message
    if isinstance(message, Message):
        await wizard._language()  # the page's buttons are said in it
        await _quietly(message.edit_reply_markup(reply_markup=markup(wizard, spec, page)))


async def typed(wizard: Wizard, spec: StepSpec, text: Any) -> Any:
    """A typed answer at a picker step: a multi-select takes only presses; a single choice
    matches a value or label of the options shown (labels as the source gives them now)."""
    picker = spec.picker
    assert picker is not None
    if picker.multi:
        raise ValidationError(wizard.texts.use_buttons)
    raw = text.text if isinstance(text, Message) else text
    if spec.localized:
        await wizard._language()  # the labels a typed answer may match are said in it
    values, labels = _options(wizard, spec)
    if picker.source is not None and raw is not None:
        labels = await fetch(wizard, spec)
    lookup: dict[str, Any] = {}
    for value in values:
        lookup[str(value).casefold()] = value
        if value in labels:
            lookup[labels[value].strip().casefold()] = value
    if isinstance(raw, str) and raw.strip().casefold() in lookup:
        return lookup[raw.strip().casefold()]
    if not values or (picker.per_page is not None and len(values) > picker.per_page):
        raise ValidationError(wizard.texts.use_buttons)  # a long list would not help
    shown = ", ".join(labels.get(value, str(value)) for value in values)
    raise ValidationError(N_("Please choose one of: {labels}."), labels=shown)
