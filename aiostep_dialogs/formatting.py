"""User data in prompts, escaped for the parse mode the message is sent with.

A prompt template (``"<b>{name}</b>, is that right?"``) is the author's markup; what is formatted
into it (``self.data``) came from users and is escaped for the parse mode in effect, so a name
like ``Ada <i`` shows as typed instead of breaking the message (Telegram refuses malformed markup
with ``400 can't parse entities``).

- [`escape`][aiostep_dialogs.escape] escapes one value for a parse mode;
  [`Markup`][aiostep_dialogs.Markup] marks a value as markup already (never escaped).
- [`fill`][aiostep_dialogs.fill] formats a template over a mapping, escaping every value.
- [`effective_parse_mode`][aiostep_dialogs.effective_parse_mode] says which parse mode a bot's
  message goes out with.

Prompts built with aiogram's formatting nodes (``aiogram.utils.formatting.Text``, ``Bold``...)
need none of this: they are sent as text plus entities, with no parse mode to get wrong.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.utils.text_decorations import html_decoration, markdown_decoration

__all__ = ["Markup", "effective_parse_mode", "escape", "fill"]

_LEGACY_MARKDOWN = re.compile(r"([_*`\[])")
#: aiogram's "whatever the bot's DefaultBotProperties say" (what ``Bot.send_message`` defaults to).
_BOT_DEFAULT = Default("parse_mode")


class Markup(str):
    """Text that is markup already: [`escape`][aiostep_dialogs.escape] and
    [`fill`][aiostep_dialogs.fill] pass it through as is.

    ``Markup("<b>VIP</b>")`` formatted into an HTML prompt stays bold; a rejection reason
    (``ValidationError(Markup(...))``), a step's ``error=`` or ``texts.progress`` wrapped in it
    is sent as markup instead of plain text. It is not for ``self.data``: storages hold plain
    JSON and refuse it. Mark a stored field as markup in the template instead: ``{badge!m}``.
    """

    __slots__ = ()


def escape(value: Any, parse_mode: str | None) -> str:
    """``str(value)`` escaped so that it shows as is in a message sent with ``parse_mode``.

    HTML: ``&``, ``<``, ``>`` become entities. MarkdownV2: every reserved character gets a
    ``\\``. Markdown (legacy): ``_ * ` [`` get a ``\\`` (legacy Markdown cannot escape inside an
    entity; prefer HTML or MarkdownV2). ``None``: unchanged. A [`Markup`][aiostep_dialogs.Markup]
    value is returned unchanged whatever the mode.

    Raises:
        ValueError: ``parse_mode`` is not one Telegram knows.
    """
    if isinstance(value, Markup):
        return value
    text = str(value)
    mode = (parse_mode or "").lower()
    if not mode:
        return text
    if mode == "html":
        return html_decoration.quote(text)
    if mode == "markdownv2":
        return markdown_decoration.quote(text)
    if mode == "markdown":
        return _LEGACY_MARKDOWN.sub(r"\\\1", text)
    raise ValueError(
        f"unknown parse_mode {parse_mode!r}: use 'HTML', 'MarkdownV2', 'Markdown' or None"
    )


def effective_parse_mode(bot: Bot, parse_mode: str | Default | None = _BOT_DEFAULT) -> str | None:
    """The parse mode a message from ``bot`` goes out with when sent with ``parse_mode``:
    ``Default("parse_mode")`` (aiogram's default) means the bot's
    ``DefaultBotProperties(parse_mode=...)``."""
    if isinstance(parse_mode, Default):
        value = bot.default[parse_mode.name]
        return str(value) if value else None
    return parse_mode or None


class _MissingKeys(dict[str, Any]):
    """A placeholder with no value stays in the text as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _as_written(field: str, conversion: str | None, spec: str) -> str:
    """A placeholder as the template wrote it (``{tip:.2f}``, ``{name!r}``)."""
    converted = "!" + conversion if conversion else ""
    return "{" + field + converted + (":" + spec if spec else "") + "}"


@dataclass
class _Unfilled:
    """A placeholder whose value is missing (its first name is not in the values)."""

    field: str
    conversion: str | None = None


class _Escaping(string.Formatter):
    def __init__(self, parse_mode: str | None) -> None:
        self.parse_mode = parse_mode

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if first and not first.isdigit() and first not in kwargs:
            return _Unfilled(field_name), first
        return super().get_field(field_name, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if isinstance(value, _Unfilled):
            return _Unfilled(value.field, conversion)
        if conversion == "m":  # {field!m}: the template says this value is markup
            return Markup(value)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        if isinstance(value, _Unfilled):
            text = _as_written(value.field, value.conversion, format_spec)
            return escape(text, self.parse_mode)
        text = format(value, format_spec)
        return Markup(text) if isinstance(value, Markup) else escape(text, self.parse_mode)


def fill(template: str, values: Mapping[str, Any], parse_mode: str | None) -> str:
    """``template.format_map(values)`` with every value escaped for ``parse_mode``.

    The template is markup and is not escaped. Format specs and conversions work as in
    ``str.format`` (``{price:.2f}``, ``{name!r}``); ``{field!m}`` inserts the value unescaped, as
    does a [`Markup`][aiostep_dialogs.Markup] value. A placeholder with no value stays as written.

    Raises:
        ValueError: the template is not a valid format string, or ``parse_mode`` is unknown.
    """
    parts = _compiled.get(template)
    if parts is None:
        parts = _compile(template)
    if parts is _COMPLEX:
        return _Escaping(parse_mode).vformat(template, (), _MissingKeys(values))
    if len(parts) == 1 and type(parts[0]) is str:
        return parts[0]  # no placeholder: the template as str.format gives it
    out: list[str] = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        name, conversion, spec = part
        if name not in values:  # no value: the placeholder stays as written
            out.append(escape(_as_written(name, conversion, spec), parse_mode))
            continue
        value = values[name]
        if conversion == "m":
            value = Markup(value)
        elif conversion == "r":
            value = repr(value)
        elif conversion == "s":
            value = str(value)
        elif conversion == "a":
            value = ascii(value)
        text = format(value, spec)
        out.append(text if isinstance(value, Markup) else escape(text, parse_mode))
    return "".join(out)


#: a template whose placeholders need string.Formatter (attribute or index lookups, nested
#: fields in a format spec, positional fields): filled by it, as before
_COMPLEX: tuple[Any, ...] = ()
_Part = Any  # a literal str, or (name, conversion, format spec)
#: templates parsed once: a wizard has a few, filled on every prompt
_compiled: dict[str, tuple[_Part, ...]] = {}


def _compile(template: str) -> tuple[_Part, ...]:
    """``template`` as literal text and simple named fields, or ``_COMPLEX``; remembered
    (up to 4,096 templates: callables may make new ones, which are then parsed each time).

    Raises:
        ValueError: the template is not a valid format string.
    """
    parts: list[_Part] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if (
            not name.isidentifier()
            or "{" in (spec or "")
            or conversion not in (None, "r", "s", "a", "m")
        ):
            parts = list(_COMPLEX)
            break
        parts.append((name, conversion, spec or ""))
    else:
        if not parts:
            parts.append("")
    compiled = tuple(parts) if parts else _COMPLEX
    if len(_compiled) < 4096:
        _compiled[template] = compiled
    return compiled
