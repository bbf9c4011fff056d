"""End to end: a bot process killed (SIGKILL) while a wizard waits for an answer, and started
again after its reminder or its timeout was due, sends it with no user action."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.reliability.test_crash_mid_step import BotProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


async def launch(storage: str, remind: float, timeout: float) -> BotProcess:
    """``timeout_bot.py`` in a subprocess, talked to line by line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "timeout_bot.py"),
        storage,
        str(remind),
        str(timeout),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    bot = BotProcess(proc)
    await bot.expect("READY")
    return bot


@pytest.fixture(params=["file", "redis"])
def storage_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file:{tmp_path / 'state.jsonl'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.mark.slow
async def test_a_reminder_due_while_the_bot_was_down_arrives_after_the_restart_unasked(
    storage_spec: str,
) -> None:
    bot = await launch(storage_spec, remind=1.0, timeout=600)
    try:
        bot.say("/start")
        assert await bot.expect("BOT ") == "BOT What is your name?"
        await bot.kill()
    finally:
        await bot.stop()
    await asyncio.sleep(1.2)  # the reminder comes due while no process runs

    restarted = await launch(storage_spec, remind=1.0, timeout=600)
    try:
        # nobody says anything: the restarted bot finds the overdue reminder and sends it
        assert await restarted.expect("BOT ", timeout=30) == (
            "BOT Still there? | What is your name?"
        )
        restarted.say("Ann")
        assert await restarted.expect("BOT ") == "BOT Hello, Ann"
    finally:
        await restarted.stop()


@pytest.mark.slow
async def test_a_timeout_due_while_the_bot_was_down_fires_once_after_the_restart_unasked(
    storage_spec: str,
) -> None:
    bot = await launch(storage_spec, remind=0.5, timeout=1.0)
    try:
        bot.say("/start")
        assert await bot.expect("BOT ") == "BOT What is your name?"
        await bot.kill()
    finally:
        await bot.stop()
    await asyncio.sleep(1.2)  # the reminder and the timeout come due while no process runs

    restarted = await launch(storage_spec, remind=0.5, timeout=1.0)
    try:
        # no late reminder right before the timeout: the timeout alone
        assert await restarted.expect("BOT ", timeout=30) == (
            "BOT Time is up; let's stop here. You can start again any time."
        )
        restarted.say("Ann")  # the wizard is over: nothing takes this
        restarted.say("/start")
        assert await restarted.expect("BOT ") == "BOT What is your name?"
    finally:
        await restarted.stop()
