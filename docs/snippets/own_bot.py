"""Add aiostep to a bot you already have: its Dispatcher and routers, polling or a webhook.

BOT_TOKEN=123:abc python docs/snippets/own_bot.py                  # long polling
BOT_TOKEN=123:abc BASE_URL=https://bot.example.com WEBHOOK_SECRET=s3cret \
    python docs/snippets/own_bot.py webhook                       # a webhook on :8080
"""

from __future__ import annotations

import asyncio
import os
import sys
from enum import Enum, auto
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message

# --8<-- [start:webhook-imports]
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

# --8<-- [end:webhook-imports]
import aiostep
from aiostep.storage import FileStateStorage
from aiostep_dialogs import Wizard, step, v


# --8<-- [start:existing]
def existing_router() -> Router:
    """What the bot had before aiostep: its handlers, on a router."""
    router = Router(name="existing")

    @router.message(Command("help"))
    async def help_command(message: Message) -> None:
        await message.answer("/signup to register.")

    @router.message()
    async def anything_else(message: Message) -> None:
        await message.answer("Sorry, I did not get that. /help")

    return router


# --8<-- [end:existing]


# --8<-- [start:wizard]
class Signup(Wizard, name="own-bot-signup"):  # the name is stored: keep it stable
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2, max_len=50))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Welcome, {self.data['name']}!")


# --8<-- [end:wizard]


# --8<-- [start:build]
def build(storage: Any) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)  # once, on the root Dispatcher, before any wizard
    Signup.setup(dp, entry=Command("signup"))  # finds that Listen and shares its storage
    dp.include_router(existing_router())  # yours after the wizards: a catch-all comes last
    return dp


# --8<-- [end:build]


# --8<-- [start:polling]
async def run_polling() -> None:
    storage = FileStateStorage("bot-state.jsonl")  # or RedisStateStorage(url) for workers
    bot = Bot(os.environ["BOT_TOKEN"])
    await build(storage).start_polling(bot)  # the storage is closed when polling stops


# --8<-- [end:polling]


# --8<-- [start:webhook]
WEBHOOK_PATH = "/telegram/webhook"


def webhook_app(dp: Dispatcher, bot: Bot, *, base_url: str, secret: str) -> web.Application:
    async def on_startup(bot: Bot) -> None:
        await bot.set_webhook(
            f"{base_url}{WEBHOOK_PATH}",
            secret_token=secret,  # Telegram sends it back; other callers are refused
            allowed_updates=dp.resolve_used_update_types(),  # button presses included
        )

    dp.startup.register(on_startup)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret).register(
        app, path=WEBHOOK_PATH
    )
    setup_application(app, dp, bot=bot)  # dp's startup and shutdown run with the app
    return app


def run_webhook() -> None:
    storage = FileStateStorage("bot-state.jsonl")
    bot = Bot(os.environ["BOT_TOKEN"])
    app = webhook_app(
        build(storage), bot, base_url=os.environ["BASE_URL"], secret=os.environ["WEBHOOK_SECRET"]
    )
    web.run_app(app, host="127.0.0.1", port=8080)  # behind your HTTPS reverse proxy


# --8<-- [end:webhook]

if __name__ == "__main__":
    if sys.argv[1:] == ["webhook"]:
        run_webhook()
    else:
        asyncio.run(run_polling())
