"""The webhook deployment's settings, read from environment variables.

BOT_TOKEN         the bot's token
WEBHOOK_URL       the public HTTPS address Telegram posts updates to; workers serve its path
WEBHOOK_SECRET    1-256 characters of A-Z, a-z, 0-9, _ and -; Telegram sends it back with every
                  update, and a request without it is refused
REDIS_URL         the Redis every worker shares (default redis://localhost:6379/0)
TELEGRAM_API_URL  a local Bot API server (optional; default: Telegram's)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiogram import Bot

# What Telegram accepts as a secret_token in setWebhook
SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class Config:
    """Everything a worker and the set_webhook command need."""

    bot_token: str
    webhook_url: str
    webhook_secret: str
    redis_url: str = "redis://localhost:6379/0"
    api_url: str | None = None

    @property
    def webhook_path(self) -> str:
        """The path the workers serve: the one in WEBHOOK_URL, so the two cannot disagree."""
        return urlsplit(self.webhook_url).path or "/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        """Read the settings; exit with a message naming what is missing or wrong."""
        missing = [n for n in ("BOT_TOKEN", "WEBHOOK_URL", "WEBHOOK_SECRET") if not environ.get(n)]
        if missing:
            raise SystemExit(f"Set {', '.join(missing)} (see docs/guides/deploy.md)")
        secret = environ["WEBHOOK_SECRET"]
        if not SECRET.fullmatch(secret):
            raise SystemExit(
                "WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
                "(Telegram refuses any other secret_token)"
            )
        return cls(
            bot_token=environ["BOT_TOKEN"],
            webhook_url=environ["WEBHOOK_URL"],
            webhook_secret=secret,
            redis_url=environ.get("REDIS_URL") or cls.redis_url,
            api_url=environ.get("TELEGRAM_API_URL") or None,
        )

    def make_bot(self) -> Bot:
        """The Bot, talking to TELEGRAM_API_URL when it is set."""
        if not self.api_url:
            return Bot(self.bot_token)
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.api_url))
        return Bot(self.bot_token, session=session)
