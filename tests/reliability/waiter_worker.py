"""A webhook worker process for the ``wait_for``-across-workers tests: ``/ask`` asks a question
and waits (``aiostep.wait_for``) for the answer, which it echoes with this worker's name; any
other message gets ``normal <text> on <name>``. Updates come as webhook POSTs (handled in the
background, as Telegram may send the next one at once), replies go to TELEGRAM_API_URL.

Usage: REDIS_URL=... TELEGRAM_API_URL=... python waiter_worker.py NAME PORT
"""

from __future__ import annotations

import os
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

import aiostep
from aiostep.storage.redis import RedisStateStorage


def main() -> None:
    name, port = sys.argv[1], int(sys.argv[2])
    dp = Dispatcher()
    aiostep.setup(dp, storage=RedisStateStorage(os.environ["REDIS_URL"]))

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer(f"Your colour? (asked on {name})")
        answer = await aiostep.wait_for(message.from_user.id, timeout=60)
        await answer.answer(f"got {answer.text} on {name}")

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal {message.text} on {name}")

    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"])
    bot = Bot("4242:WAITER-TEST", session=AiohttpSession(api=api))
    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=True).register(app, path="/webhook")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app.router.add_get("/healthz", healthz)

    async def on_startup(app: web.Application) -> None:
        await dp.emit_startup(bot=bot, dispatcher=dp)

    async def on_cleanup(app: web.Application) -> None:
        await dp.emit_shutdown(bot=bot, dispatcher=dp)
        await bot.session.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
