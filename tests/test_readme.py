"""The README's Python examples run as written.

The wait_for example runs in this process: it only builds a Dispatcher. The wizard example runs
in a fresh interpreter, as a reader would run it: it declares ``Signup`` with the name
``"signup"``, which examples/signup.py declares too, and in this process it would replace that
wizard's registered steps for every later test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aiostep.testing import BotSimulator

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
    """Run README block ``index`` in a fresh interpreter and talk to its ``dp``."""
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


async def talk_to_block(index: int, messages: list[str]) -> str:
    """Run README block ``index`` in this process and talk to its ``dp``."""
    namespace: dict[str, Any] = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)
    async with BotSimulator(namespace["dp"]) as sim:
        talk = sim.chat()
        for text in messages:
            await talk.send(text)
        return talk.transcript()


def test_the_readme_has_its_two_examples() -> None:
    assert len(BLOCKS) == 2


@pytest.mark.slow  # a fresh interpreter (see the module's docstring)
def test_the_readme_wizard_runs_a_whole_signup() -> None:
    out = run_block(0, ["/signup", "Bob", "x", "30", "yes"])
    assert "bot> What is your name?" in out
    assert "Please send a whole number." in out or "Please send" in out
    assert out.rstrip().endswith("bot> Welcome, Bob!")


async def test_the_readme_wait_for_echo_runs() -> None:
    out = await talk_to_block(1, ["/echo", "hello"])
    assert "bot> Please type something:" in out
    assert out.rstrip().endswith("bot> You typed: hello")
