"""RecordingSession parses text sent with a parse_mode the way Telegram does: malformed markup is a
400 "can't parse entities", and the chat holds what the user sees (plain text and entities)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage
from aiogram.types import BufferedInputFile, InputMediaPhoto, MessageEntity
from aiogram.utils.formatting import Bold, Text

from aiostep.testing import RecordingSession
from aiostep.testing.entities import EntityParseError, parse_entities


def entity(kind: str, offset: int, length: int, **extra: object) -> MessageEntity:
    return MessageEntity(type=kind, offset=offset, length=length, **extra)


# -- the parser, per parse mode ------------------------------------------------------------------

GOOD = [
    # (parse mode, markup, what the user sees, entities)
    ("HTML", "plain text", "plain text", []),
    ("HTML", "Ada &lt;i &amp; &gt; &quot;x&quot; &#60;&#x3C;", 'Ada <i & > "x" <<', []),
    ("HTML", "a > b", "a > b", []),  # Telegram lets a bare ">" through
    ("HTML", "<b>b</b><strong>s</strong>", "bs", [entity("bold", 0, 1), entity("bold", 1, 1)]),
    ("HTML", "<i>i</i><em>e</em>", "ie", [entity("italic", 0, 1), entity("italic", 1, 1)]),
    ("HTML", "<u>u</u><ins>n</ins>", "un", [entity("underline", 0, 1), entity("underline", 1, 1)]),
    (
        "HTML",
        "<s>s</s><strike>t</strike><del>d</del>",
        "std",
        [entity("strikethrough", i, 1) for i in range(3)],
    ),
    (
        "HTML",
        '<span class="tg-spoiler">a</span><tg-spoiler>b</tg-spoiler>',
        "ab",
        [entity("spoiler", 0, 1), entity("spoiler", 1, 1)],
    ),
    (
        "HTML",
        '<a href="https://x.org/?a=1&amp;b=2">x</a>',
        "x",
        [entity("text_link", 0, 1, url="https://x.org/?a=1&b=2")],
    ),
    ("HTML", "<code>x &lt; 1</code>", "x < 1", [entity("code", 0, 5)]),
    (
        "HTML",
        '<pre><code class="language-py">x</code></pre>',
        "x",
        [entity("pre", 0, 1, language="py")],
    ),
    ("HTML", "<pre>x</pre>", "x", [entity("pre", 0, 1)]),
    ("HTML", "<blockquote>q</blockquote>", "q", [entity("blockquote", 0, 1)]),
    ("HTML", "<blockquote expandable>q</blockquote>", "q", [entity("expandable_blockquote", 0, 1)]),
    (
        "HTML",
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
        "👍",
        [entity("custom_emoji", 0, 2, custom_emoji_id="5368324170671202286")],
    ),
    (
        "HTML",
        "<B>nested <I>tags</I></B>",
        "nested tags",
        [entity("bold", 0, 11), entity("italic", 7, 4)],
    ),
    ("HTML", "😀 <b>x</b>", "😀 x", [entity("bold", 3, 1)]),  # offsets in UTF-16 units
    ("MarkdownV2", "plain text", "plain text", []),
    ("MarkdownV2", r"a\_b\*c\.\!\#\(\)", "a_b*c.!#()", []),
    (
        "MarkdownV2",
        "*b* _i_ __u__ ~s~ ||p||",
        "b i u s p",
        [
            entity("bold", 0, 1),
            entity("italic", 2, 1),
            entity("underline", 4, 1),
            entity("strikethrough", 6, 1),
            entity("spoiler", 8, 1),
        ],
    ),
    (
        "MarkdownV2",
        r"[link](https://x.org/a\)b)",
        "link",
        [entity("text_link", 0, 4, url="https://x.org/a)b")],
    ),
    ("MarkdownV2", "`x.y-z`", "x.y-z", [entity("code", 0, 5)]),  # reserved chars are code
    (
        "MarkdownV2",
        "```python\nprint(1)\n```",
        "print(1)\n",
        [entity("pre", 0, 9, language="python")],
    ),
    (
        "MarkdownV2",
        "*bold _italic_*",
        "bold italic",
        [entity("bold", 0, 11), entity("italic", 5, 6)],
    ),
    ("MarkdownV2", ">quoted\n>lines\nafter", "quoted\nlines\nafter", [entity("blockquote", 0, 12)]),
    ("MarkdownV2", "**>hidden\n>more||", "hidden\nmore", [entity("expandable_blockquote", 0, 11)]),
    ("Markdown", "a\\_b", "a_b", []),
    ("Markdown", "a.b-c!(x)", "a.b-c!(x)", []),  # nothing else is reserved
    (
        "Markdown",
        "*b* _i_ `c` [l](https://x.org)",
        "b i c l",
        [
            entity("bold", 0, 1),
            entity("italic", 2, 1),
            entity("code", 4, 1),
            entity("text_link", 6, 1, url="https://x.org"),
        ],
    ),
    ("Markdown", "```py\nx```", "x", [entity("pre", 0, 1, language="py")]),
]

BAD = [
    # (parse mode, markup, the start of Telegram's complaint)
    ("HTML", "Ada <i", "Unclosed start tag at byte offset 4"),
    ("HTML", "1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("HTML", "<p>paragraph</p>", 'Unsupported start tag "p" at byte offset 0'),
    ("HTML", "<script>x</script>", 'Unsupported start tag "script"'),
    ("HTML", "<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
    ("HTML", "<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
    ("HTML", "<b><i>x</b></i>", "Unmatched end tag"),
    ("HTML", "x</b>", "Unexpected end tag at byte offset 1"),
    ("HTML", "<b>x</b", "Unclosed end tag"),
    ("HTML", "Tom & Jerry", 'Unescaped "&" at byte offset 4'),
    ("HTML", "&nbsp;", 'Unescaped "&"'),
    ("HTML", "<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ("HTML", "<tg-emoji>x</tg-emoji>", 'Tag "tg-emoji" must have an "emoji-id"'),
    ("HTML", '<a href="x>x</a>', "Unclosed value of the attribute 'href'"),
    ("HTML", "é<i", "Unclosed start tag at byte offset 2"),  # offsets in UTF-8 bytes
    ("MarkdownV2", "a_b*c", "Can't find end of"),
    ("MarkdownV2", "Done.", "Character '.' is reserved"),
    ("MarkdownV2", "1-2", "Character '-' is reserved"),
    ("MarkdownV2", "(x)", "Character '(' is reserved"),
    ("MarkdownV2", "a | b", "Character '|' is reserved"),
    ("MarkdownV2", "a > b", "Character '>' is reserved"),
    ("MarkdownV2", "Hi!", "Character '!' is reserved"),
    ("MarkdownV2", "*bold", "Can't find end of Bold entity at byte offset 0"),
    ("MarkdownV2", "__under", "Can't find end of Underline entity"),
    ("MarkdownV2", "`code", "Can't find end of Code entity"),
    ("MarkdownV2", "```pre", "Can't find end of Pre entity"),
    ("MarkdownV2", "[link", "Can't find end of TextUrl entity"),
    ("MarkdownV2", "[link](x.org", "Can't find end of a URL"),
    ("Markdown", "a_b", "Can't find end of the entity starting at byte offset 1"),
    ("Markdown", "*bold", "Can't find end of the entity starting at byte offset 0"),
    ("Markdown", "`code", "Can't find end of the entity"),
    ("Markdown", "[link", "Can't find end of the entity"),
    ("Markdown", "```pre`", "Can't find end of the entity"),
]


@pytest.mark.parametrize(("mode", "markup", "text", "entities"), GOOD)
def test_valid_markup_gives_the_text_the_user_sees_and_its_entities(
    mode: str, markup: str, text: str, entities: list[MessageEntity]
) -> None:
    assert parse_entities(markup, mode) == (text, entities)


@pytest.mark.parametrize(("mode", "markup", "complaint"), BAD)
def test_malformed_markup_is_refused_in_telegrams_words(
    mode: str, markup: str, complaint: str
) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_entities(markup, mode)
    assert str(info.value).startswith(complaint)


def test_parse_modes_are_case_insensitive_and_unknown_ones_refused() -> None:
    assert parse_entities("<b>x</b>", "html") == ("x", [entity("bold", 0, 1)])
    with pytest.raises(ValueError, match="unsupported parse_mode 'BBCode'"):
        parse_entities("[b]x[/b]", "BBCode")


def test_aiogram_formatting_output_parses_back_to_the_same_text_and_entities() -> None:
    node = Text("Ada <i ", Bold("a_b*c & ", Text("é😀")), " [x](y).")
    text, entities = node.render()
    assert parse_entities(node.as_html(), "HTML") == (text, entities)
    assert parse_entities(node.as_markdown(), "MarkdownV2") == (text, entities)


# -- the session ---------------------------------------------------------------------------------


@pytest.fixture
async def html_bot() -> AsyncIterator[Bot]:
    bot = Bot(
        "42:TEST", session=RecordingSession(), default=DefaultBotProperties(parse_mode="HTML")
    )
    yield bot
    await bot.session.close()


def session_of(bot: Bot) -> RecordingSession:
    assert isinstance(bot.session, RecordingSession)
    return bot.session


async def test_the_bots_default_parse_mode_applies_and_bad_markup_is_a_bad_request(
    html_bot: Bot,
) -> None:
    with pytest.raises(TelegramBadRequest) as info:
        await html_bot.send_message(7, "Ada <i, is that right?")
    assert info.value.message.startswith(
        'Bad Request: can\'t parse entities: Unsupported start tag "i," at byte offset 4'
    )
    session = session_of(html_bot)
    assert len(session.calls_of(SendMessage)) == 1  # Telegram got the call, and refused it
    assert session.chat_log(7).bot_messages() == []


async def test_a_parsed_message_holds_the_plain_text_and_entities(html_bot: Bot) -> None:
    message = await html_bot.send_message(7, "<b>Ada &lt;i</b>, right?")
    assert message.text == "Ada <i, right?"
    assert message.entities == [entity("bold", 0, 6)]
    record = session_of(html_bot).chat_log(7).bot_messages()[-1]
    assert record.text == "Ada <i, right?"
    assert session_of(html_bot).chat_log(7).lines[-1] == "bot> Ada <i, right?"
    assert session_of(html_bot).calls_of(SendMessage)[0].text == "<b>Ada &lt;i</b>, right?"


async def test_an_explicit_parse_mode_wins_and_none_turns_parsing_off(html_bot: Bot) -> None:
    plain = await html_bot.send_message(7, "1 < 2 & <b>", parse_mode=None)
    assert plain.text == "1 < 2 & <b>" and plain.entities is None
    markdown = await html_bot.send_message(7, "*x* <b", parse_mode="MarkdownV2")
    assert markdown.text == "x <b"
    with pytest.raises(TelegramBadRequest, match=r"can't parse entities: Character '\.'"):
        await html_bot.send_message(7, "Done.", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="Bad Request: unsupported parse_mode"):
        await html_bot.send_message(7, "x", parse_mode="BBCode")


async def test_aiogram_formatting_nodes_send_entities_and_are_never_parsed(html_bot: Bot) -> None:
    message = await html_bot.send_message(7, **Text("1 < 2 & ", Bold("<b>")).as_kwargs())
    assert message.text == "1 < 2 & <b>"
    assert message.entities == [entity("bold", 8, 3)]


async def test_edits_and_captions_are_parsed_too(html_bot: Bot) -> None:
    sent = await html_bot.send_message(7, "first")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await html_bot.edit_message_text("x <y", chat_id=7, message_id=sent.message_id)
    edited = await html_bot.edit_message_text(
        "<i>x &lt;y</i>", chat_id=7, message_id=sent.message_id
    )
    assert not isinstance(edited, bool) and edited.text == "x <y"

    photo = BufferedInputFile(b"jpg", "p.jpg")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await html_bot.send_photo(7, photo, caption="a <b")
    shown = await html_bot.send_photo(7, photo, caption="<b>a</b> &amp; b")
    assert shown.caption == "a & b" and shown.caption_entities == [entity("bold", 0, 1)]
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await html_bot.edit_message_caption(chat_id=7, message_id=shown.message_id, caption="<")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await html_bot.send_media_group(7, [InputMediaPhoto(media="f", caption="a <b")])
    group = await html_bot.send_media_group(7, [InputMediaPhoto(media="f", caption="<u>u</u>")])
    assert group[0].caption == "u" and group[0].caption_entities == [entity("underline", 0, 1)]


async def test_responders_get_the_method_as_the_bot_sent_it(html_bot: Bot) -> None:
    seen: list[str] = []
    session_of(html_bot).respond("sendMessage", lambda method: seen.append(method.text))
    await html_bot.send_message(7, "<b>x</b>")
    assert seen == ["<b>x</b>"]
    with pytest.raises(TelegramBadRequest):  # Telegram parses before anything else
        await html_bot.send_message(7, "<x")


async def test_check_entities_false_records_the_markup_as_sent() -> None:
    session = RecordingSession(check_entities=False)
    bot = Bot("42:TEST", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    try:
        message = await bot.send_message(7, "Ada <i")
        assert message.text == "Ada <i"
    finally:
        await bot.session.close()
