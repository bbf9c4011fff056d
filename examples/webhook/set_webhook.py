"""Point Telegram at the workers: run once per deploy (or when WEBHOOK_URL, WEBHOOK_SECRET or the
bot's handlers change), never from every worker at startup.

    BOT_TOKEN=123:abc WEBHOOK_URL=https://bot.example.com/telegram/webhook \
    WEBHOOK_SECRET=s3cret python -m examples.webhook.set_webhook
    python -m examples.webhook.set_webhook --delete    # back to long polling
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a plain script: python examples/webhook/set_webhook.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.signup import build
from examples.webhook.config import Config


# --8<-- [start:set]
async def set_webhook(config: Config, *, max_connections: int = 40) -> None:
    """Register WEBHOOK_URL and WEBHOOK_SECRET with Telegram, for the update types the bot uses."""
    bot = config.make_bot()
    try:
        await bot.set_webhook(
            config.webhook_url,
            secret_token=config.webhook_secret,
            # the Dispatcher's handlers and wizards decide: button presses included
            allowed_updates=build().resolve_used_update_types(),
            max_connections=max_connections,  # updates Telegram sends at once, to all workers
        )
    finally:
        await bot.session.close()


# --8<-- [end:set]


async def delete_webhook(config: Config) -> None:
    """Remove the webhook (updates wait at Telegram until one is set again or polling starts)."""
    bot = config.make_bot()
    try:
        await bot.delete_webhook()
    finally:
        await bot.session.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Set (or delete) the bot's webhook, once.")
    parser.add_argument("--delete", action="store_true", help="delete the webhook instead")
    parser.add_argument("--max-connections", type=int, default=40)
    args = parser.parse_args(argv)
    config = Config.from_env()
    if args.delete:
        asyncio.run(delete_webhook(config))
        print("webhook deleted")
    else:
        asyncio.run(set_webhook(config, max_connections=args.max_connections))
        print(f"webhook set: {config.webhook_url}")


if __name__ == "__main__":
    main()
