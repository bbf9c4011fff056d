"""``wait_for`` across real worker processes: two webhook workers (``waiter_worker.py``) on one
real redis-server, Telegram's side played by this test (round-robin POSTs of update JSON), the
Bot API faked by an aiohttp app that records what each worker sends to each chat."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from redis.asyncio import Redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.slow


class FakeBotAPI:
    """Records the text of every sendMessage, per chat; wakes whoever waits for a chat."""

    def __init__(self) -> None:
        self.sent: dict[int, list[str]] = {}
        self.changed = asyncio.Condition()
        self.message_ids = itertools.count(1000)

    async def handle(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        result: Any = True
        if request.match_info["method"] == "sendMessage":
            chat_id = int(form["chat_id"])
            async with self.changed:
                self.sent.setdefault(chat_id, []).append(form["text"])
                self.changed.notify_all()
            result = {
                "message_id": next(self.message_ids),
                "date": 1700000000,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": 4242, "is_bot": True, "first_name": "Waiter"},
                "text": form["text"],
            }
        return web.json_response({"ok": True, "result": result})

    async def wait_for_texts(self, chat_id: int, count: int, timeout: float = 30) -> list[str]:
        """The chat's texts once there are at least ``count`` of them."""
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.sent.get(chat_id, [])) >= count), timeout
            )
            return list(self.sent[chat_id])


@dataclass
class Worker:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def api() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    fake = FakeBotAPI()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


class Telegram:
    """Telegram's side: numbers the updates and POSTs them to a worker's webhook."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)

    async def send(self, worker: Worker, user_id: int, text: str) -> None:
        message: dict[str, Any] = {
            "message_id": next(self.message_ids),
            "date": 1700000000,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
        update = {"update_id": next(self.update_ids), "message": message}
        url = f"http://127.0.0.1:{worker.port}/webhook"
        async with self.http.post(url, json=update) as resp:
            assert resp.status == 200, await resp.text()


@pytest_asyncio.fixture
async def workers(
    redis_url: str, api: tuple[FakeBotAPI, str], tmp_path: Path
) -> AsyncIterator[list[Worker]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "TELEGRAM_API_URL": api[1],
    }
    started: list[Worker] = []
    for name in ("A", "B"):
        port = _free_port()
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE / "waiter_worker.py"),
                name,
                str(port),
                env=env,
                stdout=out,
                stderr=out,
            )
        started.append(Worker(name, port, proc, log))
    client = Redis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            for worker in started:
                for _ in range(300):
                    if worker.proc.returncode is not None:
                        pytest.fail(f"worker {worker.name} exited:\n{worker.output()}")
                    try:
                        async with http.get(f"http://127.0.0.1:{worker.port}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"worker {worker.name} never came up:\n{worker.output()}")
        for _ in range(100):  # both announced themselves (their heartbeat runs)
            if await client.zcard("aiostep:workers") == 2:
                break
            await asyncio.sleep(0.05)
        yield started
    finally:
        await client.aclose()
        for worker in started:
            if worker.proc.returncode is None:
                worker.proc.terminate()
                try:
                    await asyncio.wait_for(worker.proc.wait(), 10)
                except TimeoutError:
                    worker.proc.kill()
                    await worker.proc.wait()


async def parked(client: Redis, user_id: int) -> None:
    """Until the ``wait_for`` of ``user_id`` is registered. The handler sends its question
    before it parks: an answer that overtakes the parking (a user answering within a
    millisecond) is an update like any other, routed where it arrives."""
    for _ in range(300):
        if await client.hexists(f"aiostep:{user_id}:{user_id}@4242", "waiter"):
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"the wait_for of user {user_id} was never registered")


async def test_every_answer_reaches_its_waiter_in_the_other_worker_exactly_once(
    api: tuple[FakeBotAPI, str], workers: list[Worker], redis_url: str
) -> None:
    """100 users: each one's /ask goes to one worker, which parks a ``wait_for``; the answer
    goes to the other worker, which hands it over. Each user sees the question, then the
    answer echoed by the worker that asked, and nothing else (no answer handled twice, none
    handled by the worker it reached)."""
    fake, _ = api
    users = range(7001, 7101)
    client = Redis.from_url(redis_url)

    async with aiohttp.ClientSession() as http:
        telegram = Telegram(http)

        async def user(user_id: int) -> None:
            asker, other = workers[user_id % 2], workers[1 - user_id % 2]
            await telegram.send(asker, user_id, "/ask")
            await fake.wait_for_texts(user_id, 1)
            await parked(client, user_id)
            await telegram.send(other, user_id, f"colour-{user_id}")
            await fake.wait_for_texts(user_id, 2)

        try:
            await asyncio.gather(*(user(u) for u in users))
        finally:
            await client.aclose()
        await asyncio.sleep(0.3)  # time for a second handling of any answer to show up

    wrong = {
        u: fake.sent.get(u)
        for u in users
        if fake.sent.get(u)
        != [
            f"Your colour? (asked on {workers[u % 2].name})",
            f"got colour-{u} on {workers[u % 2].name}",
        ]
    }
    assert not wrong, f"{len(wrong)} users got something else, e.g. {next(iter(wrong.items()))}"
    for worker in workers:
        assert worker.proc.returncode is None, worker.output()
        assert "Traceback" not in worker.output(), worker.output()


async def test_an_answer_for_a_killed_worker_goes_to_the_normal_handlers_of_the_other(
    api: tuple[FakeBotAPI, str], workers: list[Worker], redis_url: str
) -> None:
    fake, _ = api
    asker, other = workers
    async with aiohttp.ClientSession() as http:
        telegram = Telegram(http)
        await telegram.send(asker, 8001, "/ask")
        await fake.wait_for_texts(8001, 1)
        client = Redis.from_url(redis_url)
        await parked(client, 8001)
        asker.proc.kill()  # SIGKILL: no cleanup of any kind
        await asker.proc.wait()
        await telegram.send(other, 8001, "blue")
        texts = await fake.wait_for_texts(8001, 2)
        assert texts == ["Your colour? (asked on A)", "normal blue on B"]
        # and the registration is gone: the next message is routed at once
        await telegram.send(other, 8001, "green")
        texts = await fake.wait_for_texts(8001, 3)
        assert texts[-1] == "normal green on B"
    try:
        assert await client.hget("aiostep:8001:8001@4242", "waiter") is None
    finally:
        await client.aclose()
