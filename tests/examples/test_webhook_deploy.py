"""examples/webhook as deployed: a real redis-server, two real worker processes on loopback, a
fake Bot API (TELEGRAM_API_URL) that records what the bot sends, and Telegram's side played by
this test, which POSTs update JSON to the workers in turn, with the secret header."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "4242:WEBHOOK-DEPLOY-TEST"
SECRET = "deploy-test_SECRET-42"
WEBHOOK_URL = "https://bot.example.test/telegram/webhook"
PATH = "/telegram/webhook"
SLOW_CHAT = 999  # the fake Bot API holds this chat's first sendMessage until the test says so

pytestmark = pytest.mark.slow


class FakeBotAPI:
    """Telegram's Bot API as the workers see it: records sendMessage per chat; holds
    ``SLOW_CHAT``'s first reply until ``release`` is set (a slow update in flight)."""

    def __init__(self) -> None:
        self.sent: dict[int, list[dict[str, Any]]] = {}
        self.message_ids = itertools.count(1000)
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        result: Any = True
        if method == "sendMessage":
            chat_id = int(form["chat_id"])
            if chat_id == SLOW_CHAT and not self.release.is_set():
                self.held.set()
                await self.release.wait()
            self.sent.setdefault(chat_id, []).append(form)
            result = self.message(chat_id, form.get("text", ""), form.get("reply_markup"))
        elif method == "editMessageReplyMarkup":
            result = self.message(int(form["chat_id"]), "", None, int(form["message_id"]))
        return web.json_response({"ok": True, "result": result})

    def message(
        self, chat_id: int, text: str, markup: str | None, message_id: int | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id or next(self.message_ids),
            "date": 1700000000,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 4242, "is_bot": True, "first_name": "Signup"},
            "text": text,
        }
        if markup:
            message["reply_markup"] = json.loads(markup)
        return message

    def texts(self, chat_id: int) -> list[str]:
        return [form.get("text", "") for form in self.sent.get(chat_id, [])]


@dataclass
class Worker:
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Telegram:
    """Telegram's side of the webhook: numbers updates and POSTs them with the secret."""

    http: aiohttp.ClientSession
    update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def post(
        self, worker: Worker, update: dict[str, Any], secret: str | None = SECRET
    ) -> aiohttp.ClientResponse:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        update = {"update_id": next(self.update_ids), **update}
        async with self.http.post(f"{worker.url}{PATH}", json=update, headers=headers) as resp:
            await resp.read()
            return resp


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}


def text_update(user_id: int, text: str, message_id: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": 1700000000,
        "chat": {"id": user_id, "type": "private"},
        "from": _user(user_id),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"message": message}


def click_update(user_id: int, prompt: dict[str, Any], label: str) -> dict[str, Any]:
    """A press of the button ``label`` under the bot's message ``prompt`` (a sendMessage form)."""
    rows = json.loads(prompt["reply_markup"])["inline_keyboard"]
    buttons = [button for row in rows for button in row]
    data = next(button["callback_data"] for button in buttons if button["text"] == label)
    return {
        "callback_query": {
            "id": f"cb-{user_id}",
            "from": _user(user_id),
            "chat_instance": f"ci-{user_id}",
            "data": data,
            "message": {
                "message_id": 1,
                "date": 1700000000,
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": 4242, "is_bot": True, "first_name": "Signup"},
                "text": prompt["text"],
            },
        }
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


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
    fake.release.set()
    await runner.cleanup()


async def start_worker(
    tmp_path: Path, name: str, env: dict[str, str], *, as_script: bool
) -> Worker:
    port = _free_port()
    log = tmp_path / f"{name}.log"
    # one worker as `python -m` from the checkout, the other as a plain script from elsewhere
    command = (
        [str(ROOT / "examples" / "webhook" / "app.py")]
        if as_script
        else ["-m", "examples.webhook.app"]
    )
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *command,
            "--port",
            str(port),
            "--shutdown-timeout",
            "20",
            env=env,
            cwd="/" if as_script else str(ROOT),
            stdout=out,
            stderr=out,
        )
    return Worker(port, proc, log)


async def wait_healthy(http: aiohttp.ClientSession, worker: Worker) -> None:
    for _ in range(600):
        if worker.proc.returncode is not None:
            pytest.fail(f"worker :{worker.port} exited:\n{worker.output()}")
        try:
            async with http.get(f"{worker.url}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"worker :{worker.port} never became healthy:\n{worker.output()}")


async def sign_up(telegram: Telegram, api: FakeBotAPI, workers: list[Worker], user_id: int) -> None:
    """One user through the whole wizard, each update on the next worker in turn, each sent
    once the previous one's response came back (as Telegram does for one chat)."""
    name, age = f"User{user_id}", 20 + user_id % 50
    turn = itertools.cycle(workers[user_id % 2 :] + workers[: user_id % 2])
    expected = [
        ("/start", "What is your name?"),
        (name, "How old are you?"),
        (str(age), f"{name}, {age}. Correct?"),
    ]
    for message_id, (text, reply) in enumerate(expected, 1):
        resp = await telegram.post(next(turn), text_update(user_id, text, message_id))
        assert resp.status == 200
        assert api.texts(user_id)[-1] == reply  # answered before the response came back
    prompt = api.sent[user_id][-1]
    resp = await telegram.post(next(turn), click_update(user_id, prompt, "Yes"))
    assert resp.status == 200
    assert api.texts(user_id) == [reply for _, reply in expected] + [f"Welcome, {name}!"]


async def test_two_workers_serve_the_wizard_and_stop_gracefully(
    redis_url: str, api: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    import redis.asyncio as redis

    fake, api_url = api
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": TOKEN,
        "WEBHOOK_URL": WEBHOOK_URL,
        "WEBHOOK_SECRET": SECRET,
        "REDIS_URL": redis_url,
        "TELEGRAM_API_URL": api_url,
    }
    workers = [
        await start_worker(tmp_path, "a", env, as_script=False),
        await start_worker(tmp_path, "b", env, as_script=True),
    ]
    client = redis.Redis.from_url(redis_url)
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            telegram = Telegram(http)
            for worker in workers:
                await wait_healthy(http, worker)
            for _ in range(50):  # both workers announced themselves: updates are ordered
                if await client.zcard("aiostep:workers") == 2:
                    break
                await asyncio.sleep(0.1)

            # ten users at once, each one's updates alternating between the two workers
            await asyncio.gather(*(sign_up(telegram, fake, workers, u) for u in range(1, 11)))

            for worker in workers:  # Redis answers PING: both are healthy
                async with http.get(f"{worker.url}/healthz") as health:
                    assert (health.status, await health.text()) == (200, "ok\n")

            # the webhook refuses whoever lacks the secret, and runs nothing for them
            for secret in (None, "wrong"):
                resp = await telegram.post(workers[0], text_update(5000, "/start", 1), secret)
                assert resp.status == 401
            assert fake.texts(5000) == []

            # SIGTERM while an update is in flight: the worker stops accepting, finishes it,
            # answers 200, closes its storage and exits 0
            first, second = workers
            in_flight = asyncio.ensure_future(
                telegram.post(first, text_update(SLOW_CHAT, "/start", 1))
            )
            await asyncio.wait_for(fake.held.wait(), 30)
            first.proc.send_signal(signal.SIGTERM)
            for _ in range(100):
                if _refuses_connections(first.port):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"worker still accepts connections after SIGTERM:\n{first.output()}")
            assert not in_flight.done()
            fake.release.set()
            resp = await asyncio.wait_for(in_flight, 30)
            assert resp.status == 200
            assert await asyncio.wait_for(first.proc.wait(), 30) == 0, first.output()
            assert fake.texts(SLOW_CHAT) == ["What is your name?"]
            # its storage said goodbye (a worker that just vanished stays listed for 3 s)
            assert await client.zcard("aiostep:workers") == 1
            # and the step it wrote is there for the worker that is left
            resp = await telegram.post(second, text_update(SLOW_CHAT, "Bob", 2))
            assert resp.status == 200
            assert fake.texts(SLOW_CHAT) == ["What is your name?", "How old are you?"]

            second.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.proc.wait(), 30) == 0, second.output()
            assert await client.zcard("aiostep:workers") == 0
    finally:
        for worker in workers:
            if worker.proc.returncode is None:
                worker.proc.kill()
                await worker.proc.wait()
        await client.aclose()
