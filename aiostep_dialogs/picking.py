"""The runtime of a picker step (`@step(choices=callable)`, multi-select, pages): fetching
the options, its keyboard, and a press on it (a toggle, a page turn, done). Its declaration
(`Picker`, the checks of options) is `aiostep_dialogs.choices`; what it stores with the
conversation is read back by `aiostep_dialogs.record`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from aiostep_dialogs.button_data import encode, index_of, is_current, parse, refusal
from aiostep_dialogs.choices import (
    MAX_BUTTONS,
    ChoicesError,
    OptionValue,
    Picked,
    Picker,
    check_options,
)
from aiostep_dialogs.i18n import N_
from aiostep_dialogs.injection import call
from aiostep_dialogs.record import park
from aiostep_dialogs.ui import quietly as _quietly
from aiostep_dialogs.validators import ValidationError

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard
    from aiostep_dialogs.spec import StepSpec


def _where(wizard: RunningWizard, spec: StepSpec) -> str:
    return f"{type(wizard).__qualname__}.{spec.method.__name__}: choices"


async def fetch(wizard: RunningWizard, spec: StepSpec) -> dict[OptionValue, str]:
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


def _label_sayer(wizard: RunningWizard) -> Callable[[Any], str]:
    """How a label that is not a plain string is said: a number as text, a ``Localized`` in
    the user's language."""

    def say(label: Any) -> str:
        if isinstance(label, (int, float)) and not isinstance(label, bool):
            return str(label)
        return wizard._say(label)

    return say


async def prepare(wizard: RunningWizard, spec: StepSpec) -> None:
    """Before a picker step's prompt is stored and sent: ask the source for the options to
    show (they are stored with the write that follows)."""
    picker = spec.picker
    assert picker is not None
    if picker.source is not None:
        options = await fetch(wizard, spec)
        wizard._shown = list(options)
        wizard._labels = options


async def before_send(wizard: RunningWizard, spec: StepSpec) -> None:
    """Before a picker step's prompt is sent again (no write came first): ask the source, and
    if it now offers other values, store them with a new nonce (the old copies' buttons go
    stale) so a press resolves against what this prompt shows."""
    picker = spec.picker
    assert picker is not None
    if picker.source is None or wizard._labels is not None:
        return
    if await _refetch(wizard, spec):
        await park(wizard, spec, step_only=True)


async def _refetch(wizard: RunningWizard, spec: StepSpec) -> bool:
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


def _options(wizard: RunningWizard, spec: StepSpec) -> tuple[list[OptionValue], Mapping[Any, str]]:
    """The values a press resolves against, and their labels if known."""
    if spec.picker is not None and spec.picker.source is not None:
        return list(wizard._shown or ()), wizard._labels or {}
    static = spec.choices or {}
    if spec.localized:  # labels in the user's language
        return list(static), wizard._choice_labels(spec) or {}
    return list(static), cast("Mapping[Any, str]", static)


def markup(wizard: RunningWizard, spec: StepSpec, page: int = 0) -> InlineKeyboardMarkup | None:
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


def _toggled(
    message: Message, values: list[OptionValue], picked: tuple[Any, ...], mark: str
) -> InlineKeyboardMarkup | None:
    """The message's own keyboard with a checkmark on each option in ``picked``: drawn from
    the picks stored, not from the message's marks (a press quick after another carries the
    message as it was before the other's edit)."""
    keyboard = message.reply_markup
    if not isinstance(keyboard, InlineKeyboardMarkup):
        return None
    chosen = set(picked)
    rows = []
    for row in keyboard.inline_keyboard:
        new_row = []
        for button in row:
            press = parse(button.callback_data)
            index = None if press is None else index_of(press.code, "t", len(values))
            if index is not None:
                base = button.text[len(mark) :] if button.text.startswith(mark) else button.text
                text = f"{mark}{base}" if values[index] in chosen else base
                if text != button.text:
                    button = button.model_copy(update={"text": text})
            new_row.append(button)
        rows.append(new_row)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def on_press(wizard: RunningWizard, spec: StepSpec, query: CallbackQuery) -> Picked | None:
    """Handle a press on a picker step: the answer it gives (a pick, or Done with the picks),
    or ``None`` when it was not an answer (a toggle, a page turn, a refused press), which is
    then answered here and written as one step-only update (no attempts, no history)."""
    picker = spec.picker
    assert picker is not None
    texts = wizard.texts
    press = parse(query.data)
    if press is None or not is_current(wizard, press):
        await _quietly(query.answer(await wizard._said(refusal(texts, query))))
        await park(wizard, spec, step_only=True)  # the claim took the step: put it back
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
        await park(wizard, spec, step_only=True)
        return None
    else:
        index = index_of(code, "t", len(values))
        if index is not None:
            await _toggle(wizard, spec, query, values[index])
            return None
    page = index_of(code, "p", _page_count(picker, len(values)))
    if page is None:  # a forged or outdated code: nothing changes
        await _quietly(query.answer(await wizard._said(texts.stale_button)))
        await park(wizard, spec, step_only=True)
        return None
    await _turn_page(wizard, spec, query, page)
    return None


def _page_count(picker: Picker, count: int) -> int:
    if picker.per_page is None:
        return 0
    return math.ceil(count / picker.per_page)


async def _toggle(wizard: RunningWizard, spec: StepSpec, query: CallbackQuery, value: Any) -> None:
    picker = spec.picker
    assert picker is not None
    picked = list(wizard._picked)
    on = value not in picked
    if on and picker.max is not None and len(picked) >= picker.max:
        await _quietly(query.answer(await wizard._said(wizard.texts.too_many, max=picker.max)))
        await park(wizard, spec, step_only=True)
        return
    if on:
        picked.append(value)
    else:
        picked.remove(value)
    wizard._picked = tuple(picked)
    await park(wizard, spec, step_only=True)
    await _quietly(query.answer())
    message = query.message
    if isinstance(message, Message) and query.data is not None:
        mark = await wizard._said(wizard.texts.selected_mark)
        values, _ = _options(wizard, spec)
        keyboard = _toggled(message, values, wizard._picked, mark)
        if keyboard is not None:
            await _quietly(message.edit_reply_markup(reply_markup=keyboard))


async def _turn_page(
    wizard: RunningWizard, spec: StepSpec, query: CallbackQuery, page: int
) -> None:
    picker = spec.picker
    assert picker is not None
    if picker.source is not None:
        await _refetch(wizard, spec)  # a page turn shows the options as they are now
    await park(wizard, spec, step_only=True)
    await _quietly(query.answer())
    message = query.message
    if isinstance(message, Message):
        await wizard._language()  # the page's buttons are said in it
        await _quietly(message.edit_reply_markup(reply_markup=markup(wizard, spec, page)))


async def typed(wizard: RunningWizard, spec: StepSpec, text: Any) -> Any:
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
