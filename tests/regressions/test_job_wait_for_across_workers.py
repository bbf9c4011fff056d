"""``listen.conversation(...).wait_for()`` from code outside an update (a job) did not register
the wait in the shared storage, as a handler's ``wait_for`` does on Redis: an answer that
reached another worker went to that worker's handlers, and the job timed out. The handle now
waits as an update of its Listen would, and the answer it gets is bound to this worker's bot."""

from __future__ import annotations

import asyncio

from aiogram.types import Message
from redis.asyncio import Redis

import aiostep
from aiostep.testing import BotSimulator
from tests.aiostep.test_wait_for_across_workers import worker


async def test_a_jobs_wait_for_gets_an_answer_that_reached_another_worker(redis_url: str) -> None:
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A")
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        listen_a = next(m for m in dp_a.message.outer_middleware if isinstance(m, aiostep.Listen))
        user = b.user(5101)
        on_b = b.chat(user)
        # a job on worker A asks the user, who answers through worker B
        job = asyncio.create_task(
            listen_a.conversation(a.bot, on_b.chat.id, user.id).wait_for(timeout=5)
        )
        client = Redis.from_url(redis_url)
        try:
            for _ in range(200):  # until the wait is registered (no update to settle on)
                if job.done() or await client.hget(f"aiostep:5101:5101@{a.bot.id}", "waiter"):
                    break
                await asyncio.sleep(0.01)
        finally:
            await client.aclose()
        await on_b.send("blue")
        answer = await job
        assert isinstance(answer, Message) and answer.text == "blue"
        assert answer.bot is a.bot  # bound to the waiting worker's bot
        assert log == []  # B's handlers never saw it
