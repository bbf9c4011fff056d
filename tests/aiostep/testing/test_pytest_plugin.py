"""The pytest plugin: bot_simulator, fake_clock and redis_url fixtures, in a separate pytest run."""

from __future__ import annotations

import pytest

from aiostep.testing import redis_server

pytest_plugins = ["pytester"]

# Load the plugin by module, whether or not the installed package's pytest11 entry point
# (named "aiostep") is there too: both at once would register the module twice.
# Plugins the inner runs do not need are off: hypothesis re-imports itself in each run.
PLUGIN = (
    *("-p", "no:aiostep", "-p", "aiostep.testing.pytest_plugin"),
    *("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark"),
)


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    # the inner runs use pytest-asyncio's strict mode (the default), as a user's project may
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


SIMULATOR_TESTS = """
import asyncio

import pytest
from aiogram import Dispatcher
from aiogram.types import Message

from aiostep.clock import SystemClock, get_clock


def build():
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    return dp


@pytest.mark.asyncio
async def test_simulator(bot_simulator, fake_clock):
    sim = bot_simulator(build)
    talk = sim.chat()
    await talk.send("hi")
    talk.assert_last("hi")
    assert get_clock() is fake_clock
    fired = []
    fake_clock.call_later(5, fired.append, "timer")
    await fake_clock.advance(5)
    assert fired == ["timer"]


def test_clock_restored():
    assert isinstance(get_clock(), SystemClock)


@pytest.mark.asyncio
async def test_failure_left_in_a_simulator_fails_the_test(bot_simulator):
    dp = Dispatcher()

    @dp.message()
    async def broken(message: Message) -> None:
        raise ValueError("left behind")

    sim = bot_simulator(dp)
    task = asyncio.ensure_future(sim.send("x"))
    await asyncio.sleep(0)
    task.cancel()  # the error is never raised by the test itself
"""

REDIS_TEST = """
def test_redis(redis_url):
    assert redis_url.startswith("redis://127.0.0.1:")
"""


def test_bot_simulator_and_fake_clock_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SIMULATOR_TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN)
    # the third test passes, then its teardown errors with the handler's exception
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*left behind*"])


def test_redis_url_skips_without_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_server, "find_redis_server", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(skipped=1)


def test_redis_url_fails_without_a_server_on_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_server, "find_redis_server", lambda: None)
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true*"])


def test_redis_url_gives_an_empty_database(pytester: pytest.Pytester) -> None:
    if redis_server.find_redis_server() is None:
        pytest.skip("no redis-server binary")
    pytester.makepyfile(
        """
        import redis

        def test_first(redis_url):
            client = redis.Redis.from_url(redis_url)
            assert client.dbsize() == 0
            client.set("left", "over")
            client.close()

        def test_second(redis_url):
            client = redis.Redis.from_url(redis_url)
            assert client.dbsize() == 0
            client.close()
        """
    )
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=2)
