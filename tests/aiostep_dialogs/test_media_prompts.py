"""Media prompts: a step with ``photo=`` (``document=``, ``video=``, ``animation=``) sends its
prompt as the caption of that medium, from a file_id, a URL or a file on disk; a disk file is
uploaded once per bot and sent by the file_id Telegram returned after that; captions are
escaped like texts and checked for length at class definition; a rejection re-sends the medium
with the reason first."""

from __future__ import annotations

from enum import Enum, auto
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.methods import SendAnimation, SendDocument, SendPhoto, SendVideo, TelegramMethod
from aiogram.types import BufferedInputFile, FSInputFile
from aiogram.utils.formatting import Bold, Text

from aiostep_dialogs import Finish, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend

HERE = Path(__file__).parent
PICTURE = HERE / "gadgets_bot.py"  # any file on disk will do: nothing is really uploaded


class Menu(Wizard, name="t_media_menu"):
    """A photo prompt by file_id, then a count, then a document by URL."""

    parse_mode = "HTML"

    class State(Enum):
        DISH = auto()
        COUNT = auto()
        NOTE = auto()

    @step(
        State.DISH,
        prompt="<b>Today's menu</b>: pick one",
        photo="AgACAgIAAxkBAAIB",
        choices={"soup": "Soup", "pie": "Pie"},
    )
    async def dish(self, value: str) -> None:
        self.data["dish"] = value

    @step(
        State.COUNT,
        prompt="How many {dish}s?",
        photo=PICTURE,
        validate=v.integer(min=1, max=9),
    )
    async def count(self, value: int) -> None:
        self.data["count"] = value

    @step(
        State.NOTE,
        prompt=Text(Bold("Terms"), " attached. Any note?"),
        document="https://example.com/terms.pdf",
    )
    async def note(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['count']} x {self.data['dish']}: {self.result}")


def menu(dp: Dispatcher, storage: object) -> None:
    Menu.setup(dp, entry=Command("menu"), storage=storage)


@pytest.fixture(autouse=True)
def fresh_upload_cache() -> None:
    """Each test starts as a new process would: nothing uploaded yet."""
    for spec in Menu._steps:
        if spec.media is not None:
            spec.media.forget()


def _sent(calls: list[TelegramMethod[Any]]) -> list[tuple[str, Any]]:
    return [
        (call.__api_method__, getattr(call, call.__api_method__[4:].lower(), None))
        for call in calls
        if call.__api_method__ in ("sendPhoto", "sendDocument", "sendVideo", "sendAnimation")
    ]


async def test_prompt_is_the_caption_of_a_photo_by_file_id(backend: Backend) -> None:
    sim = backend.simulator(menu)
    talk = sim.chat()
    await talk.send("/menu")
    record = talk.last_message
    assert record is not None and record.kind == "photo"
    assert record.text == "Today's menu: pick one"  # the caption, its HTML parsed
    assert record.message.caption_entities is not None
    assert record.buttons == [["Soup", "Pie"]]
    (call,) = sim.session.calls_of(SendPhoto)
    assert call.photo == "AgACAgIAAxkBAAIB"
    await talk.click("Pie")
    assert talk.last == "How many pies?"


async def test_a_disk_file_is_uploaded_once_then_sent_by_its_file_id(backend: Backend) -> None:
    sim = backend.simulator(menu)
    alice, bob = sim.chat(), sim.chat(sim.user(first_name="Bob"))
    for talk in (alice, bob):
        await talk.send("/menu")
        await talk.click("Soup")
    first, second = [
        call.photo for call in sim.session.calls_of(SendPhoto) if call.photo != "AgACAgIAAxkBAAIB"
    ]
    assert isinstance(first, FSInputFile) and first.path == PICTURE
    uploaded = alice.last_message
    assert uploaded is not None and uploaded.message.photo is not None
    assert second == uploaded.message.photo[-1].file_id  # what Telegram returned for it


async def test_a_refused_remembered_file_id_is_uploaded_again(backend: Backend) -> None:
    sim = backend.simulator(menu)
    talk = sim.chat()
    await talk.send("/menu")
    await talk.click("Soup")

    def refuse_once(method: TelegramMethod[Any]) -> Any:
        sim.session.respond("sendPhoto", None)
        raise TelegramBadRequest(
            method=method, message="Bad Request: wrong file identifier/HTTP URL specified"
        )

    sim.session.respond("sendPhoto", refuse_once)
    await talk.send("0")  # rejected: the prompt goes again
    photos = [call.photo for call in sim.session.calls_of(SendPhoto)]
    assert isinstance(photos[1], FSInputFile)
    assert isinstance(photos[2], str)  # the remembered id, refused
    assert isinstance(photos[3], FSInputFile)  # uploaded again
    assert talk.last == "Please send a number from 1 to 9.\n\nHow many soups?"


async def test_rejection_resends_the_medium_with_the_reason_first(backend: Backend) -> None:
    sim = backend.simulator(menu)
    talk = sim.chat()
    await talk.send("/menu")
    await talk.click("Soup")
    await talk.send("many")
    record = talk.last_message
    assert record is not None and record.kind == "photo"
    assert record.text == "Please send a whole number.\n\nHow many soups?"


async def test_a_formatting_node_caption_keeps_its_entities_and_a_url_goes_as_is(
    backend: Backend,
) -> None:
    sim = backend.simulator(menu)
    talk = sim.chat()
    await talk.send("/menu")
    await talk.click("Soup")
    await talk.send("2")
    record = talk.last_message
    assert record is not None and record.kind == "document"
    assert record.text == "Terms attached. Any note?"
    assert record.message.caption_entities is not None
    assert record.message.caption_entities[0].type == "bold"
    (call,) = sim.session.calls_of(SendDocument)
    assert call.document == "https://example.com/terms.pdf"  # a URL goes as is
    await talk.send("no onions")
    assert talk.last == "2 x soup: no onions"


class Shop(Wizard, name="t_media_escape"):
    """User data formatted into an HTML caption."""

    parse_mode = "HTML"

    class State(Enum):
        NAME = auto()
        OK = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.OK, prompt="<i>{name}</i>, here is your card", photo="AgACcard", choices=["ok"])
    async def ok(self, value: str) -> None:
        pass


async def test_user_data_in_a_caption_is_escaped(backend: Backend) -> None:
    sim = backend.simulator(
        lambda dp, storage: Shop.setup(dp, entry=Command("shop"), storage=storage)
    )
    talk = sim.chat()
    await talk.send("/shop")
    await talk.send("Ann <b")
    assert talk.last == "Ann <b, here is your card"


@pytest.mark.parametrize(
    ("kind", "method"),
    [("document", SendDocument), ("video", SendVideo), ("animation", SendAnimation)],
)
async def test_every_media_kind_sends_its_own_method(
    backend: Backend, kind: str, method: type[TelegramMethod[Any]]
) -> None:
    class Clip(Wizard, name=f"t_media_kind_{kind}"):
        class State(Enum):
            ANY = auto()

        @step(State.ANY, prompt="Like it?", **{kind: BufferedInputFile(b"x", "clip.bin")})
        async def any_step(self, value: str) -> None:
            pass

    sim = backend.simulator(
        lambda dp, storage: Clip.setup(dp, entry=Command("go"), storage=storage)
    )
    talk = sim.chat()
    await talk.send("/go")
    assert talk.last_message is not None and talk.last_message.kind == kind
    assert talk.last == "Like it?"
    assert len(sim.session.calls_of(method)) == 1


async def test_media_prompt_answered_after_a_restart(persistent_backend: Backend) -> None:
    sim = persistent_backend.simulator(menu)
    talk = sim.chat()
    await talk.send("/menu")
    await talk.click("Pie")
    await sim.restart()
    await talk.send("3")
    assert talk.last == "Terms attached. Any note?"
    await sim.restart()
    await talk.send("none")
    assert talk.last == "3 x pie: none"


def _declare(prompt: Any, **media: Any) -> None:
    class Long(Wizard, name="t_media_long"):
        class State(Enum):
            ONE = auto()

        @step(State.ONE, prompt=prompt, **media)
        async def one(self, value: str) -> None:
            pass


def test_a_static_caption_over_1024_characters_fails_at_definition() -> None:
    with pytest.raises(ValueError, match="it is 1100 characters long; Telegram takes at most 1024"):
        _declare("x" * 1100, photo="AgAC")
    with pytest.raises(ValueError, match="1030 characters"):
        _declare(Text(Bold("y" * 1030)), video="AgAC")
    # markup and placeholders do not count: this may well fit
    _declare("<b>" + "z" * 1000 + "</b> {name}", photo="AgAC")
    _declare("x" * 1100)  # a text prompt may be longer


def test_media_sources_are_checked_at_definition(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="there is no such file"):
        _declare("?", photo=tmp_path / "missing.jpg")
    with pytest.raises(TypeError, match=r"pass a pathlib.Path: photo=Path\('menu.jpg'\)"):
        _declare("?", photo="menu.jpg")
    with pytest.raises(TypeError, match="one medium per prompt; got photo and video"):
        _declare("?", photo="AgAC", video="AgAD")
    with pytest.raises(TypeError, match="got bytes"):
        _declare("?", document=b"data")


class Poster(Wizard, name="t_media_poster"):
    """A caption close to the limit: a reason does not fit above it."""

    class State(Enum):
        AGE = auto()

    @step(State.AGE, prompt="a" * 1000, photo="AgACposter", validate=v.integer())
    async def age(self, value: int) -> None:
        pass


async def test_a_reason_that_would_overflow_the_caption_goes_first_on_its_own(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Poster.setup(dp, entry=Command("go"), storage=storage)
    )
    talk = sim.chat()
    await talk.send("/go")
    await talk.send("old enough")
    reason, again = talk.messages[-2:]
    assert (reason.kind, reason.text) == ("text", "Please send a whole number.")
    assert (again.kind, again.text) == ("photo", "a" * 1000)
