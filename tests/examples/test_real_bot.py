"""Each example runs as a real bot: BOT_TOKEN and TELEGRAM_API_URL pointing at a Bot API
server, here a small fake one on loopback that serves one /start and records the replies."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "4242:REAL-BOT-TEST"


class FakeBotAPI:
    """Answers aiogram's polling: getMe, getUpdates (one /start), sendMessage and sendPhoto
    (recorded)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.got_reply = asyncio.Event()
        self.served = False

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = dict(await request.post())
        result: Any = True
        if method == "getMe":
            result = {"id": 4242, "is_bot": True, "first_name": "Example", "username": "ex_bot"}
        elif method == "getUpdates":
            if self.served:
                await asyncio.sleep(0.2)
                result = []
            else:
                self.served = True
                result = [_start_update()]
        elif method == "sendMessage":
            self.sent.append(form)
            self.got_reply.set()
            result = {
                "message_id": len(self.sent),
                "date": 1700000000,
                "chat": {"id": int(str(form["chat_id"])), "type": "private"},
                "text": form.get("text"),
            }
        elif method == "sendPhoto":  # an upload: multipart, the file under "photo"
            photo = form.get("photo")
            assert photo is not None, form
            self.sent.append({**form, "text": form.get("caption")})
            self.got_reply.set()
            result = {
                "message_id": len(self.sent),
                "date": 1700000000,
                "chat": {"id": int(str(form["chat_id"])), "type": "private"},
                "caption": form.get("caption"),
                "photo": [{"file_id": "F1", "file_unique_id": "U1", "width": 96, "height": 96}],
            }
        return web.json_response({"ok": True, "result": result})


def _start_update() -> dict[str, Any]:
    user = {"id": 777, "is_bot": False, "first_name": "Ann"}
    return {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": 777, "type": "private"},
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


@pytest.mark.slow  # each example runs in its own interpreter
@pytest.mark.parametrize(
    ("example", "first_prompt"),
    [
        ("signup.py", "What is your name?"),
        ("survey.py", "Do you use Python?"),
        ("order.py", "Which pizza?"),
        ("pizza.py", "Which pizza would you like?"),
        ("booking.py", "Which day?"),
    ],
)
async def test_an_example_answers_start_as_a_real_bot(example: str, first_prompt: str) -> None:
    api = FakeBotAPI()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{port}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / example),  # as a plain script, from another directory
        env=env,
        cwd="/",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        try:
            await asyncio.wait_for(api.got_reply.wait(), timeout=60)
        except TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
            pytest.fail(f"no reply from {example}:\n{err.decode()[-3000:]}")
        assert str(api.sent[0]["text"]).endswith(first_prompt)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await runner.cleanup()
