"""What Telegram adds to what a simulated user sends: update ids in one increasing sequence,
and the entities of a message's text (a leading ``/command``)."""

from __future__ import annotations

import itertools
import time
from typing import Any

# Telegram numbers a bot's updates in one increasing sequence: it goes on across workers and
# restarts, so a simulator started after a restart continues above the ids stored before it.
_UPDATE_IDS = itertools.count(int(time.time() * 1000))


def utf16_len(text: str) -> int:
    """The length of ``text`` as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def entities(text: str) -> list[dict[str, Any]] | None:
    """The entities Telegram attaches to a user's ``text``: a bot command at offset 0."""
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return None
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
