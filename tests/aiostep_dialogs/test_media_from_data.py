"""Media from the conversation: ``@step(photo=fn)`` (``document=``, ``video=``, ``animation=``)
calls ``fn`` (sync or async, the wizard then handler data by name) each time the prompt is sent;
it returns a source, or ``None`` for a text prompt. A Path it returns is uploaded once per bot;
a wrong return is a clear error that leaves the conversation on the question the user saw;
nothing of it is stored, so a restart, a reminder or /back calls it again."""

from __future__ import annotations

import inspect
import io
import re
from enum import Enum, auto
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.methods import EditMessageText, SendDocument, SendMessage, SendPhoto
from aiogram.types import ErrorEvent, FSInputFile

from aiostep_dialogs import Finish, Wizard, step, v
from aiostep_dialogs.media import Media, MediaCall
from aiostep_dialogs.playground import run_playground

if TYPE_CHECKING:
    from conftest import Backend

ROOT = Path(__file__).resolve().parents[2]
POSTER = Path(__file__).parent / "gadgets_bot.py"  # any file on disk: nothing is uploaded


class Catalog:
    """A stand-in for a database: a new one per process; counts the lookups."""

    def __init__(self) -> None:
        self.pictures: dict[str, Any] = {
            "lamp": "https://example.com/lamp.jpg",
            "chair": "AgACAgIAAxkBAAIChair",
            "card": None,
            "poster": POSTER,
        }
        self.lookups = 0

    async def picture(self, product: str) -> Any:
        self.lookups += 1
        return self.pictures[product]


async def product_picture(wizard: Wizard, catalog: Catalog) -> Any:
    return await catalog.picture(wizard.data["product"])


class Shop(Wizard, name="t_media_call_shop"):
    class State(Enum):
        PRODUCT = auto()
        COUNT = auto()
        NOTE = auto()

    @step(State.PRODUCT, prompt="What would you like?", choices=["lamp", "chair", "card", "poster"])
    async def product(self, value: str) -> None:
        self.data["product"] = value

    @step(State.COUNT, prompt="How many?", photo=product_picture, validate=v.integer(min=1, max=9))
    async def count(self, value: int) -> None:
        self.data["count"] = value

    @step(State.NOTE, prompt="Any note?")
    async def note(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['count']} x {self.data['product']}")


catalogs: list[Catalog] = []


def shop(dp: Dispatcher, storage: object) -> None:
    catalog = Catalog()
    catalogs.append(catalog)
    dp["catalog"] = catalog
    Shop.setup(dp, entry=Command("shop"), storage=storage)


@pytest.fixture(autouse=True)
def new_process() -> None:
    """Each test starts as a new process would: nothing uploaded, no catalog yet."""
    catalogs.clear()
    for wizard in (Shop, Broken):
        for spec in wizard._steps:
            if spec.media is not None:
                spec.media.forget()


def _photos(sim: Any) -> list[Any]:
    return [call.photo for call in sim.session.calls_of(SendPhoto)]


async def test_the_picture_follows_each_users_data(backend: Backend) -> None:
    sim = backend.simulator(shop)
    ann, bea = sim.chat(), sim.chat(sim.user(first_name="Bea"))
    await ann.send("/shop")
    await bea.send("/shop")
    await ann.click("lamp")
    await bea.click("chair")
    assert _photos(sim) == ["https://example.com/lamp.jpg", "AgACAgIAAxkBAAIChair"]
    for talk in (ann, bea):
        assert talk.last_message is not None and talk.last_message.kind == "photo"
        talk.assert_last("How many?")
    await ann.send("2")
    await ann.send("none")
    ann.assert_last("2 x lamp")


async def test_an_async_callable_gets_handler_data_by_name(backend: Backend) -> None:
    sim = backend.simulator(shop)
    talk = sim.chat()
    await talk.send("/shop")
    await talk.click("chair")
    assert catalogs[-1].lookups == 1  # the Dispatcher's catalog, asked by parameter name
    assert Shop._by_state["COUNT"].media is not None
    assert isinstance(Shop._by_state["COUNT"].media, MediaCall)
    assert Shop._by_state["COUNT"].media.needs.required == ("catalog",)


async def test_none_sends_the_prompt_as_a_text_message(backend: Backend) -> None:
    sim = backend.simulator(shop)
    talk = sim.chat()
    await talk.send("/shop")
    await talk.click("card")
    assert talk.last_message is not None and talk.last_message.kind == "text"
    talk.assert_last("How many?")
    assert _photos(sim) == []
    await talk.send("0")  # rejected: the reason above the text prompt, as for any text step
    talk.assert_last("Please send a number from 1 to 9.\n\nHow many?")


async def test_a_path_returned_twice_is_uploaded_once(backend: Backend) -> None:
    sim = backend.simulator(shop)
    ann, bea = sim.chat(), sim.chat(sim.user(first_name="Bea"))
    for talk in (ann, bea):
        await talk.send("/shop")
        await talk.click("poster")
    first, second = _photos(sim)
    assert isinstance(first, FSInputFile) and first.path == POSTER
    uploaded = ann.last_message
    assert uploaded is not None and uploaded.message.photo is not None
    assert second == uploaded.message.photo[-1].file_id  # what Telegram returned for it
    media = Shop._by_state["COUNT"].media
    assert isinstance(media, MediaCall) and list(media._paths) == [POSTER]  # one per path


async def test_a_restart_calls_the_callable_again_and_stores_nothing_of_it(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(shop)
    talk = sim.chat()
    await talk.send("/shop")
    await talk.click("lamp")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {"product": "lamp"}
    assert "lamp.jpg" not in repr(record)
    await sim.restart()  # a new process: a new catalog, with a new picture
    catalogs[-1].pictures["lamp"] = "https://example.com/lamp-2.jpg"
    await talk.send("0")  # rejected: the prompt is sent again
    assert _photos(sim)[-1] == "https://example.com/lamp-2.jpg"
    assert catalogs[-1].lookups == 1
    talk.assert_last("Please send a number from 1 to 9.\n\nHow many?")
    await talk.send("3")
    await talk.send("-")
    talk.assert_last("3 x lamp")


async def test_back_calls_the_callable_again(backend: Backend) -> None:
    sim = backend.simulator(shop)
    talk = sim.chat()
    await talk.send("/shop")
    await talk.click("lamp")
    await talk.send("2")
    catalogs[-1].pictures["lamp"] = "AgACnewLamp"
    await talk.send("/back")
    assert _photos(sim) == ["https://example.com/lamp.jpg", "AgACnewLamp"]
    assert catalogs[-1].lookups == 2


class Reminding(Wizard, name="t_media_call_reminding"):
    remind_after = 10

    class State(Enum):
        ONE = auto()

    @step(State.ONE, prompt="Still want it?", document=lambda self: self.data.get("doc", "AgACd1"))
    async def one(self, value: str) -> None:
        pass


async def test_a_reminder_calls_the_callable_again(backend: Backend) -> None:
    sim = backend.simulator(
        lambda dp, storage: Reminding.setup(dp, entry=Command("go"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/go")
    await clock.advance(10)
    sent = sim.session.calls_of(SendDocument)
    assert [call.document for call in sent] == ["AgACd1", "AgACd1"]
    assert sent[-1].caption is not None and sent[-1].caption.endswith("Still want it?")


RETURNED: list[Any] = ["AgACgood"]


def picture_of_the_day(wizard: Wizard) -> Any:
    return RETURNED[0]


class Broken(Wizard, name="t_media_call_broken"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="Age, {name}?", photo=picture_of_the_day, validate=v.integer())
    async def age(self, value: int) -> None:
        self.data["age"] = value


errors: list[BaseException] = []


def broken(dp: Dispatcher, storage: object) -> None:
    Broken.setup(dp, entry=Command("go"), storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(event.exception)
        return True


@pytest.mark.parametrize(
    ("bad", "error", "says"),
    [
        (42, TypeError, "returned 42"),
        ("menu.jpg", TypeError, r"returned 'menu.jpg'.*pass a pathlib.Path"),
        (Path("no/such/picture.jpg"), FileNotFoundError, r"returned PosixPath.*no such file"),
    ],
    ids=["int", "path-like str", "missing file"],
)
async def test_a_bad_return_names_the_step_and_keeps_the_conversation(
    backend: Backend, bad: Any, error: type[Exception], says: str
) -> None:
    errors.clear()
    RETURNED[0] = bad
    try:
        sim = backend.simulator(broken)
        talk = sim.chat()
        await talk.send("/go")
        await talk.send("Ann")
        (raised,) = errors
        assert type(raised) is error
        assert "Broken.age" in str(raised) and "photo= callable picture_of_the_day returned" in str(
            raised
        )
        assert re.search(says, str(raised)), str(raised)
        talk.assert_last("Name?")  # nothing half-sent
        record = await backend.record(talk)
        assert record is not None and record.current_state == "NAME"  # the question they saw
        assert record.data == {}

        RETURNED[0] = "AgACgood"
        await talk.send("Bea")
        talk.assert_last("Age, Bea?")
        RETURNED[0] = bad  # breaks while the user is at the step: its re-sent prompt fails
        await talk.send("old")
        assert len(errors) == 2 and type(errors[1]) is error
        record = await backend.record(talk)
        assert record is not None and record.current_state == "AGE"  # still at that step
        assert record.data == {"name": "Bea"}
        RETURNED[0] = "AgACgood"
        await talk.send("30")
        assert _photos(sim) == ["AgACgood"]
    finally:
        RETURNED[0] = "AgACgood"


def test_a_positional_only_parameter_is_refused_at_class_definition() -> None:
    def picture(wizard: Wizard, catalog: Catalog, /) -> str:
        return "AgAC"

    with pytest.raises(TypeError, match=r"photo= callable .*'catalog' is positional-only"):

        class Positional(Wizard, name="t_media_call_positional"):
            class State(Enum):
                A = auto()

            @step(State.A, prompt="?", photo=picture)
            async def a(self, value: str) -> None: ...


async def test_whether_a_source_is_a_callable_is_decided_at_class_definition(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed source is a plain `Media` (no call per prompt); a callable's signature is read
    once, never while an update is handled."""

    class Fixed(Wizard, name="t_media_call_fixed"):
        class State(Enum):
            ONE = auto()

        @step(State.ONE, prompt="?", photo="AgACfixed")
        async def one(self, value: str) -> None: ...

    assert type(Fixed._by_state["ONE"].media) is Media

    async def no_resolve(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a fixed source went through MediaCall.resolve")

    def no_inspect(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a signature was inspected while handling an update")

    def both(dp: Dispatcher, storage: object) -> None:
        shop(dp, storage)
        Fixed.setup(dp, entry=Command("fixed"), storage=storage)

    sim = backend.simulator(both)
    talk = sim.chat()
    import aiostep_dialogs.injection

    monkeypatch.setattr(aiostep_dialogs.injection.inspect, "signature", no_inspect)
    try:
        await talk.send("/shop")
        await talk.click("lamp")
        await talk.send("/cancel")
        monkeypatch.setattr(MediaCall, "resolve", no_resolve)
        await talk.send("/fixed")
    finally:
        monkeypatch.setattr(aiostep_dialogs.injection.inspect, "signature", inspect.signature)
    assert _photos(sim) == ["https://example.com/lamp.jpg", "AgACfixed"]


class EditShop(Wizard, name="t_media_call_edit"):
    ui = "edit"

    class State(Enum):
        PRODUCT = auto()
        COUNT = auto()

    @step(State.PRODUCT, prompt="What would you like?", choices=["lamp", "card"])
    async def product(self, value: str) -> None:
        self.data["product"] = value

    @step(State.COUNT, prompt="How many?", photo=product_picture, choices=["1", "2"])
    async def count(self, value: str) -> None:
        self.data["count"] = value


async def test_one_message_mode_sends_a_media_prompt_anew_and_edits_a_text_one(
    backend: Backend,
) -> None:
    def setup(dp: Dispatcher, storage: object) -> None:
        dp["catalog"] = Catalog()
        EditShop.setup(dp, entry=Command("edit"), storage=storage)

    sim = backend.simulator(setup)
    lamp, card = sim.chat(), sim.chat(sim.user(first_name="Bea"))
    await lamp.send("/edit")
    await lamp.click("lamp")
    assert lamp.last_message is not None and lamp.last_message.kind == "photo"
    assert sim.session.calls_of(EditMessageText) == []  # a medium is a new message
    await card.send("/edit")
    before = len(sim.session.calls_of(SendMessage))
    await card.click("card")  # no picture: the text prompt replaces the pressed message
    assert len(sim.session.calls_of(EditMessageText)) == 1
    assert len(sim.session.calls_of(SendMessage)) == before
    card.assert_last("How many?", buttons=[["1", "2"]])


def test_the_graph_draws_a_wizard_with_a_media_callable() -> None:
    drawn = Shop.to_mermaid()
    assert "COUNT" in drawn and "How many?" in drawn


def test_the_playground_shows_a_media_callables_prompt_as_a_fixed_one_is() -> None:
    out = io.StringIO()
    status = run_playground(
        str(ROOT / "docs/snippets/media_from_data.py"),
        storage="memory",
        stdin=io.StringIO("/shop\n1\n2\n/shop\n3\n"),
        stdout=out,
    )
    assert status == 0
    text = out.getvalue()
    assert "bot> [photo] How many?" in text  # the lamp's picture, marked like a fixed photo
    assert "bot> Ordered: 2 x lamp." in text
    assert text.rstrip().endswith("bot> How many?")  # the gift card has none: text
