"""The documentation's code runs: every file in docs/snippets is driven through a real
Dispatcher with aiostep.testing and its replies are checked, every ``--8<--`` include points at
a file (and section) that exists, and every wizard-graph marker draws a diagram."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import io
import logging
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiogram import Bot, Dispatcher

import aiostep
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage import FileStateStorage, MemoryStateStorage
from aiostep.storage.base import Patch
from aiostep.testing import BotSimulator, FakeClock
from aiostep.testing.pytest_plugin import (  # the fixtures, whether or not the plugin is on
    SimulatorFactory,
    aiostep_clock,  # noqa: F401
    aiostep_simulator,  # noqa: F401
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"

#: Tests run over each snippet file, by file name; test_every_snippet_is_tested checks it.
COVERED: set[str] = set()


def covers(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a test as exercising the snippet files ``names``."""
    COVERED.update(names)

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn

    return mark


def snippet(name: str) -> ModuleType:
    """Import ``docs/snippets/<name>.py`` once per session, as ``load_target`` does (the docs
    hook imports the same files under the same names, so nothing is registered twice)."""
    if str(SNIPPETS) not in sys.path:
        sys.path.insert(0, str(SNIPPETS))
    module = importlib.import_module(name)
    assert Path(module.__file__ or "").resolve() == SNIPPETS / f"{name}.py", module.__file__
    return module


def bot_texts(sim: BotSimulator, chat: Any = None) -> list[str]:
    """What the bot said in ``chat`` (default: the default user's private chat), in order."""
    talk = sim.chat(chat=chat) if chat is not None else sim.chat()
    return [record.text or "" for record in talk.messages]


# -- the landing page ----------------------------------------------------------------------------


@covers("landing_wizard.py", "landing_fsm.py")
@pytest.mark.parametrize("name", ["landing_wizard", "landing_fsm"])
async def test_landing_wizard_and_fsm_hold_the_same_conversation(name: str) -> None:
    async with BotSimulator(snippet(name).build) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        talk.assert_last("What is your name?")
        await talk.send("A")
        assert talk.last is not None and talk.last.endswith("\n\nWhat is your name?")
        await talk.send("Alice")
        talk.assert_last("How old are you?")
        await talk.send("/back")
        talk.assert_last("What is your name?")
        await talk.send("Alice")
        await talk.send("abc")
        assert talk.last is not None and talk.last.endswith("\n\nHow old are you?")
        await talk.send("30")
        talk.assert_last("Alice, 30. Correct?", buttons=[["Yes", "No"]])
        await talk.click("No")
        talk.assert_last("What is your name?")
        await talk.send("Bob")
        await talk.send("41")
        await talk.click("Yes")
        talk.assert_last("Welcome, Bob!")
        await talk.send("/signup")
        await talk.send("/cancel")
        talk.assert_last("Cancelled.")


# -- the tutorial --------------------------------------------------------------------------------


@covers("tutorial_1.py")
async def test_tutorial_part_1_asks_two_questions() -> None:
    async with BotSimulator(snippet("tutorial_1").build) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        talk.assert_last("What is your name?")
        await talk.send("Alice")
        talk.assert_last("How old are you?")
        await talk.send("old")
        talk.assert_last("Please send a whole number.\n\nHow old are you?")
        await talk.send("200")
        talk.assert_last("Please send a number from 1 to 120.\n\nHow old are you?")
        await talk.send("30")
        talk.assert_last("Welcome, Alice (30)!")
        await talk.send("/start")  # the other entry command
        talk.assert_last("What is your name?")


@covers("tutorial_2.py")
async def test_tutorial_part_2_confirms_and_branches_back() -> None:
    async with BotSimulator(snippet("tutorial_2").build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("Alice")
        await talk.send("200")
        talk.assert_last("Please send a whole number from 1 to 120.\n\nHow old are you?")
        await talk.send("30")
        talk.assert_last("Alice, 30. Correct?", buttons=[["Yes", "No"]])
        await talk.click("No")
        talk.assert_last("What is your name?")
        await talk.send("Alicia")
        await talk.send("31")
        await talk.send("yes")  # a typed label or value counts like the button
        talk.assert_last("Welcome, Alicia!")


@covers("tutorial_3.py")
async def test_tutorial_part_3_resumes_after_a_restart(tmp_path: Path) -> None:
    module = snippet("tutorial_3")
    path = tmp_path / "signup-state.jsonl"
    async with BotSimulator(lambda: module.build(FileStateStorage(path))) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await talk.send("Alice")
        await sim.restart()
        await talk.send("30")
        talk.assert_last("Alice, 30. Correct?")
        await talk.click("Yes")
        talk.assert_last("Welcome, Alice!")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@covers("tutorial_3.py")
async def test_tutorial_part_3_main_polls_with_a_file_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    polled: list[Dispatcher] = []

    async def start_polling(self: Dispatcher, *bots: Any, **kwargs: Any) -> None:
        polled.append(self)
        await bots[0].session.close()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setattr(Dispatcher, "start_polling", start_polling)
    await snippet("tutorial_3").main()
    assert len(polled) == 1


# -- guides --------------------------------------------------------------------------------------


@covers("validators_custom.py")
async def test_validators_guide() -> None:
    async with BotSimulator(snippet("validators_custom").build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("r2d2")
        talk.assert_last("Names have no digits.\n\nYour name?")
        await talk.send("luke skywalker")
        await talk.send("l1")
        talk.assert_last("3 to 16 latin letters, please.\n\nPick a login (letters only):")
        await talk.send("Admin")
        talk.assert_last("Admin is taken, try another one.\n\nPick a login (letters only):")
        await talk.send("Leia")
        await talk.send("31.12.2012")
        talk.assert_last("Send a photo of yourself.")
        await talk.send("a selfie")
        talk.assert_last("Please send a photo.\n\nSend a photo of yourself.")
        await talk.send_photo()
        await talk.send("2,3")
        talk.assert_last("That seems tall for your age; check the number.\n\nHeight in metres?")
        await talk.send("1.4")
        talk.assert_last("Saved leia.")


@covers("validators_custom.py")
async def test_validators_guide_stores_converted_values() -> None:
    module = snippet("validators_custom")
    storage = MemoryStateStorage()
    async with BotSimulator(lambda: module.build(storage)) as sim:
        talk = sim.chat()
        for text in ("/start", "luke", "Leia", "1977-05-25"):
            await talk.send(text)
        await talk.send_photo(file_id="me")
        key = storage_key(ConversationKey(talk.chat.id, talk.user.id, None, talk.sim.bot.id))
        assert storage.get_data(key) == {
            "name": "Luke",
            "login": "leia",
            "birthday": "1977-05-25",
            "photo": "me-big",
        }


@covers("nav_commands.py")
async def test_navigation_guide() -> None:
    async with BotSimulator(snippet("nav_commands").build) as sim:
        talk = sim.chat()
        await talk.send("/book")
        talk.assert_last("(1/2)\nHow many guests?")
        await talk.send("/undo")
        assert bot_texts(sim)[-2] == "This is the first step; there is nothing to go back to."
        await talk.send("/later")
        assert bot_texts(sim)[-2] == "This step can't be skipped."
        await talk.send("2")
        talk.assert_last("(2/2)\nAny wishes? /later to skip")
        await talk.send("/help")  # another command: its handler answers, then the prompt again
        assert bot_texts(sim)[-2:] == [
            "I book tables. /stop cancels.",
            "(2/2)\nAny wishes? /later to skip",
        ]
        await talk.send("/undo")
        talk.assert_last("(1/2)\nHow many guests?")
        await talk.send("3")
        await talk.send("/book")  # on_reentry = "restart"
        talk.assert_last("(1/2)\nHow many guests?")
        await talk.send("4")
        await talk.send("/later")
        talk.assert_last("Table for 4. Note: -")
        await talk.send("/book")
        await talk.send("/stop")
        talk.assert_last("Booking dropped.")
        await talk.send("/book")
        for text in ("x", "y", "z"):
            await talk.send(text)
        talk.assert_last("Let's try that another time. /book starts again.")
        before = len(bot_texts(sim))
        await talk.send("5")  # the wizard is over: nothing answers
        assert len(bot_texts(sim)) == before


@covers("branching_computed.py")
@pytest.mark.parametrize(
    ("button", "answers", "expected"),
    [
        ("Billing", ["17", "I was charged twice"], "topic=billing, order=17, details="),
        ("The app", ["iPhone", "It crashes on start"], "topic=app, device=iPhone, details="),
        ("Something else", ["Where is my parcel?"], "topic=other, details="),
    ],
)
async def test_branching_guide(button: str, answers: list[str], expected: str) -> None:
    async with BotSimulator(snippet("branching_computed").build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.click(button)
        for text in answers:
            await talk.send(text)
        assert talk.last == f"Ticket filed: {expected}{answers[-1]}"


@covers("sub_wizards.py")
async def test_sub_wizards_guide_call_return_back_cancel_and_goto() -> None:
    async with BotSimulator(snippet("sub_wizards").build) as sim:
        talk = sim.chat()
        await talk.send("/book")
        await talk.send("Ann")
        await talk.click("delivery")
        talk.assert_last("Street and number?")
        await talk.send("/back")  # the called wizard's first step: back to the caller's
        talk.assert_last("Eat in or delivery?", buttons=[["eat in", "delivery"]])
        await talk.click("delivery")
        await talk.send("1 Main St")
        await talk.send("Paris")
        assert bot_texts(sim)[-2:] == ["Delivering to 1 Main St, Paris.", "Ann, shall I book it?"]
        await talk.click("yes")
        talk.assert_last("Booked!")

        await talk.send("/book")
        await talk.send("Bob")
        await talk.click("delivery")
        await talk.send("/cancel")  # ends the called wizard and its caller, said once
        assert bot_texts(sim)[-2:] == ["Street and number?", "Reservation cancelled."]

        await talk.send("/help")
        await talk.send("book")
        assert bot_texts(sim)[-2:] == ["Let's book you a table.", "Who is the table for?"]


@covers("buttons_keyboards.py")
async def test_buttons_guide_inline_choices_and_stale_buttons() -> None:
    async with BotSimulator(snippet("buttons_keyboards").build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        first = talk.last_message
        assert first is not None and first.buttons == [["Espresso", "Latte"]]
        await talk.send("latte")  # typing a label counts like pressing it
        talk.assert_last("Milk?", buttons=[["No milk", "Oat", "Cow"]])
        await talk.click("Latte", message=first)  # an old prompt's button
        assert talk.toasts == ["This button is no longer active."]
        talk.assert_last("Milk?", buttons=[["No milk", "Oat", "Cow"]])
        await talk.click("Oat")
        assert talk.messages[-2].buttons == []  # the pressed prompt lost its buttons
        assert talk.last_message is not None and talk.last_message.keyboard == [
            ["Small"],
            ["Large"],
        ]
        await talk.send("Large")
        talk.assert_last("One Large lat, milk: oat.")


@covers("one_message.py")
async def test_one_message_guide_edits_one_message_in_place() -> None:
    async with BotSimulator(snippet("one_message").build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        first = talk.last_message
        assert first is not None
        await talk.click("Latte")
        await talk.click("Oat")
        assert talk.toasts == ["Sorry, oat milk is sold out."]
        await talk.click("Cow")
        assert [m.text for m in talk.messages] == ["Name for the cup?"]  # one message
        await talk.send("Ann")
        assert first.buttons == [] and len(talk.messages) == 2
        talk.assert_last("lat with cow for Ann?", buttons=[["Order"]])
        await talk.click("Order")
        talk.assert_last("Coming up, Ann!", buttons=[])
        assert len(talk.messages) == 2


@covers("choices_dynamic.py")
async def test_choices_guide_menu_from_data_toppings_and_paged_addresses() -> None:
    async with BotSimulator(snippet("choices_dynamic").build) as sim:
        talk = sim.chat()
        await talk.send("/order")
        menu = talk.last_message
        talk.assert_last("Which pizza?", buttons=[["Margherita", "Diavola", "Funghi"]])
        sim.dispatcher["menu"].pizzas = {9: "Marinara"}  # the menu changes meanwhile
        await talk.click("Diavola", message=menu)  # resolves against what was shown
        talk.assert_last("Toppings? (up to 2)", buttons=[["Ham", "Olives", "Chili"], ["Done"]])
        for label in ("Ham", "Olives", "Chili"):
            await talk.click(label)
        assert talk.toasts == ["You can choose at most 2."]
        toppings = talk.last_message
        assert toppings is not None and toppings.buttons[0] == ["✅ Ham", "✅ Olives", "Chili"]
        await talk.click("Done")
        addresses = talk.last_message
        assert addresses is not None and addresses.buttons == [
            ["Street 1", "Street 2"],
            ["Street 3", "Street 4"],
            ["Street 5", "Street 6"],
            ["Next »"],
        ]
        await talk.click("Next »")
        assert addresses.buttons[0] == ["Street 7", "Street 8"]
        assert addresses.buttons[-1] == ["« Previous", "Next »"]
        await talk.click("Street 8")
        talk.assert_last("Pizza #2, ham, olives, to Street 8.")


@covers("landing_wizard.py")
async def test_buttons_of_a_finished_wizard_get_a_toast() -> None:
    async with BotSimulator(snippet("landing_wizard").build) as sim:
        talk = sim.chat()
        for text in ("/signup", "Alice", "30"):
            await talk.send(text)
        prompt = talk.last_message
        assert prompt is not None
        await talk.send("yes")  # typed, so the prompt keeps its buttons
        talk.assert_last("Welcome, Alice!")
        await talk.click("No", message=prompt)
        assert talk.toasts == ["This button is no longer active."]
        talk.assert_last("Welcome, Alice!")


@covers("formatting_prompts.py")
async def test_formatting_guide() -> None:
    module = snippet("formatting_prompts")
    await module.test_a_name_with_markup_shows_as_typed()
    bot = module.make_bot("42:TEST")
    try:
        assert bot.default.parse_mode == "HTML"
    finally:
        await bot.session.close()


@covers("formatting_prompts.py")
async def test_formatting_guide_reasons_and_nodes() -> None:
    from aiogram.client.default import DefaultBotProperties
    from aiogram.types import MessageEntity

    from aiostep.testing import RecordingSession

    bot = Bot(
        "42:TEST", session=RecordingSession(), default=DefaultBotProperties(parse_mode="HTML")
    )
    async with BotSimulator(snippet("formatting_prompts").build, bot=bot) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        talk.assert_last("What is your name?")
        await talk.send("admin")
        talk.assert_last("admin is reserved.\n\nWhat is your name?")
        await talk.send("<b>&")
        await talk.send("7")
        talk.assert_last("<b>&, 7. Correct?")
        assert talk.last_message is not None
        assert talk.last_message.message.entities == [
            MessageEntity(type="bold", offset=0, length=4)
        ]


def compile_feedback_catalog(root: Path) -> Path:
    """The bot's own ``messages`` catalog of the languages guide, in Russian, compiled here
    (a real bot compiles it with ``pybabel compile``)."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    catalog = Catalog(locale="ru", domain="messages")
    catalog.add("From 1 to 5, how was it?", "Как вам, от 1 до 5?")
    catalog.add("Why {score}?", "Почему {score}?")
    catalog.add("Thank you!", "Спасибо!")
    target = root / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as f:
        write_mo(f, catalog)
    return root


@covers("languages.py")
async def test_languages_guide(tmp_path: Path) -> None:
    locales = compile_feedback_catalog(tmp_path / "locales")
    async with BotSimulator(lambda: snippet("languages").build(locales=locales)) as sim:
        ru = sim.chat(sim.user(language_code="ru"))
        await ru.send("/pizza")
        ru.assert_last("Ваше имя?")
        await ru.send("A")
        ru.assert_last("Слишком коротко.\n\nВаше имя?")
        await ru.send("Аня")
        ru.assert_last("Какой размер?", buttons=[["Маленькая", "Большая"]])
        await ru.click("Большая")
        ru.assert_last("Аня: l, уже едет!")
        await ru.send("/feedback")
        ru.assert_last("Как вам, от 1 до 5?")
        await ru.send("9")  # a built-in reason, in Russian
        ru.assert_last("Пожалуйста, отправьте число от 1 до 5.\n\nКак вам, от 1 до 5?")
        await ru.send("4")
        ru.assert_last("Почему 4?")
        await ru.send("Вкусно")
        ru.assert_last("Спасибо!")

        en = sim.chat(sim.user(language_code="en"))
        await en.send("/pizza")
        await en.send("/cancel")
        en.assert_last("No pizza, then.")
        await en.send("/feedback")
        await en.send("4")
        en.assert_last("Why 4?")


@covers("raw_steps_handle.py")
async def test_raw_layer_conversation_handle(tmp_path: Path) -> None:
    module = snippet("raw_steps_handle")
    dp, _ = module.build()
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/hello")
        await talk.send("Ada")
        await talk.send("Paris")
        talk.assert_last("Ada lives in Paris.")
        await talk.send("/hello")
        await talk.send("/stop")
        talk.assert_last("Stopped.")
        await talk.send("Bob")  # nobody waits any more
        talk.assert_last("Stopped.")
    dp, listen = module.build(FileStateStorage(tmp_path / "s.jsonl"))
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await module.remind(sim.bot, listen, talk.user.id)
        await talk.send("Rome")
        talk.assert_last("You lives in Rome.")


@covers("step_dependencies.py")
async def test_dependencies_guide() -> None:
    await snippet("step_dependencies").test_an_order_is_saved_in_the_database()


@covers("media_requests.py")
async def test_media_and_requests_guide() -> None:
    pytest.importorskip("phonenumbers")
    async with BotSimulator(snippet("media_requests").build) as sim:
        talk = sim.chat()
        await talk.send("/order")
        assert talk.last_message is not None and talk.last_message.kind == "photo"
        talk.assert_last("Today's menu: what would you like?", buttons=[["Soup", "Pie"]])
        await talk.click("Pie")
        assert talk.keyboard == [["Share my phone number"]]
        await talk.send("020 7946 0958")
        assert talk.last is not None
        assert talk.last.startswith("Please include the country code, like +44 20 7946 0958.")
        await talk.press("Share my phone number")
        assert talk.keyboard == [["Send my location"]]
        await talk.send("the red door")
        assert (
            talk.last
            == 'Please use the "Send my location" button below.\n\nWhere should we bring it?'
        )
        await talk.press("Send my location")
        talk.assert_last("On its way: pie for +15550100000")
        assert talk.keyboard is None
        await talk.send("/call")
        await talk.send("020 7946 0958")
        talk.assert_last("We will call +442079460958.")


@covers("media_from_data.py")
async def test_media_from_data_guide() -> None:
    from aiogram.methods import SendPhoto

    async with BotSimulator(snippet("media_from_data").build) as sim:
        lamp, card = sim.chat(), sim.chat(sim.user(first_name="Bea"))
        await lamp.send("/shop")
        await lamp.click("lamp")
        assert lamp.last_message is not None and lamp.last_message.kind == "photo"
        lamp.assert_last("How many?")
        await lamp.send("2")
        lamp.assert_last("Ordered: 2 x lamp.")
        await card.send("/shop")
        await card.click("gift card")
        assert card.last_message is not None and card.last_message.kind == "text"  # no picture
        card.assert_last("How many?")
        await card.send("1")
        await card.send_photo(file_id="AgACmyOwnPhoto")
        assert card.last_message is not None and card.last_message.kind == "photo"
        card.assert_last("Print this one?", buttons=[["yes", "no"]])
        await card.click("yes")
        card.assert_last("Ordered: 1 x gift card.")
        sent = [call.photo for call in sim.session.calls_of(SendPhoto)]
        assert sent == ["https://example.com/lamp.jpg", "AgACmyOwnPhoto-big"]  # its largest size


@covers("storage_backends.py")
async def test_storages_guide_memory_file_and_json(tmp_path: Path) -> None:
    module = snippet("storage_backends")
    assert module.memory_demo() == {"name": "Alice"}
    path = tmp_path / "state.jsonl"
    assert await module.file_demo(path) == {"name": "Alice", "city": "Berlin"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes().splitlines()) == 1 + 3  # a header, one fsync'ed line a write
    reason = module.json_only()
    assert reason.startswith("data['when'] is not JSON-serializable: datetime")


@covers("storage_backends.py")
async def test_storages_guide_redis(redis_url: str) -> None:
    assert await snippet("storage_backends").redis_demo(redis_url) == {"city": "Berlin"}
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        assert await client.keys("*") == [b"mybot:12345"]
    finally:
        await client.aclose()


@covers("raw_persisted.py")
async def test_persisted_steps_survive_restarts_and_expire(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = snippet("raw_persisted")
    path = tmp_path / "state.jsonl"
    async with BotSimulator(lambda: module.build(FileStateStorage(path))) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/feedback")
        await talk.send("9")
        talk.assert_last("Please send a number from 1 to 5.")
        await talk.send("/help")  # a command goes to the handlers; the step keeps waiting
        talk.assert_last("Send /feedback to rate us.")
        await talk.send("4")
        talk.assert_last("Any comment on the pizza?")
        await sim.restart()
        await talk.send("Crispy")
        talk.assert_last("Thanks! pizza: 4/5, 'Crispy'")

        await talk.send("/feedback")
        await clock.advance(600)  # the running process's timer
        talk.assert_last("No rating for the pizza; maybe next time.")

        await talk.send("/feedback")
        await sim.restart()  # timers are gone; the stored deadline is not
        await clock.advance(601)
        await talk.send("5")
        assert bot_texts(sim)[-2:] == [
            "No rating for the pizza; maybe next time.",
            "Send /feedback to rate us.",
        ]

        # a stored step whose name is no longer registered: logged, cleared, passed on
        await talk.send("/feedback")
        entry = aiostep.registry.get("feedback.rating")
        assert entry is not None
        aiostep.registry.unregister("feedback.rating")
        try:
            with caplog.at_level(logging.ERROR, logger="aiostep"):
                await talk.send("5")
        finally:
            aiostep.registry.register(entry.callback, entry.name)
        talk.assert_last("Send /feedback to rate us.")
        assert "'feedback.rating' is not registered" in caplog.text


@covers("raw_wait_for.py")
async def test_wait_for_is_scoped_to_its_conversation() -> None:
    async with BotSimulator(snippet("raw_wait_for").build) as sim:
        clock = sim.use_fake_clock()
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        asker = sim.chat(alice, group)
        await asker.send("/echo")
        await sim.chat(bob, group).send("bob here")
        assert asker.last == "(normal handler) bob here"
        await sim.chat(alice).send("in private")
        assert sim.chat(alice).last == "(normal handler) in private"
        await asker.send("/help")
        assert asker.last == "(normal handler) /help"
        await asker.send("hi")
        assert asker.last == "You typed: hi"
        await asker.send("/echo")
        await clock.advance(25)
        assert asker.last == "You took too long to answer."


@covers("raw_chat_wide.py")
async def test_anyone_in_the_chat_answers_a_chat_wide_wait() -> None:
    async with BotSimulator(snippet("raw_chat_wide").build) as sim:
        clock = sim.use_fake_clock()
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        await sim.chat(alice, group).send("/quiz")
        await sim.chat(bob, group).send("41")
        await sim.chat(alice, group).send("42")
        await sim.chat(alice, group).send("/quiz")
        await clock.advance(60)
        assert bot_texts(sim, group) == [
            "First to answer wins: 6 x 7?",
            "No.",
            "Alice wins!",
            "First to answer wins: 6 x 7?",
            "Nobody? It was 42.",
        ]


@covers("raw_next_step.py")
async def test_in_process_next_steps() -> None:
    async with BotSimulator(snippet("raw_next_step").build) as sim:
        talk = sim.chat()
        for text in ("/start", "Alice", "old", "30"):
            await talk.send(text)
        assert bot_texts(sim) == [
            "What is your name?",
            "How old are you?",
            "Please provide a valid age!",
            "Your name is Alice and you're 30 years old. Thanks!",
        ]


@covers("raw_filters.py")
async def test_wait_for_filters_updates_and_commands() -> None:
    async with BotSimulator(snippet("raw_filters").build) as sim:
        talk = sim.chat()
        await talk.send("/avatar")
        await talk.send("just text")
        talk.assert_last("(normal handler) just text")
        await talk.send_photo(file_id="selfie")
        talk.assert_last("Nice photo: selfie-big")
        await talk.send("/avatar")
        await talk.send("/cancel")
        talk.assert_last("Stopped.")
        await talk.send("after")
        talk.assert_last("(normal handler) after")

        await talk.send("/vote")
        await talk.click("blue")
        await talk.click("red")  # nothing waits any more: the stray handler answers
        assert talk.toasts == ["You picked blue", "Nothing is waiting for this button."]

        await talk.send("/rename")
        await talk.send("/root")
        talk.assert_last("Renamed to /root")


@covers("migrate_seed.py")
async def test_the_seed_flow_persisted(tmp_path: Path) -> None:
    module = snippet("migrate_seed")
    path = tmp_path / "state.jsonl"
    async with BotSimulator(lambda: module.build(FileStateStorage(path))) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await sim.restart()
        await talk.send("Alice")
        await sim.restart()
        await talk.send("old")
        await talk.send("30")
        assert bot_texts(sim) == [
            "What is your name?",
            "How old are you?",
            "Please provide a valid age!",
            "Your name is Alice and you're 30 years old. Thanks!",
        ]


@covers("migrate_seed.py")
async def test_unregistered_functions_cannot_be_persisted(tmp_path: Path) -> None:
    async def not_registered(message: Any) -> None:
        raise AssertionError("never called")

    storage = FileStateStorage(tmp_path / "state.jsonl")
    try:
        with pytest.raises(aiostep.StepNotRegisteredError, match=r"@aiostep\.persisted_step"):
            await aiostep.register_next_step(1001, not_registered, storage=storage)
        with pytest.raises(TypeError, match=r"kwargs\['when'\]"):
            await aiostep.register_next_step(
                1001, snippet("migrate_seed").ask_age, storage=storage, kwargs={"when": object()}
            )
    finally:
        await storage.close()


@covers("workers_redis.py")
async def test_two_workers_share_a_conversation_on_redis(redis_url: str) -> None:
    replies = await snippet("workers_redis").main(redis_url)
    assert replies[-1] == "Welcome, Alice!"
    assert sorted(replies) == sorted(
        ["What is your name?", "How old are you?", "Alice, 30. Correct?", "Welcome, Alice!"]
    )


@covers("workers_order.py")
async def test_order_updates_handles_a_burst_across_three_workers_in_order(redis_url: str) -> None:
    assert await snippet("workers_order").main(redis_url) == [f"m{i}" for i in range(5)]


@covers("workers_cluster.py")
async def test_a_wizard_on_a_redis_cluster_survives_a_restart(redis_cluster_url: str) -> None:
    assert await snippet("workers_cluster").main(redis_cluster_url) == "Welcome, Alice!"


@covers("workers_wait_for.py")
async def test_a_wait_for_gets_the_answer_another_worker_received(redis_url: str) -> None:
    first, second = await snippet("workers_wait_for").main(redis_url)
    assert first == ["Your favourite colour?", "teal, noted."]
    assert second == []  # the worker the answer reached ran nothing for it


async def start_sentinel(
    master_port: int, tmp_path: Path
) -> tuple[asyncio.subprocess.Process, list[tuple[str, int]]]:
    """A real sentinel (``redis-server --sentinel``) watching ``mymaster`` on ``master_port``,
    once it knows the master; returns the process and the sentinels' addresses."""
    import socket

    from redis.asyncio.sentinel import Sentinel

    from aiostep.testing.redis_server import find_redis_server

    binary = find_redis_server()
    assert binary is not None  # the redis_url fixture found one
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path / "sentinel.conf"  # sentinel rewrites its config: a file of its own
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds mymaster 500\n"
        "sentinel failover-timeout mymaster 5000\n"
    )
    proc = await asyncio.create_subprocess_exec(
        binary,
        str(conf),
        "--sentinel",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    sentinels = [("127.0.0.1", port)]
    probe = Sentinel(sentinels, socket_timeout=0.5)
    for _ in range(100):
        try:
            if await probe.discover_master("mymaster") == ("127.0.0.1", master_port):
                return proc, sentinels
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.1)
    proc.terminate()
    await proc.wait()
    raise AssertionError(f"the sentinel on port {port} never named the master")


@covers("deploy_sentinel.py")
@pytest.mark.slow
async def test_deploy_guide_storage_follows_the_master_sentinel_names(
    redis_url: str, tmp_path: Path
) -> None:
    """The snippet's storage finds the master through a real sentinel, runs the signup wizard,
    and the worker app on it is healthy and checks the secret."""
    from aiohttp.test_utils import TestClient, TestServer

    from examples.signup import build
    from examples.webhook.config import Config

    module = snippet("deploy_sentinel")
    master_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proc, sentinels = await start_sentinel(master_port, tmp_path)
    try:
        storage = module.sentinel_storage(sentinels, "mymaster")
        try:
            async with BotSimulator(lambda: build(storage)) as sim:
                talk = sim.chat()
                for text in ("/start", "Alice", "30"):
                    await talk.send(text)
                await talk.click("Yes")
                talk.assert_last("Welcome, Alice!")
        finally:
            await storage.redis.aclose()
        config = Config("42:TEST", "https://bot.example.test/hook", "s3cret")
        app = await module.sentinel_app(config, sentinels)
        async with TestClient(TestServer(app)) as client:
            resp = await client.get("/healthz")
            assert (resp.status, await resp.text()) == (200, "ok\n")
            resp = await client.post("/hook", json={"update_id": 1})
            assert resp.status == 401  # no secret
    finally:
        proc.terminate()
        await proc.wait()


@covers("deploy_sentinel.py")
@pytest.mark.slow
async def test_deploy_guide_storage_follows_a_sentinel_failover(tmp_path: Path) -> None:
    """Stop the master mid-wizard: the sentinel promotes the replica, and the same storage
    object continues the conversation there with the answers the replica had received."""
    from redis.asyncio import Redis
    from redis.asyncio.sentinel import Sentinel

    from aiostep.testing import RedisServer
    from examples.signup import build

    module = snippet("deploy_sentinel")
    with RedisServer() as master, RedisServer() as replica:
        to_replica = Redis(port=replica.port)
        to_master = Redis(port=master.port)
        try:
            await to_replica.replicaof("127.0.0.1", master.port)
            for _ in range(100):
                if (await to_replica.info("replication")).get("master_link_status") == "up":
                    break
                await asyncio.sleep(0.1)
            proc, sentinels = await start_sentinel(master.port, tmp_path)
            try:
                probe = Sentinel(sentinels, socket_timeout=0.5)
                for _ in range(100):  # the sentinel learns the replica from the master
                    if await probe.discover_slaves("mymaster"):
                        break
                    await asyncio.sleep(0.1)
                storage = module.sentinel_storage(sentinels, "mymaster")
                try:
                    async with BotSimulator(lambda: build(storage)) as sim:
                        talk = sim.chat()
                        await talk.send("/start")
                        await talk.send("Alice")
                        # the replica has every write so far (a failover loses what it lacks)
                        assert await to_master.execute_command("WAIT", 1, 5000) == 1
                        master.stop()  # the master goes away
                        for _ in range(300):
                            with contextlib.suppress(Exception):  # no master for a moment
                                found = await probe.discover_master("mymaster")
                                if found == ("127.0.0.1", replica.port):
                                    break
                            await asyncio.sleep(0.1)
                        else:
                            raise AssertionError("the sentinel never promoted the replica")
                        await talk.send("30")
                        talk.assert_last("Alice, 30. Correct?")
                        await talk.click("Yes")
                        talk.assert_last("Welcome, Alice!")
                finally:
                    await storage.redis.aclose()
            finally:
                proc.terminate()
                await proc.wait()
        finally:
            await to_replica.aclose()
            await to_master.aclose()


@covers("testing_kit.py")
async def test_testing_guide_examples(
    aiostep_simulator: SimulatorFactory,  # noqa: F811 - the fixture imported above
    aiostep_clock: FakeClock,  # noqa: F811
    tmp_path: Path,
) -> None:
    module = snippet("testing_kit")
    await module.test_signup(aiostep_simulator)
    await module.test_signup_survives_a_restart(tmp_path)
    await module.test_answers_stay_in_their_conversation(aiostep_simulator)
    await module.test_quiz_times_out(aiostep_simulator, aiostep_clock)
    # the alias a project may define for a shorter name hands the plugin's value through
    assert module.redis_url.__wrapped__("redis://127.0.0.1:1/0") == "redis://127.0.0.1:1/0"


# -- adding aiostep to your own bot; forgetting a conversation -----------------------------------


@covers("own_bot.py")
async def test_own_bot_keeps_its_handlers_next_to_the_wizard() -> None:
    module = snippet("own_bot")
    async with BotSimulator(lambda: module.build(MemoryStateStorage())) as sim:
        talk = sim.chat()
        await talk.send("/help")
        talk.assert_last("/signup to register.")
        await talk.send("hello")
        talk.assert_last("Sorry, I did not get that. /help")
        await talk.send("/signup")
        talk.assert_last("What is your name?")
        await talk.send("Alice")  # the wizard's step takes it, not the catch-all
        talk.assert_last("How old are you?")
        await talk.send("30")
        talk.assert_last("Welcome, Alice!")
        await talk.send("thanks")
        talk.assert_last("Sorry, I did not get that. /help")


@covers("own_bot.py")
async def test_own_bot_polls_with_a_file_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    polled: list[Dispatcher] = []

    async def start_polling(self: Dispatcher, *bots: Any, **kwargs: Any) -> None:
        polled.append(self)
        await bots[0].session.close()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setattr(Dispatcher, "start_polling", start_polling)
    await snippet("own_bot").run_polling()
    assert len(polled) == 1


def telegram_update(update_id: int, text: str) -> dict[str, Any]:
    """A private text message from user 1001, as Telegram posts it to a webhook."""
    entities = [{"type": "bot_command", "offset": 0, "length": len(text)}] if text[0] == "/" else []
    user = {"id": 1001, "is_bot": False, "first_name": "Alice"}
    message = {
        "message_id": update_id,
        "date": 1_700_000_000,
        "chat": {"id": 1001, "type": "private", "first_name": "Alice"},
        "from": user,
        "text": text,
        "entities": entities,
    }
    return {"update_id": update_id, "message": message}


@covers("own_bot.py")
async def test_own_bot_webhook_sets_the_hook_and_answers_updates(tmp_path: Path) -> None:
    from aiogram.methods import SendMessage, SetWebhook
    from aiohttp.test_utils import TestClient, TestServer

    from aiostep.testing import RecordingSession

    module = snippet("own_bot")
    session = RecordingSession()
    bot = Bot("42:TEST", session=session)
    storage = FileStateStorage(tmp_path / "state.jsonl")
    app = module.webhook_app(
        module.build(storage), bot, base_url="https://bot.example.com", secret="s3cret"
    )

    async def replies(count: int) -> list[str]:
        for _ in range(100):  # the handler answers Telegram first, then handles the update
            sent = [call.text for call in session.calls if isinstance(call, SendMessage)]
            if len(sent) >= count:
                return sent
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} replies, got {sent}")

    async with TestClient(TestServer(app)) as client:
        (hook,) = [call for call in session.calls if isinstance(call, SetWebhook)]
        assert hook.url == "https://bot.example.com/telegram/webhook"
        assert hook.secret_token == "s3cret"
        assert hook.allowed_updates is not None and "callback_query" in hook.allowed_updates

        forged = await client.post(module.WEBHOOK_PATH, json=telegram_update(1, "/signup"))
        assert forged.status == 401  # no secret: not from Telegram

        header = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        for update_id, text in enumerate(["/signup", "Alice"], start=2):
            response = await client.post(
                module.WEBHOOK_PATH, json=telegram_update(update_id, text), headers=header
            )
            assert response.status == 200
            await replies(update_id - 1)
        assert await replies(2) == ["What is your name?", "How old are you?"]
    # the conversation is in the journal, for the next start
    assert "Alice" in (tmp_path / "state.jsonl").read_text(encoding="utf-8")


@covers("forget_conversation.py")
async def test_forget_guide_erases_on_request_by_an_admin_and_from_a_job(tmp_path: Path) -> None:
    module = snippet("forget_conversation")
    path = tmp_path / "state.jsonl"
    storage = FileStateStorage(path)
    async with BotSimulator(lambda: module.build(storage, admins=frozenset({9000}))) as sim:
        user, admin = sim.user(first_name="Alice"), sim.user(id=9000, first_name="Admin")
        talk = sim.chat(user)
        key = storage_key(ConversationKey(talk.chat.id, user.id, None, sim.bot.id))

        await talk.send("/signup")
        await talk.send("Alice")
        talk.assert_last("Your phone number?")
        await talk.send("/forgetme")
        talk.assert_last("Done: what you told me here is deleted.")  # and no prompt again
        assert await storage.read(key) is None
        await talk.send("+44 20 7946 0958")  # no step waits: nothing answers it
        talk.assert_last("Done: what you told me here is deleted.")

        await talk.send("/signup")
        await talk.send("Bob")
        await talk.send(f"/reset {user.id}")  # not an admin; the wizard asks again after it
        assert bot_texts(sim)[-2:] == ["Usage (admins only): /reset USER_ID", "Your phone number?"]
        await sim.chat(admin).send(f"/reset {user.id}")
        sim.chat(admin).assert_last(f"Forgot the sign-up of {user.id}.")
        assert await storage.read(key) is None

        await talk.send("/signup")
        await talk.send("Carol")
        await module.erase(sim.bot, storage, user.id, user.id)
        assert await storage.read(key) is None
    # what the guide warns about: a File journal keeps superseded lines until it is compacted
    assert "Alice" in path.read_text(encoding="utf-8")


# -- examples shown on the site ------------------------------------------------------------------


async def test_example_signup() -> None:
    from examples.signup import build

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("Alice")
        await talk.send("abc")
        talk.assert_last("Please send a whole number from 1 to 120.\n\nHow old are you?")
        await talk.send("30")
        await talk.click("Yes")
        talk.assert_last("Welcome, Alice!")


async def test_example_survey() -> None:
    from examples.survey import build

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.click("No")
        await talk.send("Rust")
        await talk.send("/skip")
        await talk.send("/skip")
        talk.assert_last("Thanks! Recorded: python=False, language='Rust', email=None, comment=''")


async def test_example_order() -> None:
    from examples.order import build

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.click("Pepperoni")
        await talk.send("2")
        await talk.click("Add more")
        await talk.click("Veggie")
        await talk.send("1")
        await talk.click("That's all")
        talk.assert_last("Your order:\n2 x Pepperoni\n1 x Veggie\nTotal: 29 EUR. Place it?")
        await talk.click("Place order")
        talk.assert_last("Order placed. Enjoy!")


# -- the pages: includes, graphs, code blocks ----------------------------------------------------

INCLUDE = re.compile(r'^[ \t]*-{1,}8<-{1,}[ \t]+"(?P<target>[^"]+)"[ \t]*$', re.M)
SECTION = re.compile(
    r"-{1,}8<-{1,}[ \t]+\[[ \t]*(start|end)[ \t]*:[ \t]*([a-z][-_0-9a-z]*)[ \t]*\]"
)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$", re.M)
#: Languages a block may be written in directly: commands, and generated diagrams.
INLINE_LANGUAGES = {"bash", "console", "shell", "sh"}


def pages() -> Iterator[Path]:
    yield from sorted(DOCS.rglob("*.md"))


def includes() -> Iterator[tuple[Path, str]]:
    for page in pages():
        for match in INCLUDE.finditer(page.read_text(encoding="utf-8")):
            yield page, match.group("target")


def sections(path: Path) -> dict[str, tuple[int, int]]:
    """The ``# --8<-- [start:x]`` / ``[end:x]`` sections of ``path`` (line numbers)."""
    found: dict[str, list[int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = SECTION.search(line)
        if match:
            found.setdefault(match.group(2), []).append(number)
    return {name: (lines[0], lines[-1]) for name, lines in found.items() if len(lines) == 2}


def test_pages_include_something() -> None:
    assert len(list(includes())) > 20


@pytest.mark.parametrize(("page", "target"), list(includes()), ids=lambda x: str(x))
def test_every_include_points_at_an_existing_file_and_section(page: Path, target: str) -> None:
    path, _, section = target.partition(":")
    file = ROOT / path
    assert file.is_file(), f"{page.relative_to(ROOT)} includes missing file {path}"
    assert path.startswith(("docs/snippets/", "examples/")), (
        f"{page.relative_to(ROOT)} includes {path}: code on the site comes from "
        "docs/snippets/ or examples/, which the tests run"
    )
    if section:
        assert not section[0].isdigit(), f"{target}: use a named section, not line numbers"
        assert section in sections(file), f"{target}: no [start:{section}]/[end:{section}] pair"


def snippet_files() -> list[Path]:
    return [path for path in SNIPPETS.iterdir() if path.suffix in (".py", ".txt")]


def test_every_snippet_file_is_run_by_a_test() -> None:
    files = {path.name for path in snippet_files()}
    assert files - COVERED == set(), "snippets no test runs"
    assert COVERED - files == set(), "tests name snippets that do not exist"


def test_every_snippet_file_is_shown_somewhere() -> None:
    shown = {target.partition(":")[0] for _, target in includes()}
    files = {
        f"docs/snippets/{path.name}"
        for path in SNIPPETS.iterdir()
        if path.suffix in (".py", ".txt")
    }
    assert files - shown == set()


@pytest.mark.parametrize("page", list(pages()), ids=lambda p: str(p.relative_to(DOCS)))
def test_code_blocks_come_from_tested_files(page: Path) -> None:
    """A fenced block holds only ``--8<--`` includes, unless it is a shell command."""
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.fullmatch(lines[index])
        if match is None:
            index += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = [line.strip() for line in lines[index + 1 : end] if line.strip()]
        language = info.split()[0] if info else ""
        if language not in INLINE_LANGUAGES:
            assert body and all(INCLUDE.fullmatch(line) for line in body), (
                f"{page.relative_to(ROOT)}:{index + 1}: a ```{info} block must only include "
                'files (--8<-- "docs/snippets/..."); write shell commands as ```bash'
            )
        index = end + 1


# -- wizard graphs -------------------------------------------------------------------------------


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiostep_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def graph_markers() -> list[tuple[Path, str]]:
    marker = hooks().MARKER
    return [
        (page, match.group("target"))
        for page in pages()
        for match in marker.finditer(page.read_text(encoding="utf-8"))
    ]


def test_graphs_are_drawn_on_the_tutorial_and_for_each_example() -> None:
    targets = {(page.name, target) for page, target in graph_markers()}
    assert any(name == "tutorial.md" for name, _ in targets)
    for example in ("signup", "survey", "order", "pizza", "booking"):
        assert any(example in target for _, target in targets), example


@pytest.mark.parametrize(("page", "target"), graph_markers(), ids=lambda x: str(x))
def test_every_wizard_graph_marker_renders(page: Path, target: str) -> None:
    module = hooks()
    rendered = module.render_markers(f"before\n<!-- wizard-graph: {target} -->\nafter", str(ROOT))
    head, _, rest = rendered.partition("```mermaid\nflowchart TD\n")
    assert head == "before\n"
    assert rest.endswith("```\nafter")
    assert "start((start))" in rest


def test_a_bad_graph_target_fails_the_build() -> None:
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="not a Wizard subclass"):
        hooks().render_markers("<!-- wizard-graph: examples.signup:build -->", str(ROOT))


@covers("play_signup.txt")
def test_the_playground_transcript_shown_on_the_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/snippets/play_signup.txt is what the quickstart's command prints for this input."""
    from aiostep_dialogs.playground import run_playground

    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    run_playground("examples/signup.py", stdin=io.StringIO("Alice\n30\n1\n"), stdout=out)
    assert out.getvalue() == (SNIPPETS / "play_signup.txt").read_text(encoding="utf-8")


@covers("redeploy_wizard.py")
async def test_redeployed_wizard_carries_on_conversations_stored_by_the_previous_deploy(
    tmp_path: Path,
) -> None:
    """Conversations as the previous deploy stored them (states SIZE, NAME, NOTE; the name
    one string) go on under the changed class."""
    module = snippet("redeploy_wizard")
    path = tmp_path / "state.jsonl"
    storages: list[FileStateStorage] = []

    def build() -> Dispatcher:
        storages.append(FileStateStorage(path))
        dp: Dispatcher = module.build(storages[-1])
        return dp

    async def as_previous_deploy_left_it(talk: Any, state: str, data: dict[str, Any]) -> None:
        key = storage_key(ConversationKey(talk.chat.id, talk.user.id, None, talk.sim.bot.id))
        record = await storages[-1].read(key)
        assert record is not None
        answered = [{"s": s, "x": [k]} for s, k in (("SIZE", "cup"), ("NAME", "name")) if k in data]
        await storages[-1].write(
            key,
            Patch(
                callback=f"coffee:{state}",
                state=state,
                data=data,
                # the previous deploy had no schema_version (1): no "sv"
                kwargs={**record.kwargs, "sv": 1, "fp": "0ld0ld00", "h": answered},
            ),
        )

    async with BotSimulator(build) as sim:
        at_note = sim.chat()
        await at_note.send("/coffee")
        await as_previous_deploy_left_it(at_note, "NOTE", {"cup": "large", "name": "Ann Lee"})
        at_size = sim.chat(sim.user(first_name="Bob"))
        await at_size.send("/coffee")
        await as_previous_deploy_left_it(at_size, "SIZE", {})
        await sim.restart()

        await at_note.send("no sugar")  # NOTE is gone: on at the fallback, PAY
        at_note.assert_last("Card or cash?", buttons=[["card", "cash"]])
        await at_note.click("cash")
        at_note.assert_last("A large cup for Ann, paid by cash.")  # the name was migrated

        await at_size.send("small")  # SIZE is CUP now; MILK comes next
        at_size.assert_last("Milk?", buttons=[["yes", "no"]])
        await at_size.send("/back")
        at_size.assert_last("Which cup?", buttons=[["small", "large"]])


@covers("play_resumed.txt")
def test_the_playground_shows_a_resumed_conversation_as_on_the_site(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """docs/snippets/play_resumed.txt is what ``play --no-start`` prints over a file storage
    holding a conversation at its confirmation step."""
    from aiostep_dialogs.playground import run_playground

    monkeypatch.chdir(ROOT)
    spec = f"file:{tmp_path / 'state.jsonl'}"
    run_playground(
        "examples/signup.py", storage=spec, stdin=io.StringIO("Bob\n30\n"), stdout=io.StringIO()
    )
    out = io.StringIO()
    status = run_playground(
        "examples/signup.py", storage=spec, send_start=False, stdin=io.StringIO(""), stdout=out
    )
    assert status == 0
    assert out.getvalue() == (SNIPPETS / "play_resumed.txt").read_text(encoding="utf-8")


# -- timeouts and reminders ----------------------------------------------------------------------


@covers("timeouts_wizard.py")
async def test_timeouts_guide_wizard(tmp_path: Path) -> None:
    module = snippet("timeouts_wizard")
    path = tmp_path / "state.jsonl"
    async with BotSimulator(lambda: module.build(FileStateStorage(path))) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/table")
        await clock.advance(60)
        talk.assert_last("Still there?\n\nWhich day?")
        await clock.advance(240)  # the reminder did not move the timeout
        talk.assert_last("No answer, so I dropped the booking. /table starts again.")

        await talk.send("/table")
        await talk.send("Friday")
        await sim.restart()  # reminders and timeouts are stored: they fire after a restart
        await clock.advance(30)
        talk.assert_last("Just a number, please.\n\nFor how many people?")
        await clock.advance(60)
        talk.assert_last("Just a number, please.\n\nFor how many people?")
        await talk.send("4")
        talk.assert_last("4 on Friday. Book it?", buttons=[["yes", "no"]])
        await clock.advance(120)  # this step's own timeout; on_timeout finishes it
        talk.assert_last("Booked.")


@covers("timeouts_raw.py")
async def test_timeouts_guide_raw_steps(tmp_path: Path) -> None:
    module = snippet("timeouts_raw")
    path = tmp_path / "state.jsonl"
    async with BotSimulator(lambda: module.build(FileStateStorage(path))) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await sim.restart()
        await clock.advance(60)
        talk.assert_last("Still there? 2 + 2?")
        await clock.advance(120)
        assert bot_texts(sim)[-2:] == ["Still there? 2 + 2?", "Let's leave it for now."]
        await talk.send("/quiz")
        await clock.advance(30)
        await talk.send("4")
        talk.assert_last("2 + 2? 4: noted.")


# -- the architecture page -----------------------------------------------------------------------


def module_map() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiostep_module_map", DOCS / "module_map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@covers("module_map.txt")
def test_the_architecture_page_draws_the_imports_the_code_makes() -> None:
    shown = (SNIPPETS / "module_map.txt").read_text(encoding="utf-8")
    assert shown == module_map().render(), (
        "the module map is out of date: run `python docs/module_map.py`"
    )


def test_every_module_the_architecture_page_names_exists() -> None:
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:aiostep|aiostep_dialogs)/[\w/]*(?:\.py)?)`", page))
    # the short names in a row of the table: `requests.py` beside `aiostep_dialogs/choices.py`
    paths |= {f"aiostep_dialogs/{name}" for name in re.findall(r"`(\w+\.py)`", page)}
    assert len(paths) > 20
    missing = sorted(path for path in paths if not (ROOT / path).exists())
    assert missing == []
    drawn = module_map().DRAWN
    for package, names in drawn.items():
        folder = ROOT / package.replace(".", "/")
        assert [
            n for n in names if not (folder / f"{n}.py").exists() and not (folder / n).is_dir()
        ] == []
