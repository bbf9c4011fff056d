"""Run an example as a real bot: ``BOT_TOKEN`` (and optionally ``TELEGRAM_API_URL`` for a
local Bot API server, ``AIOSTEP_STORAGE`` = ``file:PATH`` or a ``redis://`` URL)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Dispatcher


def storage_from_env() -> Any:
    """The storage named by ``AIOSTEP_STORAGE`` (default: memory)."""
    spec = os.environ.get("AIOSTEP_STORAGE", "")
    if spec.startswith("file:"):
        from aiostep.storage import FileStateStorage

        return FileStateStorage(spec[len("file:") :])
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from aiostep.storage.redis import RedisStateStorage

        return RedisStateStorage(spec)
    return None


def run_bot(build: Callable[..., Dispatcher]) -> None:
    """Start long polling with the Dispatcher ``build(storage)`` returns."""
    token = os.environ.get("BOT_TOKEN")
    if not token:
        sys.exit(
            "Set BOT_TOKEN to run this bot against Telegram, or talk to it in the terminal:\n"
            f"  python -m aiostep_dialogs play {sys.argv[0]}"
        )
    logging.basicConfig(level=logging.INFO)
    session = None
    api_url = os.environ.get("TELEGRAM_API_URL")
    if api_url:
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    bot = Bot(token, session=session)
    dp = build(storage_from_env())
    asyncio.run(dp.start_polling(bot))
