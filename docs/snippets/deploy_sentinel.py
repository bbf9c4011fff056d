"""Webhook workers on a Redis that Sentinel watches: the storage follows the master through a
failover (docs/guides/deploy.md). Each worker:

SENTINELS=10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379 BOT_TOKEN=... WEBHOOK_URL=... \
    WEBHOOK_SECRET=... python docs/snippets/deploy_sentinel.py --port 8081
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aiohttp import web

# --8<-- [start:imports]
from redis.asyncio.sentinel import Sentinel

from aiostep.storage.redis import RedisStateStorage

# --8<-- [end:imports]

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the examples package
from examples.webhook.app import create_app
from examples.webhook.config import Config


# --8<-- [start:sentinel]
def sentinel_storage(sentinels: list[tuple[str, int]], service: str) -> RedisStateStorage:
    """A storage on whichever Redis the sentinels name as ``service``'s master."""
    client = Sentinel(sentinels, socket_timeout=0.5).master_for(
        service,
        # a URL would get these from RedisStateStorage; a client passed in brings its own
        max_connections=100,
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
    )
    return RedisStateStorage(client)


async def sentinel_app(
    config: Config, sentinels: list[tuple[str, int]], service: str = "mymaster"
) -> web.Application:
    storage = sentinel_storage(sentinels, service)
    app = await create_app(config, storage)

    async def close_client(app: web.Application) -> None:
        await storage.redis.aclose()  # the storage closes only a client it created itself

    app.on_cleanup.append(close_client)  # after create_app's: the storage is closed by then
    return app


# --8<-- [end:sentinel]


def sentinels_from_env() -> list[tuple[str, int]]:
    """``SENTINELS=host:port,host:port`` as a list of addresses."""
    hosts = [item.rpartition(":") for item in os.environ["SENTINELS"].split(",") if item]
    return [(host, int(port)) for host, _, port in hosts]


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 8080
    app = sentinel_app(Config.from_env(), sentinels_from_env())
    web.run_app(app, host="127.0.0.1", port=port, shutdown_timeout=25.0, print=None)
