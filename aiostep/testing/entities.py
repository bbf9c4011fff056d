"""Telegram's text parsing, for the test kit: markup in, plain text and entities out, or an error.

[`RecordingSession`][aiostep.testing.RecordingSession] runs every text and caption sent with a
``parse_mode`` through `parse_entities`, so a test fails where Telegram would answer
``400 Bad Request: can't parse entities`` (a user's ``<`` formatted into an HTML message), and the
simulated chat holds what the user would see: tags gone, ``&lt;`` shown as ``<``.

It follows Telegram's rules (tdlib's parsers) for the mistakes bots make, with messages in
Telegram's words; it is a checker, not a full renderer. Known differences: a bare ``&`` that
starts no entity is refused here (the Bot API docs require ``&amp;``; Telegram itself lets it
through), entities nested where Telegram would not nest them (inside ``code``/``pre``) are kept,
and URLs are not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiogram.types import MessageEntity

__all__ = ["PARSE_MODES", "EntityParseError", "parse_entities"]

#: The parse modes Telegram knows, lower-cased.
PARSE_MODES = frozenset({"html", "markdownv2", "markdown"})


class EntityParseError(ValueError):
    """The text is not valid markup for its parse mode; the message is Telegram's wording
    without the ``Bad Request: can't parse entities:`` prefix."""


def parse_entities(text: str, parse_mode: str) -> tuple[str, list[MessageEntity]]:
    """Parse ``text`` as Telegram does for ``parse_mode`` (``"HTML"``, ``"MarkdownV2"`` or
    ``"Markdown"``, any case).

    Returns:
        the text the user sees and its entities (offsets in UTF-16 code units, like Telegram's).

    Raises:
        EntityParseError: the markup is malformed (Telegram would refuse the message).
        ValueError: ``parse_mode`` is not one of Telegram's.
    """
    mode = parse_mode.lower()
    if mode == "html":
        return _Html(text).parse()
    if mode == "markdownv2":
        return _MarkdownV2(text).parse()
    if mode == "markdown":
        return _Markdown(text).parse()
    raise ValueError(
        f"unsupported parse_mode {parse_mode!r}; Telegram knows HTML, MarkdownV2, Markdown"
    )


def _utf16(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


@dataclass
class _Output:
    """The plain text being built, its length in UTF-16 units, and the entities found."""

    source: str
    chars: list[str] = field(default_factory=list)
    offset: int = 0
    entities: list[MessageEntity] = field(default_factory=list)

    def add(self, chars: str) -> None:
        self.chars.append(chars)
        self.offset += sum(_utf16(char) for char in chars)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.offset > start:  # Telegram drops empty entities
            self.entities.append(
                MessageEntity(type=kind, offset=start, length=self.offset - start, **extra)
            )

    def byte(self, index: int) -> int:
        """The UTF-8 byte offset of ``source[index]`` (Telegram reports those)."""
        return len(self.source[:index].encode("utf-8"))

    def result(self) -> tuple[str, list[MessageEntity]]:
        self.entities.sort(key=lambda e: (e.offset, -e.length))
        return "".join(self.chars), self.entities


# -- HTML ------------------------------------------------------------------------------------------

_HTML_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji", "tg-time": "date_time",
}  # fmt: skip
_HTML_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_UNQUOTED_VALUE = re.compile(r"[A-Za-z0-9.:/?=&_-]+")


@dataclass
class _Tag:
    name: str
    index: int
    start: int
    attributes: dict[str, str]
    language: str | None = None


class _Html:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Output(text)
        self.open: list[_Tag] = []

    def parse(self) -> tuple[str, list[MessageEntity]]:
        text, out, i = self.text, self.out, 0
        while i < len(text):
            char = text[i]
            if char == "&":
                decoded, i = self._entity(i)
                out.add(decoded)
            elif char == "<":
                i = self._end_tag(i) if text.startswith("</", i) else self._start_tag(i)
            else:
                out.add(char)
                i += 1
        if self.open:
            raise EntityParseError(
                f'Can\'t find end tag corresponding to start tag "{self.open[-1].name}"'
            )
        return out.result()

    def _entity(self, i: int) -> tuple[str, int]:
        match = _HTML_ENTITY.match(self.text, i)
        if match is None:
            raise EntityParseError(
                f'Unescaped "&" at byte offset {self.out.byte(i)}: write "&amp;" for "&"'
            )
        return self._char(match, i), match.end()

    def _char(self, match: re.Match[str], i: int) -> str:
        named, decimal, hexadecimal = match.groups()
        if named:
            return _NAMED[named]
        code = int(decimal) if decimal else int(hexadecimal, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or code == 0:
            raise EntityParseError(f"Invalid character reference at byte offset {self.out.byte(i)}")
        return chr(code)

    def _decode(self, value: str, i: int) -> str:
        """An attribute's value with its character references decoded (``i``: where it is)."""
        return _HTML_ENTITY.sub(lambda match: self._char(match, i), value)

    def _start_tag(self, begin: int) -> int:
        text, out = self.text, self.out
        i = begin + 1
        while i < len(text) and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= len(text):
            raise EntityParseError(f"Unclosed start tag at byte offset {out.byte(begin)}")
        name = text[begin + 1 : i].lower()
        if name not in _HTML_TYPES:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {out.byte(begin)}'
            )
        attributes: dict[str, str] = {}
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                raise EntityParseError(f"Unclosed start tag at byte offset {out.byte(begin)}")
            if text[i] == ">":
                i += 1
                break
            match = _ATTRIBUTE_NAME.match(text, i)
            if match is None:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {out.byte(i)}'
                )
            attribute, i = match.group().lower(), match.end()
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text) or text[i] != "=":
                attributes[attribute] = ""  # a flag, like <blockquote expandable>
                continue
            i += 1
            while i < len(text) and text[i].isspace():
                i += 1
            if i < len(text) and text[i] in "'\"":
                end = text.find(text[i], i + 1)
                if end < 0:
                    raise EntityParseError(
                        f"Unclosed value of the attribute {attribute!r} of the tag "
                        f'"{name}" at byte offset {out.byte(i)}'
                    )
                attributes[attribute] = self._decode(text[i + 1 : end], i)
                i = end + 1
            else:
                value = _UNQUOTED_VALUE.match(text, i)
                if value is None:
                    raise EntityParseError(
                        f"Expected a value of the attribute {attribute!r} of the tag "
                        f'"{name}" at byte offset {out.byte(i)}'
                    )
                attributes[attribute] = self._decode(value.group(), i)
                i = value.end()
        self._check(name, attributes, begin)
        self.open.append(_Tag(name, begin, out.offset, attributes))
        return i

    def _check(self, name: str, attributes: dict[str, str], begin: int) -> None:
        at = self.out.byte(begin)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        if name == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise EntityParseError(f'Tag "tg-emoji" must have an "emoji-id" at byte offset {at}')
        if name == "tg-time" and not attributes.get("unix", "").isdigit():
            raise EntityParseError(f'Tag "tg-time" must have a "unix" time at byte offset {at}')

    def _end_tag(self, begin: int) -> int:
        text, out = self.text, self.out
        if not self.open:
            raise EntityParseError(f"Unexpected end tag at byte offset {out.byte(begin)}")
        end = text.find(">", begin)
        if end < 0:
            raise EntityParseError(f"Unclosed end tag at byte offset {out.byte(begin)}")
        name = text[begin + 2 : end].strip().lower()
        tag = self.open.pop()
        if name != tag.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {out.byte(begin)}, expected "</{tag.name}>", '
                f'found "</{name}>"'
            )
        self._close(tag)
        return end + 1

    def _close(self, tag: _Tag) -> None:
        kind, attributes, out = _HTML_TYPES[tag.name], tag.attributes, self.out
        if tag.name == "code":
            language = attributes.get("class", "")
            parent = self.open[-1] if self.open else None
            if parent is not None and parent.name == "pre" and language.startswith("language-"):
                parent.language = language.removeprefix("language-")  # <pre><code class=...>
                return
            out.entity(kind, tag.start)
        elif tag.name == "pre":
            out.entity(kind, tag.start, language=tag.language)
        elif tag.name == "a":
            if attributes.get("href"):
                out.entity(kind, tag.start, url=attributes["href"])
        elif tag.name == "blockquote":
            expandable = "expandable" in attributes
            out.entity("expandable_blockquote" if expandable else kind, tag.start)
        elif tag.name == "tg-emoji":
            out.entity(kind, tag.start, custom_emoji_id=attributes["emoji-id"])
        elif tag.name == "tg-time":
            out.entity(
                kind,
                tag.start,
                unix_time=int(attributes["unix"]),
                date_time_format=attributes.get("format"),
            )
        else:
            out.entity(kind, tag.start)


# -- MarkdownV2 ------------------------------------------------------------------------------------

_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_ENTITY_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline",
    "strikethrough": "Strikethrough", "spoiler": "Spoiler", "code": "Code", "pre": "Pre",
    "text_link": "TextUrl", "custom_emoji": "CustomEmoji",
}  # fmt: skip


@dataclass
class _Open:
    kind: str
    index: int
    start: int
    language: str | None = None


def _pre_language(text: str, i: int) -> tuple[str | None, int]:
    """After an opening triple backtick at ``i``: the language and where the code starts."""
    end = i
    while end < len(text) and not text[end].isspace() and text[end] != "`":
        end += 1
    language = None
    if end != i and end < len(text) and text[end] != "`":
        language, i = text[i:end], end
    if text.startswith(("\r\n", "\n\r"), i):
        i += 2
    elif text.startswith(("\n", "\r"), i):
        i += 1
    return language, i


class _MarkdownV2:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Output(text)
        self.open: list[_Open] = []
        self.quote: _Open | None = None
        self.quote_end = 0  # where the last quoted line ended (UTF-16)
        self.quote_closed = False  # an expandable quote's "||" was seen

    def parse(self) -> tuple[str, list[MessageEntity]]:
        text, out, i = self.text, self.out, 0
        while i < len(text):
            top = self.open[-1] if self.open else None
            if i == 0 or text[i - 1] == "\n":
                i = self._line_start(i, top)
                if i >= len(text):
                    break
            char = text[i]
            if char == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                out.add(text[i + 1])
                i += 2
            elif top is not None and top.kind in ("code", "pre"):
                i = self._in_code(i, top)
            elif char == "\n":
                if self.quote is not None:
                    self.quote_end = out.offset
                out.add(char)
                i += 1
            elif char not in _RESERVED:
                out.add(char)
                i += 1
            elif self._closes(i, top):
                assert top is not None
                i = self._close(i, top)
            else:
                i = self._begin(i)
        if self.open:
            top = self.open[-1]
            raise EntityParseError(
                f"Can't find end of {_ENTITY_NAMES[top.kind]} entity at byte offset "
                f"{out.byte(top.index)}"
            )
        self._end_quote(out.offset)
        return out.result()

    def _line_start(self, i: int, top: _Open | None) -> int:
        text = self.text
        if top is not None and top.kind in ("code", "pre"):
            return i
        expandable = text.startswith("**>", i)
        if expandable or text.startswith(">", i):
            if self.quote is None or self.quote_closed:
                self._end_quote(self.quote_end)
                kind = "expandable_blockquote" if expandable else "blockquote"
                self.quote = _Open(kind, i, self.out.offset)
            return i + (3 if expandable else 1)
        if self.quote is not None:
            self._end_quote(self.quote_end)
        return i

    def _end_quote(self, end: int) -> None:
        quote, self.quote, self.quote_closed = self.quote, None, False
        if quote is not None and end > quote.start:
            self.out.entities.append(
                MessageEntity(type=quote.kind, offset=quote.start, length=end - quote.start)
            )

    def _in_code(self, i: int, top: _Open) -> int:
        text, out = self.text, self.out
        if top.kind == "code" and text[i] == "`":
            self.open.pop()
            out.entity("code", top.start)
            return i + 1
        if top.kind == "pre" and text.startswith("```", i):
            self.open.pop()
            out.entity("pre", top.start, language=top.language)
            return i + 3
        out.add(text[i])
        return i + 1

    def _closes(self, i: int, top: _Open | None) -> bool:
        if top is None:
            return False
        text, char = self.text, self.text[i]
        follows = text[i + 1] if i + 1 < len(text) else ""
        return {
            "bold": char == "*",
            "italic": char == "_" and follows != "_",
            "underline": text.startswith("__", i),
            "strikethrough": char == "~",
            "spoiler": text.startswith("||", i),
            "text_link": char == "]",
            "custom_emoji": char == "]",
        }.get(top.kind, False)

    def _close(self, i: int, top: _Open) -> int:
        text, out = self.text, self.out
        self.open.pop()
        if top.kind in ("text_link", "custom_emoji"):
            url = None
            i += 1
            if text.startswith("(", i):
                url, i = self._url(i)
            if top.kind == "custom_emoji":
                emoji_id = (url or "").partition("tg://emoji?id=")[2]
                if not emoji_id.isdigit():
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                out.entity("custom_emoji", top.start, custom_emoji_id=emoji_id)
            elif url:
                out.entity("text_link", top.start, url=url)
            return i
        out.entity(top.kind, top.start)
        return i + (2 if top.kind in ("underline", "spoiler") else 1)

    def _url(self, i: int) -> tuple[str, int]:
        text, begin, url = self.text, i, []
        i += 1
        while i < len(text) and text[i] != ")":
            if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ")\\":
                i += 1
            url.append(text[i])
            i += 1
        if i >= len(text):
            raise EntityParseError(f"Can't find end of a URL at byte offset {self.out.byte(begin)}")
        return "".join(url), i + 1

    def _begin(self, i: int) -> int:
        text, out = self.text, self.out
        char = text[i]
        if (
            char == "|"
            and text.startswith("||", i)
            and self.quote is not None
            and self.quote.kind == "expandable_blockquote"
            and (i + 2 == len(text) or text[i + 2] == "\n")
        ):
            self.quote_end, self.quote_closed = out.offset, True  # the end of an expandable quote
            return i + 2
        opening = {"_": "italic", "*": "bold", "~": "strikethrough", "[": "text_link"}
        kind = opening.get(char)
        width = 1
        if char == "_" and text.startswith("__", i):
            kind, width = "underline", 2
        elif char == "|" and text.startswith("||", i):
            kind, width = "spoiler", 2
        elif char == "!" and text.startswith("![", i):
            kind, width = "custom_emoji", 2
        elif char == "`":
            if text.startswith("```", i):
                language, start = _pre_language(text, i + 3)
                self.open.append(_Open("pre", i, out.offset, language))
                return start
            kind = "code"
        if kind is None:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        self.open.append(_Open(kind, i, out.offset))
        return i + width


# -- Markdown (legacy) -----------------------------------------------------------------------------


class _Markdown:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Output(text)

    def parse(self) -> tuple[str, list[MessageEntity]]:
        text, out, i = self.text, self.out, 0
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
                out.add(text[i + 1])
                i += 2
                continue
            if char not in "_*`[":
                out.add(char)
                i += 1
                continue
            begin, end_char, is_pre, language = i, "]" if char == "[" else char, False, None
            i += 1
            if char == "`" and text.startswith("``", i):
                is_pre = True
                language, i = _pre_language(text, i + 2)
            start = out.offset
            while i < len(text) and (
                text[i] != end_char or (is_pre and not text.startswith("``", i + 1))
            ):
                out.add(text[i])
                i += 1
            if i >= len(text):
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {out.byte(begin)}"
                )
            if char == "[":
                url = text[begin + 1 : i]
                if text.startswith("(", i + 1):
                    close = text.find(")", i + 2)
                    close = len(text) - 1 if close < 0 else close
                    url, i = text[i + 2 : close], close
                out.entity("text_link", start, url=url)
            elif char == "`":
                out.entity(
                    "pre" if is_pre else "code", start, **({"language": language} if is_pre else {})
                )
            else:
                out.entity("italic" if char == "_" else "bold", start)
            i += 3 if is_pre else 1
        return out.result()
