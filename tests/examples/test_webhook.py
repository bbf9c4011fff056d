"""examples/webhook in process: its settings, /healthz, the one-off set_webhook command, and the
app on a real Redis with a fake Bot API (the deployment itself: test_webhook_deploy.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from aiostep.storage.redis import RedisStateStorage
from examples.webhook.app import create_app, health_check
from examples.webhook.config import Config
from examples.webhook.set_webhook import delete_webhook, set_webhook

ENV = {
    "BOT_TOKEN": "4242:WEBHOOK-TEST",
    "WEBHOOK_URL": "https://bot.example.test/tg/hook",
    "WEBHOOK_SECRET": "s3cret_-X",
}


class FakeBotAPI:
    """Records every call (method and form) and answers what aiogram expects."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.calls.append((method, form))
        result: Any = True
        if method == "sendMessage":
            result = {
                "message_id": len(self.calls),
                "date": 1700000000,
                "chat": {"id": int(form["chat_id"]), "type": "private"},
                "text": form.get("text"),
            }
        return web.json_response({"ok": True, "result": result})


@pytest_asyncio.fixture
async def api() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    fake = FakeBotAPI()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("")).rstrip("/")


def test_settings_come_from_the_environment() -> None:
    config = Config.from_env(ENV)
    assert config.webhook_path == "/tg/hook"  # the workers serve the path Telegram posts to
    assert config.redis_url == "redis://localhost:6379/0"
    assert config.api_url is None
    config = Config.from_env(
        {**ENV, "REDIS_URL": "redis://redis:6379/2", "TELEGRAM_API_URL": "http://api:8081"}
    )
    assert (config.redis_url, config.api_url) == ("redis://redis:6379/2", "http://api:8081")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOT_TOKEN": "1:a"}, "Set WEBHOOK_URL, WEBHOOK_SECRET"),
        ({**ENV, "WEBHOOK_SECRET": "no spaces"}, "WEBHOOK_SECRET must be 1-256 characters"),
        ({**ENV, "WEBHOOK_SECRET": "x" * 257}, "WEBHOOK_SECRET must be 1-256 characters"),
    ],
)
def test_a_worker_will_not_start_on_missing_or_bad_settings(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        Config.from_env(env)


async def test_healthz_is_200_while_redis_answers_ping_and_503_when_it_does_not(
    redis_url: str,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    for url, status in ((redis_url, 200), (dead, 503)):
        storage = RedisStateStorage(url, socket_timeout=0.5)
        try:
            response = await health_check(storage)(make_mocked_request("GET", "/healthz"))
        finally:
            await storage.close()
        assert response.status == status, url


async def test_set_webhook_registers_the_url_secret_and_the_update_types_in_use(
    api: tuple[FakeBotAPI, str],
) -> None:
    fake, url = api
    config = Config.from_env({**ENV, "TELEGRAM_API_URL": url})
    await set_webhook(config)
    [(method, form)] = fake.calls
    assert method == "setWebhook"
    assert form["url"] == ENV["WEBHOOK_URL"]
    assert form["secret_token"] == ENV["WEBHOOK_SECRET"]
    assert form["max_connections"] == "40"
    assert {"message", "callback_query"} <= set(json.loads(form["allowed_updates"]))
    await delete_webhook(config)
    assert fake.calls[-1][0] == "deleteWebhook"


async def test_the_app_answers_updates_on_the_webhook_path_only_with_the_secret(
    redis_url: str, api: tuple[FakeBotAPI, str]
) -> None:
    fake, url = api
    config = Config.from_env({**ENV, "REDIS_URL": redis_url, "TELEGRAM_API_URL": url})
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": 7, "type": "private"},
            "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    app = await create_app(config)
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/tg/hook", json=update)).status == 401
        headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
        assert (await client.post("/tg/hook", json=update, headers=headers)).status == 401
        assert fake.calls == []
        headers = {"X-Telegram-Bot-Api-Secret-Token": ENV["WEBHOOK_SECRET"]}
        response = await client.post("/tg/hook", json=update, headers=headers)
        assert response.status == 200
        # the reply was sent before Telegram got its answer: the update is handled in-request
        assert [(m, f.get("text")) for m, f in fake.calls] == [
            ("sendMessage", "What is your name?")
        ]
        assert (await client.get("/healthz")).status == 200


def test_the_nginx_config_matches_the_guide_and_the_app() -> None:
    """examples/webhook/nginx.conf forwards the path the workers serve for the guide's
    WEBHOOK_URL to the ports the guide starts them on."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    conf = (root / "examples" / "webhook" / "nginx.conf").read_text(encoding="utf-8")
    guide = (root / "docs" / "guides" / "deploy.md").read_text(encoding="utf-8")
    url = re.search(r"WEBHOOK_URL=(\S+)", guide)
    assert url is not None
    path = Config.from_env({**ENV, "WEBHOOK_URL": url.group(1)}).webhook_path
    assert re.findall(r"location = (\S+) \{", conf) == [path]
    ports = re.findall(r"server 127\.0\.0\.1:(\d+)", conf)
    assert ports == re.findall(r"python -m examples\.webhook\.app --port (\d+)", guide)
    assert "healthz" not in re.sub(r"#.*", "", conf)  # not exposed to the internet
