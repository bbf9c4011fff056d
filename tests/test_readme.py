"""The README's Python examples run as written (each in a fresh interpreter, as a reader would)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)

# Appended to a README block: talk to the Dispatcher it built through the test kit.
DRIVE = """
import asyncio
from aiostep.testing import BotSimulator

async def _drive():
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        for text in {messages!r}:
            await talk.send(text)
        print(talk.transcript())

asyncio.run(_drive())
"""


def run_block(index: int, messages: list[str]) -> str:
    code = BLOCKS[index] + textwrap.dedent(DRIVE.format(messages=messages))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_has_its_two_examples() -> None:
    assert len(BLOCKS) == 2


def test_the_readme_wizard_runs_a_whole_signup() -> None:
    out = run_block(0, ["/signup", "Bob", "x", "30", "yes"])
    assert "bot> What is your name?" in out
    assert "Please send a whole number." in out or "Please send" in out
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_the_readme_wait_for_echo_runs() -> None:
    out = run_block(1, ["/echo", "hello"])
    assert "bot> Please type something:" in out
    assert out.rstrip().endswith("bot> You typed: hello")
