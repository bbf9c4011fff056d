"""One webhook worker: the signup wizard on Redis, served by aiohttp. Start N of them behind a
load balancer; each holds nothing a conversation needs, Redis does.

    BOT_TOKEN=123:abc WEBHOOK_URL=https://bot.example.com/telegram/webhook \
    WEBHOOK_SECRET=s3cret REDIS_URL=redis://localhost:6379/0 \
        python -m examples.webhook.app --port 8081

The webhook itself is set once per deploy by ``python -m examples.webhook.set_webhook``, not
here. See docs/guides/deploy.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from redis.exceptions import RedisError

if __package__ in (None, ""):  # run as a plain script: python examples/webhook/app.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiostep.storage.redis import RedisStateStorage
from examples.signup import build
from examples.webhook.config import Config

logger = logging.getLogger("examples.webhook")

#: Seconds /healthz waits for Redis to answer PING before it reports the worker unhealthy.
HEALTH_TIMEOUT = 2.0


# --8<-- [start:health]
def health_check(storage: RedisStateStorage) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /healthz``: 200 while Redis answers PING, 503 otherwise."""

    async def healthz(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(storage.redis.ping(), HEALTH_TIMEOUT)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            logger.warning("/healthz: Redis does not answer PING (%s: %s)", type(exc).__name__, exc)
            return web.Response(status=503, text="redis unavailable\n")
        return web.Response(text="ok\n")

    return healthz


# --8<-- [end:health]


# --8<-- [start:app]
async def create_app(config: Config, storage: RedisStateStorage | None = None) -> web.Application:
    """The worker's aiohttp app: the webhook route, /healthz, and the Dispatcher's lifecycle.

    ``storage`` defaults to one on REDIS_URL; pass one on another client (Sentinel).
    """
    if storage is None:
        storage = RedisStateStorage(config.redis_url)  # a pool of 100 connections: see the guide
    dp = build(storage)  # the signup wizard; its storage is closed by dp's shutdown
    bot = config.make_bot()
    app = web.Application()
    requests = SimpleRequestHandler(
        dp,
        bot,
        secret_token=config.webhook_secret,  # no X-Telegram-Bot-Api-Secret-Token: 401
        handle_in_background=False,  # answer Telegram once the update is handled
    )
    app.router.add_post(config.webhook_path, requests.handle)
    app.router.add_get("/healthz", health_check(storage))

    async def on_startup(app: web.Application) -> None:
        await dp.emit_startup(bot=bot, dispatcher=dp, app=app, **dp.workflow_data)

    async def on_cleanup(app: web.Application) -> None:
        # on_cleanup runs after aiohttp has waited for the requests in flight (on_shutdown runs
        # before): only now may the storage and the bot's session close under them
        try:
            await dp.emit_shutdown(bot=bot, dispatcher=dp, app=app, **dp.workflow_data)
        finally:
            await bot.session.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


# --8<-- [end:app]


# --8<-- [start:main]
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One webhook worker of the signup bot.")
    parser.add_argument("--host", default="127.0.0.1", help="behind your balancer: loopback")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=25.0,
        help="seconds SIGTERM waits for updates in flight (keep it below your process "
        "manager's kill timeout)",
    )
    args = parser.parse_args(argv)
    config = Config.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # SIGTERM or SIGINT: stop accepting, wait up to shutdown_timeout for the requests in
    # flight, then on_cleanup closes the storage and the bot's session; exit status 0
    web.run_app(
        create_app(config),
        host=args.host,
        port=args.port,
        shutdown_timeout=args.shutdown_timeout,
        print=None,
    )


# --8<-- [end:main]

if __name__ == "__main__":
    main()
