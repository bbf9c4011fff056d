"""The seed README's python snippets work as written, and the bots they define behave as told.

``seed_readme_snippets.md`` is a verbatim copy of the original API README. Each ```python block
runs unchanged inside an ``async def`` (so its top-level ``await`` works), with only what it
takes from its surroundings provided (``dp``, ``filters``, ``Message``, the ``storage`` of the
snippet before). The Redis snippet's ``Redis()`` is pointed at the test server; the File snippet
runs in an empty temporary working directory (the storage creates ``path/to/`` itself).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from aiogram import filters
from aiogram.types import Message

from aiostep.pending import root_store
from aiostep.testing import BotSimulator

README = Path(__file__).with_name("seed_readme_snippets.md")
BLOCKS: list[str] = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def block(marker: str) -> str:
    """The one python block of the README that contains ``marker``."""
    found = [code for code in BLOCKS if marker in code]
    assert len(found) == 1, f"expected one python block containing {marker!r}, found {len(found)}"
    return found[0]


MIDDLEWARE = block("dp.message.outer_middleware(Listen())")
ECHO = block('filters.Command("echo")')
STEPS = block("filters.CommandStart()")
REDIS = block("RedisStateStorage(redis_instance)")
MEMORY = block("MemoryStateStorage(TTLCache(1000, 86400))")
FILE = block('FileStateStorage("path/to/file.json")')
DATA = block("await storage.set_data(")


async def run(code: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run a snippet as the body of an async function; its names join ``namespace``."""
    body = textwrap.indent(code, "    ")
    source = f"async def __snippet__():\n{body}\n    return locals()\n"
    exec(compile(source, str(README), "exec"), namespace)
    defined = await namespace.pop("__snippet__")()
    namespace.update(defined)
    return namespace


def test_every_python_block_of_the_readme_is_run_by_a_test() -> None:
    covered = [MIDDLEWARE, ECHO, STEPS, REDIS, MEMORY, FILE, DATA]
    assert len(BLOCKS) == 7
    assert sorted(covered) == sorted(BLOCKS)


async def bot_from_readme() -> dict[str, Any]:
    """The bot the first three snippets build: Listen on dp.message, /echo and /start."""
    namespace: dict[str, Any] = {"filters": filters, "Message": Message}
    for code in (MIDDLEWARE, ECHO, STEPS):
        await run(code, namespace)
    return namespace


async def test_echo_snippet_replies_with_what_the_user_typed() -> None:
    namespace = await bot_from_readme()
    async with BotSimulator(namespace["dp"]) as sim:
        talk = sim.chat()
        await talk.send("/echo")
        talk.assert_last("Please type something:")
        await talk.send("hello there")
        talk.assert_last("You typed: hello there")
        replied = talk.last_message
        assert replied is not None and replied.message.reply_to_message is not None
        assert replied.message.reply_to_message.text == "/echo"


async def test_echo_snippet_says_too_long_after_its_25_second_timeout() -> None:
    namespace = await bot_from_readme()
    async with BotSimulator(namespace["dp"]) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/echo")
        await clock.advance(24.5)
        talk.assert_last("Please type something:")
        await clock.advance(0.5)
        talk.assert_last("You took too long to answer.")
        # the wait is over: a late answer is not echoed
        await talk.send("late")
        talk.assert_last("You took too long to answer.")


async def test_start_snippet_asks_name_then_age_and_confirms() -> None:
    namespace = await bot_from_readme()
    async with BotSimulator(namespace["dp"]) as sim:
        talk = sim.chat()
        await talk.send("/start")
        talk.assert_last("What is your name?")
        await talk.send("Alice")
        talk.assert_last("How old are you?")
        await talk.send("30")
        talk.assert_last("Your name is Alice and you're 30 years old. Thanks!")
        # the flow is over: nothing is left waiting for this user
        assert len(root_store().cache) == 0  # type: ignore[attr-defined]
        await talk.send("31")
        talk.assert_last("Your name is Alice and you're 30 years old. Thanks!")


async def test_start_snippet_asks_again_after_an_invalid_age() -> None:
    namespace = await bot_from_readme()
    async with BotSimulator(namespace["dp"]) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("Bob")
        await talk.send("thirty")
        talk.assert_last("Please provide a valid age!")
        await talk.send("old")
        talk.assert_last("Please provide a valid age!")
        await talk.send("42")
        talk.assert_last("Your name is Bob and you're 42 years old. Thanks!")


async def test_start_snippet_keeps_two_users_apart() -> None:
    namespace = await bot_from_readme()
    async with BotSimulator(namespace["dp"]) as sim:
        alice = sim.chat(sim.user(first_name="Alice"))
        bob = sim.chat(sim.user(first_name="Bob"))
        await alice.send("/start")
        await bob.send("/start")
        await alice.send("Alice")
        await bob.send("Bob")
        await bob.send("25")
        await alice.send("30")
        alice.assert_last("Your name is Alice and you're 30 years old. Thanks!")
        bob.assert_last("Your name is Bob and you're 25 years old. Thanks!")


async def test_memory_storage_snippet_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = await run(MEMORY, {})
    assert capsys.readouterr().out == "awaiting_input\n"
    assert namespace["storage"].get_state(user_id=12345) is None


async def test_redis_storage_and_data_snippets_run_as_written(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = urlparse(redis_url)
    code = REDIS.replace("Redis()", f"Redis(host={server.hostname!r}, port={server.port})")
    assert code.count(f"port={server.port}") == 1
    namespace = await run(code, {})
    try:
        assert capsys.readouterr().out == "awaiting_input\n"
        storage = namespace["storage"]
        assert await storage.get_state(user_id=12345) is None
        await run(DATA, namespace)
        assert capsys.readouterr().out == "{'age': 30, 'name': 'Alice'}\n"
        assert await storage.get_data(user_id=12345) == {}
    finally:
        await namespace["redis_instance"].aclose()


async def test_file_storage_and_data_snippets_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace = await run(FILE, {})
    storage = namespace["storage"]
    try:
        assert capsys.readouterr().out == "awaiting_input\n"
        assert await storage.get_state(user_id=12345) is None
        await run(DATA, namespace)
        assert capsys.readouterr().out == "{'age': 30, 'name': 'Alice'}\n"
        assert await storage.get_data(user_id=12345) == {}
    finally:
        await storage.close()
    assert (tmp_path / "path" / "to" / "file.json").exists()


async def test_data_snippet_keeps_data_until_it_is_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the data snippet's steps, checked one at a time on the storage the README gives it
    monkeypatch.chdir(tmp_path)
    namespace = await run(FILE, {})
    storage = namespace["storage"]
    try:
        without_clear = DATA.split("# Clear all data for the user")[0]
        await run(without_clear, namespace)
        capsys.readouterr()
        assert await storage.get_data(user_id=12345) == {
            "age": 30,
            "name": "Alice",
            "location": "Berlin",
        }
    finally:
        await storage.close()
