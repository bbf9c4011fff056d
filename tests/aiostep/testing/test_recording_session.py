"""RecordingSession: records Bot API calls and answers them like Telegram, without a network."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import GetChatMemberCount, SendMessage
from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message

from aiostep.testing import RecordingSession

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="y")]]
)


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    bot = Bot("42:TEST", session=RecordingSession())
    yield bot
    await bot.session.close()


def session_of(bot: Bot) -> RecordingSession:
    assert isinstance(bot.session, RecordingSession)
    return bot.session


async def test_send_message_returns_a_message_from_the_bot_with_ids_per_chat(bot: Bot) -> None:
    first = await bot.send_message(7, "hello", reply_markup=KEYBOARD)
    second = await bot.send_message(7, "again")
    other = await bot.send_message(8, "elsewhere")

    assert isinstance(first, Message)
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.chat.id == 7 and first.text == "hello"
    assert first.from_user is not None and first.from_user.id == 42 and first.from_user.is_bot
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump() == KEYBOARD.model_dump()
    assert first.bot is bot  # bound, so shortcuts like first.edit_text() work


async def test_every_call_is_recorded_in_order(bot: Bot) -> None:
    await bot.send_message(7, "a")
    await bot.send_chat_action(7, "typing")
    await bot.send_message(7, "b")

    session = session_of(bot)
    assert [call.__api_method__ for call in session.calls] == [
        "sendMessage",
        "sendChatAction",
        "sendMessage",
    ]
    assert [call.text for call in session.calls_of(SendMessage)] == ["a", "b"]
    assert len(session.calls_of("sendChatAction")) == 1
    assert session.last_call is session.calls[-1]


async def test_get_me_is_the_bot_user_from_the_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 42 and me.is_bot and me.username == "test_bot"


async def test_methods_returning_bool_answer_true(bot: Bot) -> None:
    assert await bot.set_my_commands([BotCommand(command="start", description="Start")]) is True
    assert await bot.send_chat_action(7, "typing") is True
    assert [c.command for c in await bot.get_my_commands()] == ["start"]


async def test_unknown_method_raises_not_implemented_naming_it(bot: Bot) -> None:
    with pytest.raises(NotImplementedError, match=r"getChatMemberCount.*session\.respond"):
        await bot.get_chat_member_count(-100)


async def test_respond_supplies_a_result_or_a_failure(bot: Bot) -> None:
    session = session_of(bot)
    session.respond("getChatMemberCount", lambda method: 5)
    assert await bot(GetChatMemberCount(chat_id=-100)) == 5

    def blocked(method: object) -> object:
        raise TelegramForbiddenError(method=SendMessage(chat_id=7, text="x"), message="blocked")

    session.respond("sendMessage", blocked)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(7, "hi")
    session.respond("sendMessage", None)
    assert (await bot.send_message(7, "hi")).text == "hi"


async def test_edit_text_updates_the_chat_model_and_drops_the_keyboard(bot: Bot) -> None:
    sent = await bot.send_message(7, "question", reply_markup=KEYBOARD)
    edited = await sent.edit_text("answered")

    assert isinstance(edited, Message) and edited.text == "answered"
    assert edited.edit_date is not None
    record = session_of(bot).chat_log(7).records[sent.message_id]
    assert record.text == "answered" and record.edited
    # like Telegram: an edit without reply_markup removes the inline keyboard
    assert record.buttons == []


async def test_edit_reply_markup_changes_only_the_buttons(bot: Bot) -> None:
    sent = await bot.send_message(7, "question")
    await sent.edit_reply_markup(reply_markup=KEYBOARD)
    record = session_of(bot).chat_log(7).records[sent.message_id]
    assert record.text == "question" and record.buttons == [["Yes"]]


async def test_inline_message_edit_returns_true(bot: Bot) -> None:
    assert await bot.edit_message_text("x", inline_message_id="abc") is True


async def test_strict_mode_refuses_what_telegram_refuses(bot: Bot) -> None:
    sent = await bot.send_message(7, "same", reply_markup=KEYBOARD)
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await sent.edit_text("same", reply_markup=KEYBOARD)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=7, message_id=99)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(7, 99)


async def test_lenient_mode_ignores_mistakes() -> None:
    bot = Bot("42:TEST", session=RecordingSession(strict=False))
    sent = await bot.send_message(7, "same")
    assert isinstance(await sent.edit_text("same"), Message)
    assert await bot.delete_message(7, 99) is True


async def test_delete_flags_the_message(bot: Bot) -> None:
    sent = await bot.send_message(7, "bye")
    assert await sent.delete() is True
    log = session_of(bot).chat_log(7)
    assert log.records[sent.message_id].deleted
    assert "bot [deleted]> bye" in log.transcript()


async def test_copy_message_copies_content(bot: Bot) -> None:
    sent = await bot.send_message(7, "original")
    copied = await bot.copy_message(chat_id=8, from_chat_id=7, message_id=sent.message_id)
    assert session_of(bot).chat_log(8).records[copied.message_id].text == "original"


async def test_media_sends_return_messages_with_that_media(bot: Bot) -> None:
    photo = await bot.send_photo(7, "file-1", caption="look")
    document = await bot.send_document(7, "doc-1")
    sticker = await bot.send_sticker(7, "st-1")
    contact = await bot.send_contact(7, "+100", "Ann")
    location = await bot.send_location(7, 1.5, 2.5)

    assert photo.photo is not None and photo.photo[0].file_id == "file-1"
    assert photo.caption == "look"
    assert document.document is not None and document.document.file_id == "doc-1"
    assert sticker.sticker is not None and sticker.sticker.file_id == "st-1"
    assert contact.contact is not None and contact.contact.first_name == "Ann"
    assert location.location is not None and location.location.longitude == 2.5


async def test_answering_a_callback_twice_is_refused(bot: Bot) -> None:
    session = session_of(bot)
    session.expect_callback("q1", 7)
    assert session.unanswered_callbacks() == ["q1"]
    assert await bot.answer_callback_query("q1", text="ok") is True
    assert session.unanswered_callbacks() == []
    assert session.chat_log(7).answers[0].text == "ok"
    with pytest.raises(TelegramBadRequest, match="already answered"):
        await bot.answer_callback_query("q1")


async def test_downloads_are_not_simulated(bot: Bot) -> None:
    with pytest.raises(NotImplementedError, match="files/x"):
        async for _ in bot.session.stream_content("https://example.org/files/x"):
            pass


async def test_a_text_longer_than_telegram_takes_is_refused(bot: Bot) -> None:
    await bot.send_message(7, "x" * 4096)  # the limit itself is fine
    await bot.send_message(7, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")  # counted parsed
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(7, "x" * 4097)
    sent = await bot.send_message(7, "short")
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.edit_message_text("y" * 4097, chat_id=7, message_id=sent.message_id)
    assert session_of(bot).chats[7].bot_messages()[-1].message.text == "short"


async def test_an_empty_text_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(7, "")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(7, "<b> </b>", parse_mode="HTML")


async def test_a_caption_longer_than_telegram_takes_is_refused(bot: Bot) -> None:
    await bot.send_photo(7, "photo-id", caption="c" * 1024)
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(7, "photo-id", caption="c" * 1025)


async def test_callback_data_longer_than_64_bytes_is_refused(bot: Bot) -> None:
    fits = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="é" * 32)]]
    )
    await bot.send_message(7, "ok", reply_markup=fits)
    long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="é" * 33)]]  # 66 bytes
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(7, "too long", reply_markup=long)
    sent = await bot.send_message(7, "plain")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.edit_message_reply_markup(
            chat_id=7, message_id=sent.message_id, reply_markup=long
        )


async def test_a_reply_to_a_missing_message_is_refused_unless_allowed(bot: Bot) -> None:
    from aiogram.types import ReplyParameters

    sent = await bot.send_message(7, "question")
    reply = await bot.send_message(
        7, "answer", reply_parameters=ReplyParameters(message_id=sent.message_id)
    )
    assert reply.reply_to_message is not None
    await bot.delete_message(7, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(
            7, "late", reply_parameters=ReplyParameters(message_id=sent.message_id)
        )
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(7, "never", reply_parameters=ReplyParameters(message_id=999))
    allowed = ReplyParameters(message_id=999, allow_sending_without_reply=True)
    alone = await bot.send_message(7, "anyway", reply_parameters=allowed)
    assert alone.reply_to_message is None


async def test_a_toast_longer_than_200_characters_is_refused(bot: Bot) -> None:
    session = session_of(bot)
    session.expect_callback("q1", 7)
    session.expect_callback("q2", 7)
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query("q1", text="t" * 201)
    await bot.answer_callback_query("q2", text="t" * 200)
