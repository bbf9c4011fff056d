"""``wait_for`` with no ``Listen`` installed anywhere raises at once instead of hanging forever.

The most common "my step never fires" is a missing middleware; nothing could ever answer.
(Runs in a fresh interpreter: the rest of the suite creates Listen instances.)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import asyncio, aiostep

async def main():
    for call in (aiostep.wait_for(1, timeout=5), aiostep.register_next_step(1, print)):
        try:
            await call
        except RuntimeError as exc:
            print("refused:", exc)

asyncio.run(main())
"""


@pytest.mark.slow  # a fresh interpreter
def test_wait_for_and_register_next_step_without_any_listen_raise() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("refused: wait_for: no aiostep Listen middleware exists")
    assert lines[1].startswith("refused: register_next_step: no aiostep Listen")
    assert "aiostep.setup(dp)" in lines[0]
