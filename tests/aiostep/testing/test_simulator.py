"""BotSimulator: a real aiogram Dispatcher driven by simulated users, network replaced."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.methods import SendMessage
from aiogram.types import (
    CallbackQuery,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder

import aiostep
from aiostep import FileStateStorage
from aiostep.testing import BotSimulator, RecordingSession, SettleTimeoutError
from aiostep.testing import simulator as simulator_module


def echo_dispatcher() -> Dispatcher:
    dp = Dispatcher()

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    return dp


def menu_dispatcher(seen: list[str] | None = None) -> Dispatcher:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardBuilder()
        keyboard.button(text="Yes", callback_data="answer:yes")
        keyboard.button(text="No", callback_data="answer:no")
        keyboard.button(text="Docs", url="https://example.org")
        await message.answer("Continue?", reply_markup=keyboard.as_markup())

    @dp.callback_query(F.data.startswith("answer:"))
    async def answered(query: CallbackQuery) -> None:
        if seen is not None:
            seen.append(query.data or "")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"You chose {query.data}")
        await query.answer("Saved")

    return dp


async def test_echo_reply_is_recorded() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        talk = sim.chat()
        await talk.send("hi")

        assert talk.last == "hi"
        assert [record.text for record in talk.messages] == ["hi"]
        assert sim.transcript(talk.chat).splitlines()[1:] == ["user> hi", "bot> hi"]
        assert [call.__api_method__ for call in sim.session.calls] == ["sendMessage"]


async def test_sim_send_uses_the_default_user_in_their_private_chat() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        message = await sim.send("hello")
        assert message.from_user is not None and message.from_user.id == 1001
        assert message.chat.id == 1001 and message.chat.type == "private"
        assert sim.chat().last == "hello"


async def test_commands_carry_a_bot_command_entity_at_offset_zero() -> None:
    received: list[Message] = []
    dp = Dispatcher()

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        received.append(message)

    async with BotSimulator(dp) as sim:
        await sim.send("/start payload")

    assert len(received) == 1
    entities = received[0].entities
    assert entities is not None
    assert [(e.type, e.offset, e.length) for e in entities] == [("bot_command", 0, 6)]


async def test_click_sends_the_buttons_callback_data_and_records_edit_and_toast() -> None:
    seen: list[str] = []
    async with BotSimulator(menu_dispatcher(seen)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        talk.assert_last("Continue?", buttons=[["Yes", "No", "Docs"]])

        query = await talk.click("No")

        assert seen == ["answer:no"]
        assert query.data == "answer:no"
        assert talk.toasts == ["Saved"]
        record = talk.messages[-1]
        assert record.edited and record.text == "You chose answer:no"
        assert record.buttons == []  # edit_text without reply_markup drops the keyboard
        assert sim.session.unanswered_callbacks() == []
        lines = talk.transcript().splitlines()
        assert lines[-3:] == [
            "user clicked [No]",
            "bot [edited]> You chose answer:no",
            "toast> Saved",
        ]


async def test_click_uses_the_newest_message_with_that_button() -> None:
    seen: list[str] = []
    async with BotSimulator(menu_dispatcher(seen)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("/start")
        await talk.click("Yes")
        first, second = talk.messages
        assert not first.edited and second.edited


async def test_missing_button_fails_with_the_transcript() -> None:
    async with BotSimulator(menu_dispatcher()) as sim:
        talk = sim.chat()
        await talk.send("/start")
        with pytest.raises(AssertionError) as failure:
            await talk.click("Maybe")
    message = str(failure.value)
    assert "no inline button [Maybe]" in message
    assert "user> /start" in message and "  [Yes] [No] [Docs]" in message


async def test_url_button_cannot_be_clicked() -> None:
    async with BotSimulator(menu_dispatcher()) as sim:
        talk = sim.chat()
        await talk.send("/start")
        with pytest.raises(AssertionError, match="'url' button"):
            await talk.click("Docs")


async def test_handler_exception_surfaces_on_send() -> None:
    dp = Dispatcher()

    @dp.message()
    async def broken(message: Message) -> None:
        if message.text == "fine":
            await message.answer("ok")
            return
        await message.answer("about to fail")
        raise ValueError("boom")

    async with BotSimulator(dp) as sim:
        with pytest.raises(ValueError, match="boom") as failure:
            await sim.send("hi")
        notes = "\n".join(getattr(failure.value, "__notes__", []))
        assert "bot> about to fail" in notes
        # surfaced once: the next update goes through normally
        await sim.send("fine")
        sim.chat().assert_last("ok")


async def test_a_timed_out_waiter_that_fails_is_raised_without_acting() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message()
    async def ask(message: Message) -> None:
        await message.answer("say something")
        try:
            await aiostep.wait_for(message.from_user.id, timeout=0.05)  # type: ignore[union-attr]
        except TimeoutError:
            raise RuntimeError("failed while the user was idle") from None

    async with BotSimulator(dp) as sim:
        await sim.send("hi")
        sim.raise_failures()  # nothing yet: the handler is parked
        await asyncio.sleep(0.2)
        with pytest.raises(RuntimeError, match="while the user was idle"):
            sim.raise_failures()
        sim.raise_failures()  # raised once


async def test_settle_waits_for_a_handler_that_awaits_before_answering() -> None:
    dp = Dispatcher()

    @dp.message()
    async def slow(message: Message) -> None:
        await asyncio.sleep(0.05)
        await message.answer("done")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("go")
        talk.assert_last("done")


async def test_a_stuck_handler_fails_settle_saying_where() -> None:
    dp = Dispatcher()

    @dp.message()
    async def stuck(message: Message) -> None:
        await message.answer("thinking")
        await asyncio.Event().wait()

    async with BotSimulator(dp, settle_timeout=0.2) as sim:
        with pytest.raises(SettleTimeoutError) as failure:
            await sim.send("go")
    message = str(failure.value)
    assert "still busy" in message and "in stuck" in message and "bot> thinking" in message


class FakeParking:
    """Stands in for aiostep.waiters: a handler parks by awaiting ``park()``."""

    def __init__(self) -> None:
        self.parked: set[asyncio.Task[Any]] = set()
        self.answer: asyncio.Future[str] | None = None

    async def park(self) -> str:
        task = asyncio.current_task()
        assert task is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.parked.add(task)
        try:
            return await self.answer
        finally:
            self.parked.discard(task)


async def test_send_returns_while_a_handler_is_parked_and_resumes_it_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parking = FakeParking()
    monkeypatch.setattr(simulator_module, "_parked_tasks", lambda: set(parking.parked))
    dp = Dispatcher()

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        await message.answer("Name?")
        name = await parking.park()
        await message.answer(f"Hi {name}")

    @dp.message()
    async def answer(message: Message) -> None:
        assert parking.answer is not None
        parking.answer.set_result(message.text or "")

    async with BotSimulator(dp, settle_timeout=1) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        talk.assert_last("Name?")
        assert len(sim.pending_tasks) == 1
        await talk.send("Bob")
        # the parked handler resumed and answered before send() returned
        talk.assert_last("Hi Bob")
        assert sim.pending_tasks == []


async def test_exception_of_a_resumed_handler_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    parking = FakeParking()
    monkeypatch.setattr(simulator_module, "_parked_tasks", lambda: set(parking.parked))
    dp = Dispatcher()

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        await parking.park()
        raise RuntimeError("failed after the answer")

    @dp.message()
    async def answer(message: Message) -> None:
        assert parking.answer is not None
        parking.answer.set_result("x")

    async with BotSimulator(dp) as sim:
        await sim.send("/ask")
        with pytest.raises(RuntimeError, match="failed after the answer"):
            await sim.send("x")


async def test_group_chat_with_two_users() -> None:
    dp = Dispatcher()

    @dp.message(F.text)
    async def greet(message: Message) -> None:
        assert message.from_user is not None
        await message.reply(f"hello {message.from_user.first_name}")

    async with BotSimulator(dp) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group(title="Club")
        alice_talk, bob_talk = sim.chat(alice, group), sim.chat(bob, group)

        first = await alice_talk.send("hi")
        second = await bob_talk.send("yo")

        assert first.chat.type == "supergroup" and second.chat.id == group.id
        assert (first.message_id, second.message_id) == (1, 3)  # ids are per chat
        assert [record.text for record in alice_talk.messages] == ["hello Alice", "hello Bob"]
        replied = alice_talk.messages[1].message.reply_to_message
        assert replied is not None and replied.message_id == second.message_id
        assert sim.transcript(group).splitlines()[1:] == [
            "Alice> hi",
            "bot> hello Alice",
            "Bob> yo",
            "bot> hello Bob",
        ]


async def test_forum_topic_messages_carry_the_thread() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        forum = sim.group(title="Forum", forum=True)
        talk = sim.chat(sim.user(), forum, thread_id=7)
        sent = await talk.send("in a topic")
        assert sent.message_thread_id == 7 and sent.is_topic_message
        assert talk.last_message is not None and talk.last_message.thread_id == 7
        assert "[topic 7] bot> in a topic" in talk.transcript()
        assert sim.chat(sim.default_user, forum, thread_id=8).messages == []


async def test_a_forums_general_topic_shows_only_its_own_messages() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        forum = sim.group(title="Forum", forum=True)
        general = sim.chat(sim.default_user, forum)
        topic = sim.chat(sim.default_user, forum, thread_id=7)
        await general.send("in general")
        await topic.send("in a topic")
        # Telegram shows the General topic its own messages, not the other topics'
        assert general.last == "in general"
        assert [record.text for record in general.messages] == ["in general"]
        assert topic.last == "in a topic"


async def test_user_edit_sends_an_edited_message_update() -> None:
    edits: list[str] = []
    router = Router()

    @router.edited_message()
    async def edited(message: Message) -> None:
        edits.append(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        sent = await talk.send("helo")
        await talk.edit(sent, "hello")
        assert edits == ["hello"]
        assert "user [edited]> hello" in talk.transcript()


async def test_media_from_users_reaches_handlers_with_content() -> None:
    kinds: list[str] = []
    dp = Dispatcher()

    @dp.message()
    async def any_message(message: Message) -> None:
        kinds.append(message.content_type)
        if message.contact is not None:
            kinds.append(f"contact of {message.contact.user_id}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send_photo("pic")
        await talk.send_document("report.pdf", mime_type="application/pdf")
        await talk.send_sticker("🔥")
        await talk.send_contact("+15550001111")
        await talk.send_location(52.5, 13.4)

    assert kinds == ["photo", "document", "sticker", "contact", "contact of 1001", "location"]


async def test_a_method_returned_by_a_handler_is_called() -> None:
    dp = Dispatcher()

    @dp.message()
    async def webhook_style(message: Message) -> SendMessage:
        return message.answer("as a return value")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("x")
        talk.assert_last("as a return value")


async def test_assertion_helpers_show_the_transcript() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        talk = sim.chat()
        await talk.send("one")
        talk.assert_sent_contains("on")
        with pytest.raises(AssertionError, match=r"(?s)expected .*'two'.*user> one"):
            talk.assert_last("two")
        with pytest.raises(AssertionError, match=r"(?s)nothing containing 'zz'.*bot> one"):
            talk.assert_sent_contains("zz")


async def test_startup_and_shutdown_hooks_run() -> None:
    events: list[str] = []
    dp = Dispatcher()

    @dp.startup()
    async def on_startup() -> None:
        events.append("startup")

    @dp.shutdown()
    async def on_shutdown() -> None:
        events.append("shutdown")

    async with BotSimulator(dp):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


async def test_restart_needs_a_factory() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        with pytest.raises(TypeError, match="factory"):
            await sim.restart()


async def test_restart_builds_a_new_dispatcher_and_keeps_the_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parking = FakeParking()
    monkeypatch.setattr(simulator_module, "_parked_tasks", lambda: set(parking.parked))
    built: list[Dispatcher] = []

    async def build() -> Dispatcher:
        dp = Dispatcher()

        @dp.message(Command("wait"))
        async def wait(message: Message) -> None:
            await parking.park()

        @dp.message(F.text)
        async def echo(message: Message) -> None:
            await message.answer(f"process {len(built)}: {message.text}")

        built.append(dp)
        return dp

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/wait")
        parked = sim.pending_tasks
        assert len(parked) == 1

        await sim.restart()

        assert parked[0].cancelled()
        assert sim.dispatcher is built[1]
        await talk.send("hi")
        talk.assert_last("process 2: hi")
        assert talk.transcript().splitlines()[1:] == [
            "user> /wait",
            "--- restart ---",
            "user> hi",
            "bot> process 2: hi",
        ]


@aiostep.persisted_step("aiostep_testing_kit.ask_age")
async def ask_age(message: Message, name: str) -> None:
    await message.answer(f"{name} is {message.text}")


async def test_persisted_step_survives_restart_with_a_file_storage(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"

    def build() -> Dispatcher:
        dp = Dispatcher()
        storage = FileStateStorage(path)
        aiostep.setup(dp, storage=storage)
        dp.shutdown.register(storage.close)  # restart() runs the shutdown hooks

        @dp.message(Command("signup"))
        async def signup(message: Message) -> None:
            assert message.from_user is not None
            await message.answer("Age?")
            await aiostep.register_next_step(message.from_user.id, ask_age, kwargs={"name": "Ann"})

        return dp

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await sim.restart()
        await talk.send("30")
        talk.assert_last("Ann is 30")


async def test_reply_keyboards_are_shown_pressed_and_removed() -> None:
    dp = Dispatcher()

    @dp.message(Command("size"))
    async def size(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[
                [KeyboardButton(text="Small"), KeyboardButton(text="Large")],
                [KeyboardButton(text="Share phone", request_contact=True)],
            ],
            one_time_keyboard=True,
        )
        await message.answer("Which size?", reply_markup=keyboard)

    @dp.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None
        await message.answer(f"phone {message.contact.phone_number}")

    @dp.message(F.text)
    async def chosen(message: Message) -> None:
        await message.answer(f"{message.text} it is", reply_markup=ReplyKeyboardRemove())

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/size")
        sent = talk.last_message
        assert sent is not None and sent.message.reply_markup is None  # not on the Message
        assert talk.keyboard == [["Small", "Large"], ["Share phone"]]
        assert "  (Small) (Large)" in talk.transcript()

        await talk.press("Share phone")
        talk.assert_last("phone +15550100000")
        await talk.press("Large")
        talk.assert_last("Large it is")
        assert talk.keyboard is None
        assert "  (keyboard removed)" in talk.transcript()
        with pytest.raises(AssertionError, match=r"no reply keyboard button \(Small\)"):
            await talk.press("Small")


async def test_group_privacy_delivers_only_commands_and_replies_to_the_bot() -> None:
    # Telegram's default for a bot: in a group it gets commands and replies to its messages,
    # not the rest of the conversation
    seen: list[str] = []

    def build() -> Dispatcher:
        dp = Dispatcher()

        @dp.message()
        async def anything(message: Message) -> None:
            seen.append(message.text or "")
            if message.text == "/ask":
                await message.answer("Your name?")

        return dp

    async with BotSimulator(
        build, bot=Bot("42:TEST", session=RecordingSession(group_privacy=True))
    ) as sim:
        me = await sim.bot.get_me()
        assert me.can_read_all_group_messages is False
        talk = sim.chat(chat=sim.group())
        await talk.send("/ask")
        await talk.send("Ann")  # not for the bot: Telegram does not deliver it
        assert talk.last_message is not None
        await talk.send("Ann", reply_to=talk.last_message)  # a reply to the bot's message
        await sim.chat().send("in private")  # private chats get everything
        assert seen == ["/ask", "Ann", "in private"]
        assert "not delivered" in talk.transcript()


async def test_a_simulated_bot_reads_all_group_messages_by_default() -> None:
    async with BotSimulator(echo_dispatcher()) as sim:
        me = await sim.bot.get_me()
        assert me.can_read_all_group_messages is True  # as it behaves: privacy mode off
        talk = sim.chat(chat=sim.group())
        await talk.send("hello")
        assert talk.last == "hello"


async def test_a_reply_keyboard_press_in_a_group_reaches_a_private_mode_bot() -> None:
    # the app sends the button's text as a reply to the keyboard's message
    def build() -> Dispatcher:
        dp = Dispatcher()

        @dp.message(Command("drink"))
        async def ask(message: Message) -> None:
            buttons = [[KeyboardButton(text="Tea"), KeyboardButton(text="Coffee")]]
            await message.answer("Which?", reply_markup=ReplyKeyboardMarkup(keyboard=buttons))

        @dp.message(F.text == "Tea")
        async def tea(message: Message) -> None:
            await message.answer("Tea it is.")

        return dp

    session = RecordingSession(group_privacy=True)
    async with BotSimulator(build, bot=Bot("42:TEST", session=session)) as sim:
        talk = sim.chat(chat=sim.group())
        await talk.send("/drink")
        sent = await talk.press("Tea")
        assert sent.reply_to_message is not None
        assert talk.last == "Tea it is."


async def test_a_message_of_another_chat_is_not_taken_for_one_here() -> None:
    # message ids are per chat: message 2 of the group is not message 2 of the private chat
    async with BotSimulator(menu_dispatcher()) as sim:
        private = sim.chat()
        group = sim.chat(chat=sim.group())
        await private.send("/start")
        await group.send("/start")
        in_private = private.last_message
        assert in_private is not None
        with pytest.raises(ValueError, match="chat"):
            await group.click("Yes", message=in_private)
        own = await private.send("hello")
        with pytest.raises(ValueError, match="chat"):
            await group.edit(own, "edited")
        with pytest.raises(ValueError, match="chat"):
            group.delete(own)
        with pytest.raises(ValueError, match="chat"):
            await group.send("re", reply_to=in_private)


async def test_a_users_button_shares_no_more_users_than_it_allows() -> None:
    from aiogram.types import KeyboardButtonRequestUsers

    def build() -> Dispatcher:
        dp = Dispatcher()

        @dp.message(Command("pick"))
        async def ask(message: Message) -> None:
            request = KeyboardButtonRequestUsers(request_id=1, max_quantity=2)
            button = KeyboardButton(text="Pick", request_users=request)
            await message.answer("Who?", reply_markup=ReplyKeyboardMarkup(keyboard=[[button]]))

        return dp

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/pick")
        with pytest.raises(ValueError, match="at most 2"):
            await talk.press("Pick", share=[sim.user(), sim.user(), sim.user()])
        sent = await talk.press("Pick", share=[sim.user(), sim.user()])
        assert sent.users_shared is not None and len(sent.users_shared.users) == 2
