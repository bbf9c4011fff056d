"""The contenders: the dialog of :mod:`scenario`, written the fastest idiomatic way for each
framework (and aiogram's FSM once more as its docs write it).

aiogram 3.31 calls a handler or filter through ``asyncio.to_thread`` unless it is a coroutine
function, an awaitable, or an ``aiogram.filters.Filter`` (``CallableObject.call`` and
``FilterObject.__post_init__`` in ``aiogram/dispatcher/event/handler.py``). A magic filter
(``F.text``) is stored as its *sync* ``resolve`` method, and a bare ``State`` used as a filter
(``router.message(Form.name)``) is called through its sync ``State.__call__``: each costs a
thread hop per check. ``StateFilter(...)`` and ``Command(...)`` are ``Filter`` subclasses with
an async ``__call__``: no hop. So the fast peers use only those, and check the text inside the
async handler.

Each builder takes a storage kind and returns a :class:`Built`, or ``None`` when the contender
cannot run there (aiogram has no file storage; aiogram_dialog may not be installed).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path
from typing import Any

from aiogram import Dispatcher, F, Router
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage as AiogramStorage
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Message
from scenario import (
    AGE_ERROR,
    AGE_PROMPT,
    AGE_REPROMPT,
    CONFIRM_ERROR,
    EXPECTED,
    NAME_PROMPT,
    TEXTS,
    confirm_prompt,
    parse_age,
    welcome,
)

import aiostep
from aiostep.storage import FileStateStorage, MemoryStateStorage, as_async
from aiostep_dialogs import Wizard, step, v


@dataclass
class Env:
    """Where the storages live: the benchmark's own redis-server and a scratch directory."""

    redis_url: str | None
    tmpdir: Path


@dataclass
class Built:
    """A Dispatcher ready for ``feed_update``, and how to release its storage."""

    dp: Dispatcher
    close: Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


# -- aiogram storages -------------------------------------------------------------------------
def _aiogram_storage(kind: str, env: Env, *, destiny: bool = False) -> AiogramStorage | None:
    if kind == "memory":
        return MemoryStorage()
    if kind == "redis" and env.redis_url is not None:
        from aiogram.fsm.storage.redis import RedisStorage

        # Scenes keep their history, and aiogram_dialog its stacks, under other "destinies":
        # both need a key builder that puts the destiny into the key.
        builder = DefaultKeyBuilder(with_destiny=True) if destiny else DefaultKeyBuilder()
        return RedisStorage.from_url(env.redis_url, key_builder=builder)
    return None  # aiogram ships no file storage


def _aiogram_dp(kind: str, env: Env, *, destiny: bool = False) -> Built | None:
    storage = _aiogram_storage(kind, env, destiny=destiny)
    if storage is None:
        return None
    return Built(Dispatcher(storage=storage), storage.close)


# -- floor ------------------------------------------------------------------------------------
def build_echo(kind: str, env: Env) -> Built | None:
    """One async handler answering every message, no state: what any bot pays per update."""
    built = _aiogram_dp(kind, env)
    if built is None:
        return None

    @built.dp.message()
    async def echo(message: Message) -> None:
        await message.answer("ok")

    return built


# -- aiogram FSM ------------------------------------------------------------------------------
class Form(StatesGroup):
    name = State()
    age = State()
    confirm = State()


def build_fsm_fast(kind: str, env: Env) -> Built | None:
    """StateFilter + async handlers only; the text is checked inside the handler."""
    built = _aiogram_dp(kind, env)
    if built is None:
        return None
    dp = built.dp

    @dp.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.name)
        await message.answer(NAME_PROMPT)

    @dp.message(StateFilter(Form.name))
    async def name(message: Message, state: FSMContext) -> None:
        if not message.text:
            await message.answer(NAME_PROMPT)
            return
        await state.set_data({"name": message.text})  # the first answer: no read needed
        await state.set_state(Form.age)
        await message.answer(AGE_PROMPT)

    @dp.message(StateFilter(Form.age))
    async def age(message: Message, state: FSMContext) -> None:
        value = parse_age(message.text)
        if value is None:
            await message.answer(AGE_REPROMPT)
            return
        data = await state.update_data(age=value)
        await state.set_state(Form.confirm)
        await message.answer(confirm_prompt(data["name"], value))

    @dp.message(StateFilter(Form.confirm))
    async def confirm(message: Message, state: FSMContext) -> None:
        answer = (message.text or "").strip().casefold()
        if answer == "yes":
            data = await state.get_data()
            await state.clear()
            await message.answer(welcome(data["name"]))
        elif answer == "no":
            await state.set_state(Form.name)
            await message.answer(NAME_PROMPT)
        else:
            await message.answer(CONFIRM_ERROR)

    return built


def build_fsm_docs(kind: str, env: Env) -> Built | None:
    """As aiogram's examples/finite_state_machine.py writes it: a Router, bare states as
    filters and magic filters (F.text...), each a sync call run in a thread by aiogram."""
    built = _aiogram_dp(kind, env)
    if built is None:
        return None
    router = Router()

    @router.message(Command("start"))
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.name)
        await message.answer(NAME_PROMPT)

    @router.message(Form.name, F.text)
    async def name(message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text)
        await state.set_state(Form.age)
        await message.answer(AGE_PROMPT)

    @router.message(Form.age, F.text.regexp(r"^\d{1,3}$"))
    async def age(message: Message, state: FSMContext) -> None:
        value = parse_age(message.text)
        if value is None:
            await message.answer(AGE_REPROMPT)
            return
        data = await state.update_data(age=value)
        await state.set_state(Form.confirm)
        await message.answer(confirm_prompt(data["name"], value))

    @router.message(Form.age)
    async def bad_age(message: Message) -> None:
        await message.answer(AGE_REPROMPT)

    @router.message(Form.confirm, F.text.casefold() == "yes")
    async def confirmed(message: Message, state: FSMContext) -> None:
        data = await state.get_data()
        await state.clear()
        await message.answer(welcome(data["name"]))

    @router.message(Form.confirm, F.text.casefold() == "no")
    async def start_over(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.name)
        await message.answer(NAME_PROMPT)

    @router.message(Form.confirm)
    async def unclear(message: Message) -> None:
        await message.answer(CONFIRM_ERROR)

    built.dp.include_router(router)
    return built


# -- aiogram Scenes ---------------------------------------------------------------------------
def _scenes() -> tuple[type[Any], ...]:
    from aiogram.fsm.scene import Scene, on

    class NameScene(Scene, state="bench_name", reset_data_on_enter=True):
        @on.message.enter()
        async def ask(self, message: Message) -> None:
            await message.answer(NAME_PROMPT)

        @on.message()
        async def got(self, message: Message) -> None:
            if not message.text:
                await message.answer(NAME_PROMPT)
                return
            await self.wizard.update_data(name=message.text)
            await self.wizard.goto(AgeScene)

    class AgeScene(Scene, state="bench_age"):
        @on.message.enter()
        async def ask(self, message: Message) -> None:
            await message.answer(AGE_PROMPT)

        @on.message()
        async def got(self, message: Message) -> None:
            value = parse_age(message.text)
            if value is None:
                await message.answer(AGE_REPROMPT)
                return
            data = await self.wizard.update_data(age=value)
            # goto's kwargs reach the next scene's enter handler: no read there
            await self.wizard.goto(ConfirmScene, name=data["name"], age=value)

    class ConfirmScene(Scene, state="bench_confirm"):
        @on.message.enter()
        async def ask(self, message: Message, name: str, age: int) -> None:
            await message.answer(confirm_prompt(name, age))

        @on.message()
        async def got(self, message: Message) -> None:
            answer = (message.text or "").strip().casefold()
            if answer == "yes":
                data = await self.wizard.get_data()
                await message.answer(welcome(data["name"]))
                await self.wizard.exit()
            elif answer == "no":
                await self.wizard.goto(NameScene)
            else:
                await message.answer(CONFIRM_ERROR)

    return NameScene, AgeScene, ConfirmScene


_SCENES: tuple[type[Any], ...] = ()


def build_scenes(kind: str, env: Env) -> Built | None:
    """One Scene per question: ``on.message.enter`` asks, ``on.message()`` (no magic filter)
    takes the answer and ``wizard.goto``-es on; ``Scene.as_handler()`` behind
    ``CommandStart()`` is the entry."""
    from aiogram.fsm.scene import SceneRegistry

    global _SCENES
    if not _SCENES:
        _SCENES = _scenes()
    built = _aiogram_dp(kind, env, destiny=True)
    if built is None:
        return None
    built.dp.message.register(_SCENES[0].as_handler(), CommandStart())
    SceneRegistry(built.dp).add(*_SCENES)
    return built


# -- aiogram_dialog ---------------------------------------------------------------------------
def build_aiogram_dialog(kind: str, env: Env) -> Built | None:
    """TextInput widgets (no filter: no thread hop), ``type_factory`` for the age, the error
    shown in the re-rendered window (``when=`` over dialog_data), ``manager.next()``."""
    try:
        from aiogram_dialog import Dialog, DialogManager, StartMode, Window, setup_dialogs
        from aiogram_dialog.widgets.input import ManagedTextInput, TextInput
        from aiogram_dialog.widgets.text import Const, Format, Multi
    except ImportError:
        return None
    built = _aiogram_dp(kind, env, destiny=True)
    if built is None:
        return None

    class SG(StatesGroup):
        name = State()
        age = State()
        confirm = State()

    def age_type(text: str) -> int:
        value = parse_age(text)
        if value is None:
            raise ValueError(text)
        return value

    async def on_name(
        message: Message, _: ManagedTextInput[str], manager: DialogManager, value: str
    ) -> None:
        manager.dialog_data["name"] = value
        await manager.next()

    async def on_age(
        message: Message, _: ManagedTextInput[int], manager: DialogManager, value: int
    ) -> None:
        manager.dialog_data.pop("error", None)
        manager.dialog_data["age"] = value
        await manager.next()

    async def on_bad_age(
        message: Message, _: ManagedTextInput[int], manager: DialogManager, error: ValueError
    ) -> None:
        manager.dialog_data["error"] = True  # the window is shown again, with the error

    async def on_confirm(
        message: Message, _: ManagedTextInput[str], manager: DialogManager, value: str
    ) -> None:
        answer = value.strip().casefold()
        if answer == "yes":
            name = manager.dialog_data["name"]
            await manager.done()
            await message.answer(welcome(name))
        elif answer == "no":
            await manager.switch_to(SG.name)

    dialog = Dialog(
        Window(Const(NAME_PROMPT), TextInput("name", on_success=on_name), state=SG.name),
        Window(
            Multi(
                Const(AGE_ERROR, when=F["dialog_data"]["error"]),
                Const(AGE_PROMPT),
                sep="\n\n",
            ),
            TextInput("age", type_factory=age_type, on_success=on_age, on_error=on_bad_age),
            state=SG.age,
        ),
        Window(
            Format("{dialog_data[name]}, {dialog_data[age]}. Correct?"),
            TextInput("confirm", on_success=on_confirm),
            state=SG.confirm,
        ),
    )
    dp = built.dp
    dp.include_router(dialog)

    @dp.message(CommandStart())
    async def start(message: Message, dialog_manager: DialogManager) -> None:
        await dialog_manager.start(SG.name, mode=StartMode.RESET_STACK)

    setup_dialogs(dp)
    return built


# -- aiostep storages -------------------------------------------------------------------------
def _aiostep_storage(kind: str, env: Env) -> Any:
    if kind == "memory":
        return MemoryStateStorage()
    if kind == "file":
        return FileStateStorage(env.tmpdir / f"{uuid.uuid4().hex}.jsonl")
    if kind == "redis" and env.redis_url is not None:
        from aiostep.storage.redis import RedisStateStorage

        return RedisStateStorage(env.redis_url)
    raise ValueError(kind)


# -- aiostep register_next_step ---------------------------------------------------------------
@aiostep.persisted_step("bench.name")
async def _ns_name(message: Message) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    if not message.text:
        await aiostep.register_next_step(user, _ns_name)
        await message.answer(NAME_PROMPT)
        return
    await aiostep.register_next_step(user, _ns_age, kwargs={"name": message.text})
    await message.answer(AGE_PROMPT)


@aiostep.persisted_step("bench.age")
async def _ns_age(message: Message, name: str) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    value = parse_age(message.text)
    if value is None:
        await aiostep.register_next_step(user, _ns_age, kwargs={"name": name})
        await message.answer(AGE_REPROMPT)
        return
    await aiostep.register_next_step(user, _ns_confirm, kwargs={"name": name, "age": value})
    await message.answer(confirm_prompt(name, value))


@aiostep.persisted_step("bench.confirm")
async def _ns_confirm(message: Message, name: str, age: int) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    answer = (message.text or "").strip().casefold()
    if answer == "yes":
        await message.answer(welcome(name))  # no next step: the conversation ends
    elif answer == "no":
        await aiostep.register_next_step(user, _ns_name)
        await message.answer(NAME_PROMPT)
    else:
        await aiostep.register_next_step(user, _ns_confirm, kwargs={"name": name, "age": age})
        await message.answer(CONFIRM_ERROR)


def build_next_step(kind: str, env: Env) -> Built:
    """``aiostep.setup(dp)`` (+ a storage), a ``CommandStart()`` handler, and three
    ``@aiostep.persisted_step`` functions that each register the next one. ``in-process`` holds the
    callables in this process; with a storage the step is stored by name with JSON kwargs."""
    dp = Dispatcher()
    storage = None if kind == "in-process" else _aiostep_storage(kind, env)
    aiostep.setup(dp, storage=storage)

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        user = message.from_user.id if message.from_user else message.chat.id
        await aiostep.register_next_step(user, _ns_name)
        await message.answer(NAME_PROMPT)

    return Built(dp, as_async(storage).close if storage is not None else _nothing)


# -- aiostep_dialogs Wizard -------------------------------------------------------------------
class BenchSignup(Wizard, name="bench-signup"):
    """The dialog as a Wizard (the README's, with a typed yes/no instead of buttons, as the
    other contenders have no keyboards)."""

    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt=NAME_PROMPT)
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt=AGE_PROMPT, validate=v.integer(min=1, max=120), error=AGE_ERROR)
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(State.CONFIRM, prompt="{name}, {age}. Correct?", validate=v.choice(("yes", "no")))
    async def confirm(self, value: str) -> Any:
        return self.State.NAME if value == "no" else self.finish()

    async def on_finish(self) -> None:
        await self.answer(welcome(self.data["name"]))


def build_wizard(kind: str, env: Env) -> Built:
    """``BenchSignup.setup(dp, entry=CommandStart(), storage=...)``."""
    dp = Dispatcher()
    storage = _aiostep_storage(kind, env)
    BenchSignup.setup(dp, entry=CommandStart(), storage=storage)
    return Built(dp, as_async(storage).close)


@dataclass(frozen=True)
class Contender:
    """A row group of the report."""

    name: str
    build: Callable[[str, Env], Built | None]
    storages: tuple[str, ...]
    #: what one user is sent over the whole dialog (the check that it ran as specified)
    expected: Mapping[str, int] = field(default_factory=lambda: dict(EXPECTED))


ALL_STORAGES = ("memory", "file", "redis")

CONTENDERS: tuple[Contender, ...] = (
    Contender("floor: aiogram echo handler", build_echo, ("memory",), {"ok": len(TEXTS)}),
    Contender("aiogram FSM (fastest)", build_fsm_fast, ALL_STORAGES),
    Contender("aiogram FSM (as the docs write it)", build_fsm_docs, ALL_STORAGES),
    Contender("aiogram Scenes", build_scenes, ALL_STORAGES),
    Contender("aiogram_dialog", build_aiogram_dialog, ALL_STORAGES),
    Contender("aiostep register_next_step", build_next_step, ("in-process", *ALL_STORAGES)),
    Contender("aiostep_dialogs Wizard", build_wizard, ALL_STORAGES),
)
