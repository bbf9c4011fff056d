"""The pytest plugin: aiostep_simulator, aiostep_clock and aiostep_redis_url fixtures, in a
separate pytest run (as a project that installed aiostep sees them)."""

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
async def test_simulator(aiostep_simulator, aiostep_clock):
    sim = aiostep_simulator(build)
    talk = sim.chat()
    await talk.send("hi")
    talk.assert_last("hi")
    assert get_clock() is aiostep_clock
    fired = []
    aiostep_clock.call_later(5, fired.append, "timer")
    await aiostep_clock.advance(5)
    assert fired == ["timer"]


def test_clock_restored():
    assert isinstance(get_clock(), SystemClock)


@pytest.mark.asyncio
async def test_failure_left_in_a_simulator_fails_the_test(aiostep_simulator):
    dp = Dispatcher()

    @dp.message()
    async def broken(message: Message) -> None:
        raise ValueError("left behind")

    sim = aiostep_simulator(dp)
    task = asyncio.ensure_future(sim.send("x"))
    await asyncio.sleep(0)
    task.cancel()  # the error is never raised by the test itself
"""

REDIS_TEST = """
def test_redis(aiostep_redis_url):
    assert aiostep_redis_url.startswith("redis://127.0.0.1:")
"""


def test_simulator_and_clock_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SIMULATOR_TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN)
    # the third test passes, then its teardown errors with the handler's exception
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*left behind*"])


def test_aiostep_redis_url_skips_without_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_server, "find_redis_server", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(skipped=1)


def test_aiostep_redis_url_fails_without_a_server_on_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_server, "find_redis_server", lambda: None)
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true*"])


def test_aiostep_redis_url_gives_an_empty_database(pytester: pytest.Pytester) -> None:
    if redis_server.find_redis_server() is None:
        pytest.skip("no redis-server binary")
    pytester.makepyfile(
        """
        import redis

        def test_first(aiostep_redis_url):
            client = redis.Redis.from_url(aiostep_redis_url)
            assert client.dbsize() == 0
            client.set("left", "over")
            client.close()

        def test_second(aiostep_redis_url):
            client = redis.Redis.from_url(aiostep_redis_url)
            assert client.dbsize() == 0
            client.close()
        """
    )
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=2)


def test_the_plugin_injects_only_prefixed_fixture_names(pytester: pytest.Pytester) -> None:
    # A project that installs aiostep gets the plugin in every run: generic names would shadow
    # or collide with the project's own fixtures (``redis_url``, ``fake_clock``...).
    result = pytester.runpytest_inprocess(*PLUGIN, "--fixtures")
    section = result.stdout.str().split("fixtures defined from aiostep.testing.pytest_plugin")[1]
    section = section.split("fixtures defined from")[0]
    names = {line.split()[0] for line in section.splitlines() if line[:1].isalpha()}
    assert names == {
        "aiostep_simulator",
        "aiostep_clock",
        "aiostep_redis_url",
        "aiostep_redis_server",
        "aiostep_redis_cluster",
        "aiostep_redis_cluster_url",
    }


def test_a_project_may_define_the_short_names_itself(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def redis_url():
            return "redis://the-project's-own"

        @pytest.fixture
        def fake_clock():
            return "the project's own clock"
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_own_fixtures(redis_url, fake_clock):
            assert redis_url == "redis://the-project's-own"
            assert fake_clock == "the project's own clock"

        def test_no_generic_names(request):
            with pytest.raises(pytest.FixtureLookupError):
                request.getfixturevalue("bot_simulator")
        """
    )
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=2)
