"""Validators through a real Dispatcher: converted values reach the step method; a rejection is
one message (reason, then the prompt) and stores nothing; max_attempts gives up."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message

from aiostep.testing import Conversation
from aiostep_dialogs import Finish, ValidationError, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend

PROMPT = "Your answer?"


def _asker(name: str, validate: Any) -> type[Wizard]:
    """A one-step wizard that finishes with the validated value and says its type and repr."""

    class Ask(Wizard, name=name):
        class State(Enum):
            VALUE = auto()

        @step(State.VALUE, prompt=PROMPT, validate=validate)
        async def value(self, value: Any) -> Finish:
            return self.finish(value)

        async def on_finish(self) -> None:
            await self.answer(f"{type(self.result).__name__}: {self.result!r}")

    return Ask


def _even(value: int) -> int:
    if value % 2:
        raise ValidationError("Please send an even number.")
    return value


async def _not_taken(value: int) -> int:
    await asyncio.sleep(0)  # e.g. a database lookup
    if value == 42:
        raise ValidationError("42 is taken.")
    return value


def _shout(value: str) -> str:
    return value.upper()


WIZARDS: dict[str, type[Wizard]] = {
    "default": _asker("t_val_default", None),
    "text": _asker("t_val_text", v.text(min_len=2, max_len=5)),
    "regex": _asker("t_val_regex", v.text(regex=r"[a-z]+\d")),
    "integer": _asker("t_val_integer", v.integer(min=1, max=10)),
    "number": _asker("t_val_number", v.number(min=0)),
    "choice": _asker("t_val_choice", v.choice({"red": "Red", "green": "Green"})),
    "yes_no": _asker("t_val_yes_no", v.yes_no()),
    "email": _asker("t_val_email", v.email()),
    "phone": _asker("t_val_phone", v.phone()),
    "date": _asker("t_val_date", v.date(max=dt.date(2030, 1, 1))),
    "photo": _asker("t_val_photo", v.photo()),
    "document": _asker("t_val_document", v.document()),
    "contact": _asker("t_val_contact", v.contact()),
    "location": _asker("t_val_location", v.location()),
    "list": _asker("t_val_list", [v.integer(), _even, _not_taken]),
    "chain": _asker("t_val_chain", v.chain(v.text(max_len=10), _shout)),
    "chain_async": _asker("t_val_chain_async", [v.chain(v.integer(), _not_taken), _even]),
}

Action = Callable[[Conversation], Awaitable[Any]]


def text(value: str) -> Action:
    return lambda talk: talk.send(value)


ACCEPTED: list[tuple[str, Action, str]] = [
    ("default", text("  hello  "), "str: 'hello'"),
    ("text", text("  abc "), "str: 'abc'"),
    ("regex", text("abc1"), "str: 'abc1'"),
    ("integer", text(" 7 "), "int: 7"),
    ("integer", text("+10"), "int: 10"),
    ("number", text("12,5"), "float: 12.5"),
    ("number", text("3"), "float: 3.0"),
    ("choice", text("GREEN"), "str: 'green'"),
    ("choice", text("red"), "str: 'red'"),
    ("yes_no", text("Yes"), "bool: True"),
    ("yes_no", text("nope"), "bool: False"),
    ("email", text("Ann.Lee@Example.COM"), "str: 'Ann.Lee@example.com'"),
    ("phone", text("+44 20 7946 0958"), "str: '+442079460958'"),
    ("phone", text("+1 (202) 555-0143"), "str: '+12025550143'"),
    ("phone", lambda talk: talk.send_contact("15550100000"), "str: '+15550100000'"),
    ("date", text("2024-02-29"), "date: datetime.date(2024, 2, 29)"),
    ("date", text("31.12.2024"), "date: datetime.date(2024, 12, 31)"),
    ("date", text("01/02/2025"), "date: datetime.date(2025, 2, 1)"),
    ("photo", lambda talk: talk.send_photo(file_id="cat"), "str: 'cat-big'"),
    (
        "document",
        lambda talk: talk.send_document("cv.pdf", mime_type="application/pdf", file_id="cv"),
        "dict: {'file_id': 'cv', 'file_name': 'cv.pdf', 'mime_type': 'application/pdf'}",
    ),
    (
        "contact",
        lambda talk: talk.send_contact("+15550100000"),
        "dict: {'phone_number': '+15550100000', 'first_name': 'Alice', 'user_id': 1001}",
    ),
    (
        "location",
        lambda talk: talk.send_location(51.5, -0.125),
        "dict: {'latitude': 51.5, 'longitude': -0.125}",
    ),
    ("list", text("8"), "int: 8"),
    ("chain", text("quiet"), "str: 'QUIET'"),
    ("chain_async", text("12"), "int: 12"),
]

REJECTED: list[tuple[str, Action, str]] = [
    ("default", lambda talk: talk.send_sticker(), "Please send a text message."),
    ("default", text("x" * 5000), "Please keep it to 4096 characters or fewer."),
    ("text", text("a"), "Please send at least 2 characters."),
    ("text", text("abcdef"), "Please keep it to 5 characters or fewer."),
    ("text", lambda talk: talk.send_photo(), "Please send a text message."),
    ("regex", text("ABC"), "That doesn't look right; please try again."),
    ("integer", text("7.5"), "Please send a whole number."),
    ("integer", text("11"), "Please send a number from 1 to 10."),
    ("integer", text("0"), "Please send a number from 1 to 10."),
    ("integer", lambda talk: talk.send_sticker(), "Please send a number as a text message."),
    ("integer", text("9" * 5000), "Please send a whole number."),
    ("number", text("abc"), "Please send a number, like 12.5."),
    ("number", text("-1"), "Please send a number of at least 0."),
    ("choice", text("blue"), "Please choose one of: Red, Green."),
    ("yes_no", text("maybe"), "Please answer yes or no."),
    ("email", text("not-an-email"), "Please send a valid e-mail address, like name@example.com."),
    ("phone", text("123"), "Please send a phone number, like +44 20 7946 0958."),
    ("phone", text("(202) 555-0143"), "Please include the country code, like +44 20 7946 0958."),
    ("date", text("2024-13-01"), "Please send a date like 2024-12-31."),
    ("date", text("2031-01-01"), "That date is out of range."),
    ("photo", text("a photo"), "Please send a photo."),
    ("photo", lambda talk: talk.send_document(), "Please send a photo."),
    ("document", text("cv.pdf"), "Please send a file."),
    ("contact", text("+15550100000"), "Please share a contact."),
    ("location", text("London"), "Please share a location."),
    ("list", text("7"), "Please send an even number."),
    ("list", text("42"), "42 is taken."),
    ("list", text("x"), "Please send a whole number."),
    ("chain", text("far too long"), "Please keep it to 10 characters or fewer."),
    ("chain_async", text("42"), "42 is taken."),
    ("chain_async", text("13"), "Please send an even number."),
]


def _setup(wizard: type[Wizard]) -> Callable[[Dispatcher, object], None]:
    def setup(dp: Dispatcher, storage: object) -> None:
        wizard.setup(dp, entry=Command("ask"), storage=storage)

    return setup


@pytest.mark.parametrize(
    ("kind", "act", "expected"),
    ACCEPTED,
    ids=[f"{kind}-{i}" for i, (kind, _, _) in enumerate(ACCEPTED)],
)
async def test_valid_input_reaches_the_step_converted(
    backend: Backend, kind: str, act: Action, expected: str
) -> None:
    sim = backend.simulator(_setup(WIZARDS[kind]))
    talk = sim.chat()
    await talk.send("/ask")
    talk.assert_last(PROMPT)
    await act(talk)
    talk.assert_last(expected)


@pytest.mark.parametrize(
    ("kind", "act", "reason"),
    REJECTED,
    ids=[f"{kind}-{i}" for i, (kind, _, _) in enumerate(REJECTED)],
)
async def test_invalid_input_gets_the_reason_and_the_prompt_in_one_message(
    backend: Backend, kind: str, act: Action, reason: str
) -> None:
    sim = backend.simulator(_setup(WIZARDS[kind]))
    talk = sim.chat()
    await talk.send("/ask")
    before = await backend.record(talk)
    sent = len(talk.messages)

    await act(talk)

    assert len(talk.messages) == sent + 1, talk.transcript()  # one message, one prompt
    talk.assert_last(f"{reason}\n\n{PROMPT}")
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert after.callback == before.callback and after.current_state == before.current_state
    assert after.data == before.data == {}
    assert after.kwargs["a"] == 1  # one rejected attempt


class Age(Wizard, name="t_val_age"):
    """A step ``error`` replaces the validator's reason; the method sees an ``int``."""

    class State(Enum):
        AGE = auto()
        CITY = auto()

    @step(
        State.AGE,
        prompt="How old are you?",
        validate=v.integer(min=1, max=120),
        error="Your age, as a whole number from 1 to 120.",
    )
    async def age(self, value: int) -> None:
        assert type(value) is int
        self.data["age"] = value
        self.data["next_year"] = value + 1

    @step(State.CITY, prompt="Where do you live?")
    async def city(self, value: str) -> None:
        self.data["city"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['age']} -> {self.data['next_year']}, {self.data['city']}")


async def test_step_error_replaces_the_validator_reason(backend: Backend) -> None:
    sim = backend.simulator(
        lambda dp, storage: Age.setup(dp, entry=Command("age"), storage=storage)
    )
    talk = sim.chat()
    await talk.send("/age")
    await talk.send("two hundred")
    talk.assert_last("Your age, as a whole number from 1 to 120.\n\nHow old are you?")
    await talk.send("200")
    talk.assert_last("Your age, as a whole number from 1 to 120.\n\nHow old are you?")
    await talk.send("41")
    record = await backend.record(talk)
    assert record is not None and record.data == {"age": 41, "next_year": 42}
    await talk.send("Oslo")
    talk.assert_last("41 -> 42, Oslo")


class Tags(Wizard, name="t_val_tags"):
    """A step method that changes ``self.data`` and then rejects the input."""

    class State(Enum):
        TAG = auto()
        NAME = auto()

    @step(State.TAG, prompt="A tag (or done)?")
    async def tag(self, value: str) -> Tags.State | None:
        if value == "done":
            return None
        self.data["last"] = value
        self.data.setdefault("tags", []).append(value)
        self.data.setdefault("meta", {})["count"] = len(self.data["tags"])
        if value.startswith("bad"):
            raise ValidationError(f"No tags starting with 'bad', please ({value}).")
        return self.State.TAG  # loop

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value
        if value == "root":
            raise ValidationError("Not that name.")

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['name']}: {', '.join(self.data['tags'])}")


def tags(dp: Dispatcher, storage: object) -> None:
    Tags.setup(dp, entry=Command("tags"), storage=storage)


async def test_rejected_input_is_not_stored_even_if_the_method_changed_data(
    backend: Backend,
) -> None:
    sim = backend.simulator(tags)
    talk = sim.chat()
    await talk.send("/tags")
    await talk.send("red")
    await talk.send("blue")
    good = {"last": "blue", "tags": ["red", "blue"], "meta": {"count": 2}}
    record = await backend.record(talk)
    assert record is not None and record.data == good

    await talk.send("bad-one")  # appended to a list and a nested dict, then rejected
    talk.assert_last("No tags starting with 'bad', please (bad-one).\n\nA tag (or done)?")
    record = await backend.record(talk)
    assert record is not None and record.data == good

    await talk.send("done")
    await talk.send("root")
    talk.assert_last("Not that name.\n\nYour name?")
    record = await backend.record(talk)
    assert record is not None and record.data == good
    await talk.send("Ann")
    talk.assert_last("Ann: red, blue")


class Pin(Wizard, name="t_val_pin"):
    """Gives up after two rejected inputs in a row (the default ``on_give_up``)."""

    class State(Enum):
        PIN = auto()
        CODE = auto()

    @step(State.PIN, prompt="Your PIN?", validate=v.text(regex=r"\d{4}"), max_attempts=2)
    async def pin(self, value: str) -> None:
        self.data["pin"] = value

    @step(State.CODE, prompt="Your code?", validate=v.integer(), max_attempts=2)
    async def code(self, value: int) -> None:
        self.data["code"] = value


class Quiz(Wizard, name="t_val_quiz"):
    """A class-wide ``max_attempts`` and a custom ``on_give_up``."""

    max_attempts = 3

    class State(Enum):
        ANSWER = auto()

    @step(State.ANSWER, prompt="2 + 2?", validate=v.integer())
    async def answer_step(self, value: int) -> None:
        if value != 4:
            raise ValidationError("Wrong.")

    async def on_give_up(self) -> None:
        await self.answer(f"It was 4. (tries: {self.attempts})")


def pin_and_quiz(dp: Dispatcher, storage: object) -> None:
    Pin.setup(dp, entry=Command("pin"), storage=storage)
    Quiz.setup(dp, entry=Command("quiz"), storage=storage)
    after = Router(name="after-wizards")

    @after.message()
    async def fallback(message: Message) -> None:
        await message.answer(f"(no wizard) {message.text}")

    dp.include_router(after)


async def test_max_attempts_gives_up_with_the_default_text(backend: Backend) -> None:
    sim = backend.simulator(pin_and_quiz)
    talk = sim.chat()
    await talk.send("/pin")
    await talk.send("12")
    talk.assert_last("That doesn't look right; please try again.\n\nYour PIN?")
    await talk.send("12345")
    talk.assert_last(Pin.texts.gave_up)
    assert await backend.record(talk) is None  # the wizard ended
    await talk.send("1234")
    talk.assert_last("(no wizard) 1234")


async def test_attempts_count_in_a_row_and_reset_on_the_next_step(backend: Backend) -> None:
    sim = backend.simulator(pin_and_quiz)
    talk = sim.chat()
    await talk.send("/pin")
    await talk.send("12")
    await talk.send("1234")
    talk.assert_last("Your code?")
    await talk.send("x")  # the first rejection at this step: not a give-up
    talk.assert_last("Please send a whole number.\n\nYour code?")
    record = await backend.record(talk)
    assert record is not None and record.kwargs["a"] == 1


async def test_custom_on_give_up_and_class_wide_max_attempts(backend: Backend) -> None:
    sim = backend.simulator(pin_and_quiz)
    talk = sim.chat()
    await talk.send("/quiz")
    await talk.send("3")
    await talk.send("5")
    talk.assert_last("Wrong.\n\n2 + 2?")
    await talk.send("22")
    talk.assert_last("It was 4. (tries: 3)")
    assert await backend.record(talk) is None


async def test_attempts_survive_a_restart(persistent_backend: Backend) -> None:
    sim = persistent_backend.simulator(pin_and_quiz)
    talk = sim.chat()
    await talk.send("/pin")
    await talk.send("12")
    await sim.restart()
    await talk.send("123")
    talk.assert_last(Pin.texts.gave_up)
    assert await persistent_backend.record(talk) is None
