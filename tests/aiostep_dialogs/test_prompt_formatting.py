"""User data in prompts shows as typed whatever the bot's parse mode: values formatted into a
template are escaped (the template is the author's markup), Markup opts out, aiogram formatting
nodes are sent as entities, and rejection reasons are plain text."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import MessageEntity
from aiogram.utils.formatting import Bold, Text

from aiostep.testing import BotSimulator, RecordingSession
from aiostep_dialogs import Markup, ValidationError, Wizard, formatting, step, v

if TYPE_CHECKING:
    from conftest import Backend

PROMPTS: dict[str | None, str] = {
    "HTML": "<b>{name}</b>, {age}. Correct?",
    "MarkdownV2": r"*{name}*, {age}\. Correct?",
    "Markdown": "{name}, {age}. *Correct?*",
    None: "{name}, {age}. Correct?",
}


def signup(parse_mode: str | None) -> type[Wizard]:
    """A signup whose confirm prompt formats the user's name into ``parse_mode``'s markup."""

    class Signup(Wizard, name=f"t_fmt_signup_{parse_mode}"):
        class State(Enum):
            NAME = auto()
            AGE = auto()
            CONFIRM = auto()

        @step(State.NAME, prompt="What is your name?")
        async def name(self, value: str) -> None:
            self.data["name"] = value

        @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
        async def age(self, value: int) -> None:
            self.data["age"] = value

        @step(State.CONFIRM, prompt=PROMPTS[parse_mode], choices={"yes": "Yes", "no": "No"})
        async def confirm(self, value: str) -> None:
            pass

    return Signup


SIGNUPS = {mode: signup(mode) for mode in PROMPTS}


class HtmlSignup(Wizard, name="t_fmt_html_signup"):
    """A plain template prompt, as most wizards write it."""

    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you, <i>{name}</i>?", validate=v.integer(min=1))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(State.CONFIRM, prompt=PROMPTS["HTML"], choices={"yes": "Yes", "no": "No"})
    async def confirm(self, value: str) -> None:
        pass


def html_bot(session: RecordingSession | None = None, parse_mode: str | None = "HTML") -> Bot:
    return Bot(
        "42:TEST",
        session=session or RecordingSession(),
        default=DefaultBotProperties(parse_mode=parse_mode),
    )


def setup(wizard: type[Wizard]) -> Callable[[Dispatcher, Any], None]:
    def install(dp: Dispatcher, storage: Any) -> None:
        wizard.setup(dp, entry=Command("signup"), storage=storage)

    return install


def entity(kind: str, offset: int, length: int) -> MessageEntity:
    return MessageEntity(type=kind, offset=offset, length=length)


async def test_a_name_with_html_in_it_shows_as_typed_in_an_html_prompt(backend: Backend) -> None:
    async with BotSimulator(backend.factory(setup(HtmlSignup)), bot=html_bot()) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await talk.send("Ada <i")
        talk.assert_last("How old are you, Ada <i?")
        await talk.send("30")
        talk.assert_last("Ada <i, 30. Correct?", buttons=[["Yes", "No"]])
        assert talk.last_message is not None
        assert talk.last_message.message.entities == [entity("bold", 0, 6)]


async def test_a_prompt_resent_after_a_restart_is_escaped_again(
    persistent_backend: Backend,
) -> None:
    factory = persistent_backend.factory(setup(HtmlSignup))
    async with BotSimulator(factory, bot=html_bot()) as sim:
        talk = sim.chat()
        for text in ("/signup", "Tom & <Jerry>", "30"):
            await talk.send(text)
        await sim.restart()
        await talk.send("maybe")  # rejected: the prompt comes again, from stored data
        talk.assert_last(
            "Please choose one of: Yes, No.\n\nTom & <Jerry>, 30. Correct?",
            buttons=[["Yes", "No"]],
        )
        await talk.send("/signup")  # on_reentry="resume" re-sends the prompt
        talk.assert_last("Tom & <Jerry>, 30. Correct?")


@pytest.mark.parametrize(
    ("parse_mode", "name", "shown"),
    [
        ("HTML", "Ada <i", "Ada <i, 30. Correct?"),
        ("HTML", "a&b</b>", "a&b</b>, 30. Correct?"),
        ("MarkdownV2", "a_b*c", "a_b*c, 30. Correct?"),
        ("MarkdownV2", "[x](y) ~!.#", "[x](y) ~!.#, 30. Correct?"),
        ("Markdown", "a_b*c`[", "a_b*c`[, 30. Correct?"),
        (None, "<b>*_", "<b>*_, 30. Correct?"),
    ],
)
async def test_a_users_markup_characters_show_as_typed_in_every_parse_mode(
    parse_mode: str | None, name: str, shown: str
) -> None:
    async with BotSimulator(
        lambda: _dispatcher(SIGNUPS[parse_mode]), bot=html_bot(parse_mode=parse_mode)
    ) as sim:
        talk = sim.chat()
        for text in ("/signup", name, "30"):
            await talk.send(text)
        talk.assert_last(shown, buttons=[["Yes", "No"]])
        assert talk.last_message is not None
        entities = talk.last_message.message.entities or []
        assert [e.type for e in entities] == (["bold"] if parse_mode else [])


def _dispatcher(wizard: type[Wizard]) -> Dispatcher:
    dp = Dispatcher()
    setup(wizard)(dp, None)
    return dp


async def test_without_escaping_telegram_would_refuse_the_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The escaping is what keeps the prompt valid: switched off, the session (like Telegram)
    answers 400 and the wizard's prompt is never shown."""
    monkeypatch.setattr(formatting, "escape", lambda value, parse_mode: str(value))
    async with BotSimulator(lambda: _dispatcher(HtmlSignup), bot=html_bot()) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        with pytest.raises(
            TelegramBadRequest, match=r"^Telegram server says - Bad Request: can't parse"
        ):
            await talk.send("Ada <i")
    async with BotSimulator(
        lambda: _dispatcher(SIGNUPS["MarkdownV2"]), bot=html_bot(parse_mode="MarkdownV2")
    ) as sim:
        talk = sim.chat()
        for text in ("/signup", "a_b*c"):
            await talk.send(text)
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await talk.send("30")


class Badge(Wizard, name="t_fmt_badge"):
    """Markup on purpose: a stored field the template marks ``!m``, a Markup reason."""

    class State(Enum):
        NAME = auto()
        NOTE = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value
        self.data["badge"] = "<u>member</u>"  # stored as plain JSON text; the template marks it

    @step(State.NOTE, prompt="{badge!m} {name}: a note?", error=Markup("<i>Text</i> only"))
    async def note(self, value: str) -> None:
        if value == "?":
            raise ValidationError(Markup("<b>Really?</b>"))


async def test_fields_marked_markup_and_markup_reasons_are_not_escaped(backend: Backend) -> None:
    async with BotSimulator(backend.factory(setup(Badge)), bot=html_bot()) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await talk.send("<i>")
        talk.assert_last("member <i>: a note?")
        assert talk.last_message is not None
        assert talk.last_message.message.entities == [entity("underline", 0, 6)]
        await talk.send_photo()
        talk.assert_last("Text only\n\nmember <i>: a note?")
        assert talk.last_message is not None
        assert talk.last_message.message.entities == [
            entity("italic", 0, 4),
            entity("underline", 11, 6),
        ]


class Stash(Wizard, name="t_fmt_stash"):
    class State(Enum):
        ONE = auto()
        TWO = auto()

    @step(State.ONE, prompt="One?")
    async def one(self, value: str) -> None:
        self.data["badge"] = Markup("<b>VIP</b>")

    @step(State.TWO, prompt="Two?")
    async def two(self, value: str) -> None:
        pass


async def test_markup_cannot_be_stored_in_wizard_data() -> None:
    """Storages keep plain JSON: a Markup would come back as plain text, so it is refused."""
    async with BotSimulator(lambda: _dispatcher(Stash), bot=html_bot()) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        with pytest.raises(TypeError, match=r"data\['badge'\] is not JSON-serializable: Markup"):
            await talk.send("x")


class Nodes(Wizard, name="t_fmt_nodes"):
    """aiogram formatting nodes as prompts: static, and computed from the data."""

    class State(Enum):
        NAME = auto()
        CONFIRM = auto()

    show_progress = True

    @step(State.NAME, prompt=Text("Your ", Bold("name"), "?"))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.CONFIRM,
        prompt=lambda wizard: Text(Bold(wizard.data["name"]), ", correct?"),
        choices=["yes", "no"],
    )
    async def confirm(self, value: str) -> None:
        await self.answer(Text("Saved ", Bold(self.data["name"]), "."))


@pytest.mark.parametrize("parse_mode", ["HTML", "MarkdownV2", None])
async def test_formatting_node_prompts_are_sent_as_entities(parse_mode: str | None) -> None:
    async with BotSimulator(lambda: _dispatcher(Nodes), bot=html_bot(parse_mode=parse_mode)) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        talk.assert_last("Step 1 of 2\nYour name?")
        await talk.send("<a_b*c>.")
        talk.assert_last("Step 2 of 2\n<a_b*c>., correct?")
        assert talk.last_message is not None
        assert talk.last_message.message.entities == [entity("bold", 12, 8)]
        await talk.send("perhaps")
        talk.assert_last("Please choose one of: yes, no.\n\nStep 2 of 2\n<a_b*c>., correct?")
        await talk.send("yes")
        talk.assert_last("Saved <a_b*c>..")


def _taken(value: str) -> str:
    raise ValidationError(f"{value} is taken.")


class Login(Wizard, name="t_fmt_login"):
    """A rejection's reason quotes the user's input."""

    class State(Enum):
        LOGIN = auto()

    parse_mode = "HTML"  # the wizard's own parse mode; the bot has none
    show_progress = True
    texts = Wizard.texts.__class__(progress="({index}/{total})")

    @step(State.LOGIN, prompt="<b>Login</b>?", validate=[v.text(), _taken])
    async def login(self, value: str) -> None:
        pass


async def test_rejection_reasons_and_progress_are_plain_text_in_the_wizards_parse_mode() -> None:
    async with BotSimulator(lambda: _dispatcher(Login), bot=html_bot(parse_mode=None)) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        talk.assert_last("(1/1)\nLogin?")
        await talk.send("<b>&")
        talk.assert_last("<b>& is taken.\n\n(1/1)\nLogin?")
        assert talk.last_message is not None
        assert talk.last_message.message.entities == [entity("bold", 22, 5)]


@pytest.mark.parametrize("parse_mode", ["HTML", "MarkdownV2", "Markdown"])
async def test_the_wizards_own_texts_are_sent_plain_under_any_parse_mode(parse_mode: str) -> None:
    """/back on the first step, /skip on a required one and /cancel: the default texts end in
    '.', which MarkdownV2 reserves; they are escaped like any plain text."""
    async with BotSimulator(
        lambda: _dispatcher(SIGNUPS[parse_mode]), bot=html_bot(parse_mode=parse_mode)
    ) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await talk.send("/back")
        talk.assert_sent_contains("This is the first step; there is nothing to go back to.")
        await talk.send("/skip")
        talk.assert_sent_contains("This step can't be skipped.")
        await talk.send("/cancel")
        assert talk.last == "Cancelled."
