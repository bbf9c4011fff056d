"""The playground: ``python -m aiostep_dialogs play TARGET`` — the project's main job."""

from __future__ import annotations

import contextlib
import io
import os
import re
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiostep_dialogs.__main__ import main
from aiostep_dialogs.playground import run_playground

ROOT = Path(__file__).resolve().parents[2]


def play(target: str, lines: list[str], *args: str) -> str:
    """Run the playground in this process, with one message per line as its input."""
    storage = args[1] if args[:1] == ("--storage",) else "memory"
    out = io.StringIO()
    status = run_playground(
        target, storage=storage, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out
    )
    assert status == 0
    return out.getvalue()


def play_command(target: str, lines: list[str], *args: str) -> str:
    """Run the playground as a user would: a process, one message per line on stdin."""
    result = subprocess.run(
        [sys.executable, "-m", "aiostep_dialogs", "play", target, *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow  # a fresh interpreter: the command as a user types it
def test_piped_input_prints_the_whole_conversation() -> None:
    out = play_command("examples/signup.py", ["Bob", "30", "1"])
    assert "bot> What is your name?" in out
    assert "user> Bob" in out
    assert "bot> How old are you?" in out
    assert "press: 1) Yes  2) Start over" in out
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_a_number_presses_the_numbered_button() -> None:
    out = play("examples/signup.py", ["Bob", "30", "2", "Ann", "41", "1"])
    assert "user clicked [Start over]" in out
    assert out.rstrip().endswith("bot> Welcome, Ann!")


def test_restart_resumes_the_conversation_on_file_storage(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    out = play("examples/signup.py", ["Bob", "/restart", "30", "1"], "--storage", f"file:{state}")
    assert "--- restarted ---" in out
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_restart_resumes_the_conversation_on_redis(redis_url: str) -> None:
    out = play("examples/signup.py", ["Bob", "/restart", "30", "1"], "--storage", redis_url)
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_restart_on_memory_storage_says_the_state_is_gone() -> None:
    out = play("examples/signup.py", ["Bob", "/restart", "30"])
    assert "--- restarted (memory storage: state is gone) ---" in out
    assert "Welcome" not in out


def test_a_module_class_target_runs_that_wizard() -> None:
    out = play("examples.order:Order", ["1", "2", "2", "1"])
    assert "bot> Which pizza?" in out
    assert "Total: 16 EUR" in out
    assert out.rstrip().endswith("bot> Order placed. Enjoy!")


def test_an_edited_prompt_is_printed_again_marked_edited() -> None:
    out = play("docs/snippets/one_message.py", ["2", "2", "Ann", "1"])
    assert "bot [edited]> Milk?\n  [Oat] [Cow]\n  press: 1) Oat  2) Cow" in out
    assert "bot [edited]> Name for the cup?" in out
    assert out.rstrip().endswith("bot [edited]> Coming up, Ann!")


def test_an_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no such file"):
        run_playground("examples/nope.py", stdin=io.StringIO(""), stdout=io.StringIO())


@pytest.mark.parametrize("text", ["/quit"])
def test_quit_ends_the_session_in_process(text: str) -> None:
    out = io.StringIO()
    status = run_playground(
        "examples/survey.py", stdin=io.StringIO(f"{text}\nnever sent\n"), stdout=out
    )
    assert status == 0
    assert "Do you use Python?" in out.getvalue()
    assert "never sent" not in out.getvalue()


# -- what the bot says on its own, errors, targets, storages --------------------------------------

IDLE_BOT = """
import asyncio

import aiostep
from aiogram import Dispatcher
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

dp = Dispatcher()
aiostep.setup(dp)


@dp.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer("Say something within half a second")
    try:
        reply = await aiostep.wait_for(message.from_user.id, timeout=0.5)
    except TimeoutError:
        await message.answer("You took too long")
    else:
        await message.answer(f"You said: {reply.text}")


async def remind(message: Message) -> None:
    await asyncio.sleep(0.2)
    await message.answer("Reminder: drink water")


async def fail_later() -> None:
    await asyncio.sleep(0.1)
    raise LookupError("the reminder task broke")


@dp.message(Command("remind"))
async def reminder(message: Message) -> None:
    await message.answer("I will remind you")
    asyncio.create_task(remind(message))


@dp.message(Command("background"))
async def background(message: Message) -> None:
    asyncio.create_task(fail_later())


@dp.message(Command("boom"))
async def boom(message: Message) -> None:
    await message.answer("about to fail")
    raise ValueError("the handler broke")


@dp.message()
async def echo(message: Message) -> None:
    await message.answer(f"echo: {message.text}")
"""


@pytest.fixture
def idle_bot(tmp_path: Path) -> Path:
    """A bot file with a module-level Dispatcher (under a name no other test imports)."""
    path = tmp_path / f"idle_bot_{uuid.uuid4().hex[:8]}.py"
    path.write_text(IDLE_BOT)
    return path


def run(target: str, lines: list[str], **options: Any) -> tuple[int, str, str]:
    """Run the playground in this process on piped lines: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = run_playground(
        target,
        stdin=io.StringIO("".join(f"{line}\n" for line in lines)),
        stdout=out,
        stderr=err,
        **options,
    )
    return status, out.getvalue(), err.getvalue()


class Terminal:
    """A pseudo-terminal: the playground runs on its slave side, the test reads and types on
    the master side, as a person at a terminal would."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.screen = b""
        self.seen_up_to = 0

    def expect(self, text: str, timeout: float = 20) -> None:
        """Wait until ``text`` appears on the screen after what was expected before."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while (found := self.screen.find(wanted, self.seen_up_to)) < 0:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never showed; the screen:\n{self.text}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the other side closed
                    chunk = b""
                assert chunk, f"the terminal closed before {text!r}; the screen:\n{self.text}"
                self.screen += chunk
        self.seen_up_to = found + len(wanted)

    def wait(self, proc: subprocess.Popen[bytes], timeout: float) -> int:
        """Wait for ``proc`` to exit, reading the screen meanwhile (a full pty blocks a writer)."""
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                where = "?"
                with contextlib.suppress(OSError):
                    status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                    signals = [line for line in status if line.startswith(("State", "Sig"))]
                    where = Path(f"/proc/{proc.pid}/wchan").read_text() + f" {signals}"
                pytest.fail(f"the process did not exit (in {where}); the screen:\n{self.text}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    self.screen += os.read(self.master, 4096)
        return proc.returncode

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    @property
    def text(self) -> str:
        return self.screen.decode(errors="replace")

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    if sys.platform == "win32":
        pytest.skip("no pseudo-terminals on Windows")
    made = Terminal()
    yield made
    made.close()


@contextlib.contextmanager
def playing_in(terminal: Terminal, target: str) -> Iterator[list[int]]:
    """The playground on ``terminal``, in a thread of this process; yields [status] at the end."""
    stdin = os.fdopen(os.dup(terminal.slave), "r")
    stdout = os.fdopen(os.dup(terminal.slave), "w")
    status: list[int] = []
    thread = threading.Thread(
        target=lambda: status.append(
            run_playground(target, stdin=stdin, stdout=stdout, stderr=stdout)
        ),
        daemon=True,
    )
    thread.start()
    try:
        yield status
    finally:
        terminal.type("\x04")  # Ctrl-D, in case the test did not end the session
        thread.join(timeout=20)
        stdin.close()
        stdout.close()
    assert not thread.is_alive(), f"the playground did not end; the screen:\n{terminal.text}"


def test_a_timeout_shows_in_a_terminal_without_further_input(
    idle_bot: Path, terminal: Terminal
) -> None:
    with playing_in(terminal, str(idle_bot)) as status:
        terminal.expect("bot> Say something within half a second")
        terminal.expect("bot> You took too long")  # nothing typed meanwhile
        terminal.type("/quit\r")
    assert status == [0]


def test_a_line_being_typed_survives_a_message_from_the_bot(
    idle_bot: Path, terminal: Terminal
) -> None:
    with playing_in(terminal, str(idle_bot)) as status:
        terminal.expect("bot> Say something within half a second")
        terminal.type("hel")
        terminal.expect("bot> You took too long")
        terminal.expect("you> hel")  # drawn again below the bot's message
        terminal.type("lo\r")
        terminal.expect("bot> echo: hello")
        terminal.type("/quit\r")
    assert status == [0]


def test_a_background_task_speaks_in_a_terminal_while_the_user_is_idle(
    idle_bot: Path, terminal: Terminal
) -> None:
    with playing_in(terminal, str(idle_bot)):
        terminal.expect("bot> You took too long")
        terminal.type("/remind\r")
        terminal.expect("bot> I will remind you")
        terminal.expect("bot> Reminder: drink water")


def test_a_handler_error_in_a_terminal_shows_the_bots_own_frames_and_goes_on(
    idle_bot: Path, terminal: Terminal
) -> None:
    with playing_in(terminal, str(idle_bot)) as status:
        terminal.expect("bot> You took too long")
        terminal.type("/boom\r")
        terminal.expect("aiogram's and aiostep's frames left out")
        terminal.expect(f'File "{idle_bot}", line')
        terminal.expect("error> ValueError: the handler broke")
        terminal.type("/remind\r")
        terminal.expect("bot> Reminder: drink water")
        terminal.type("/quit\r")
    assert "aiogram/dispatcher" not in terminal.text
    assert status == [1]


def test_piped_input_still_shows_what_the_bot_says_after_the_last_line(idle_bot: Path) -> None:
    status, out, _ = run(str(idle_bot), ["/remind"])
    assert status == 0
    assert "bot> Reminder: drink water" in out
    assert out.rstrip().endswith("bot> You took too long") or "You took too long" in out


def test_a_handler_error_is_shown_and_the_playground_goes_on(idle_bot: Path) -> None:
    status, out, err = run(str(idle_bot), ["/boom", "still here?"])
    assert "bot> about to fail" in out
    assert f"error> ValueError: the handler broke  ({idle_bot.name}:" in out
    assert out.rstrip().endswith("bot> You said: still here?")  # the waiter got it
    assert "Traceback" in err and "ValueError: the handler broke" in err
    assert "raised by a handler in BotSimulator" not in err  # the transcript is on screen
    assert status == 1  # a script sees that something failed


def test_an_error_in_a_task_the_bot_started_is_shown(idle_bot: Path) -> None:
    status, out, _ = run(str(idle_bot), ["/background", "/remind"])
    assert "error> LookupError: the reminder task broke" in out
    assert "bot> Reminder: drink water" in out
    assert status == 1


def test_a_failing_startup_hook_is_shown_and_ends_the_session(tmp_path: Path) -> None:
    path = tmp_path / f"broken_start_{uuid.uuid4().hex[:8]}.py"
    path.write_text(
        "from aiogram import Dispatcher\n"
        "dp = Dispatcher()\n"
        "@dp.startup()\n"
        "async def connect() -> None:\n"
        "    raise ConnectionError('no database')\n"
    )
    status, out, err = run(str(path), ["never read"])
    assert status == 1  # as start_polling, it does not start without its startup hooks
    assert f"error> ConnectionError: no database  ({path.name}:5 in connect)" in out
    assert "Traceback" in err


def test_a_bad_storage_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["play", "examples/signup.py", "--storage", "postgres://db"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "python -m aiostep_dialogs play: error: --storage 'postgres://db': "
        "use memory, file:PATH or a redis:// URL\n"
    )
    monkeypatch.setenv("AIOSTEP_STORAGE", "sqlite:x.db")
    assert main(["play", "examples/signup.py"]) == 2
    assert "AIOSTEP_STORAGE 'sqlite:x.db'" in capsys.readouterr().err


def test_the_readme_primitives_snippet_plays_as_a_file(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (snippet,) = [block for block in blocks if "aiostep.wait_for(" in block]
    path = tmp_path / f"readme_echo_{uuid.uuid4().hex[:8]}.py"
    path.write_text(snippet)  # exactly as shown: `dp` at module level, no build()
    status, out, _ = run(str(path), ["/echo", "hello"])
    assert status == 0
    assert "bot> Please type something:" in out
    assert out.rstrip().endswith("bot> You typed: hello")


def test_a_module_attribute_names_the_dispatcher(idle_bot: Path) -> None:
    status, out, _ = run(f"{idle_bot}:dp", ["hi"])
    assert status == 0
    assert "bot> You said: hi" in out


def test_restart_of_a_module_level_dispatcher_says_it_cannot_be_rebuilt(idle_bot: Path) -> None:
    status, out, _ = run(str(idle_bot), ["/restart", "hi"], grace=0.1)
    assert "cannot build a new one. Define build(storage=None) -> Dispatcher" in out
    assert "--- restarted" not in out
    assert "bot> You said: hi" in out  # the same bot goes on: its waiter got the answer
    assert status == 0


def test_the_web_playground_refuses_a_module_level_dispatcher_clearly(idle_bot: Path) -> None:
    from aiostep_dialogs.web_playground import run_web_playground

    with pytest.raises(SystemExit, match=r"needs a build\(storage=None\) -> Dispatcher"):
        run_web_playground(str(idle_bot), stdout=io.StringIO())


def test_the_web_playground_gets_aiostep_storage_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiostep_dialogs import web_playground

    seen: dict[str, Any] = {}
    monkeypatch.setattr(web_playground, "run_web_playground", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("AIOSTEP_STORAGE", "file:state.jsonl")
    main(["play", "--web", "examples/signup.py"])
    assert seen["storage"] == "file:state.jsonl"
    monkeypatch.delenv("AIOSTEP_STORAGE")
    main(["play", "--web", "examples/signup.py"])
    assert seen["storage"] == "memory"  # never None


def test_storage_comes_from_aiostep_storage_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOSTEP_STORAGE", f"file:{tmp_path / 'state.jsonl'}")
    status, out, _ = run("examples/signup.py", ["Bob", "/restart", "30", "1"])
    assert status == 0
    assert "--- restarted ---" in out  # not memory
    assert out.rstrip().endswith("bot> Welcome, Bob!")
    assert (tmp_path / "state.jsonl").exists()


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_no_start_on_a_stored_conversation_shows_where_the_user_is(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec = (
        f"file:{tmp_path / 'state.jsonl'}"
        if kind == "file"
        else request.getfixturevalue("redis_url")
    )
    run("examples/signup.py", ["Bob", "30"], storage=spec)  # then the process ends
    status, out, _ = run("examples/signup.py", ["1"], storage=spec, send_start=False)
    assert status == 0
    assert out.splitlines()[:3] == [
        "--- resumed: signup, step CONFIRM; its prompt again ---",
        "bot> Bob, 30. Correct?",
        "  [Yes] [Start over]",
    ]
    assert out.rstrip().endswith("bot> Welcome, Bob!")  # its buttons work


# Run in the new interpreter (not in a preexec_fn, unsafe in a process with threads): its new
# session (start_new_session) takes the pty as controlling terminal, so ^C on it is a SIGINT.
# SIGINT is also set as an interactive shell leaves it for a command (default action, not
# blocked), whatever the test process's own state is: it is inherited across exec.
PLAY_ON_THIS_TERMINAL = """
import fcntl, runpy, signal, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
sys.argv = ["aiostep_dialogs", *sys.argv[1:]]
runpy.run_module("aiostep_dialogs", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow  # a fresh interpreter: SIGINT goes to a process's main thread
def test_ctrl_c_leaves_quietly_and_gives_the_terminal_back(terminal: Terminal) -> None:
    import termios

    before = termios.tcgetattr(terminal.slave)
    proc = subprocess.Popen(
        [sys.executable, "-c", PLAY_ON_THIS_TERMINAL, "play", "examples/signup.py"],
        stdin=terminal.slave,
        stdout=terminal.slave,
        stderr=terminal.slave,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        terminal.expect("bot> What is your name?", timeout=60)
        terminal.type("Bo")
        terminal.expect("Bo")  # echoed: the playground reads keys
        terminal.type("\x03")  # Ctrl-C
        status = terminal.wait(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with contextlib.suppress(AssertionError):
        terminal.expect("never", timeout=0.5)  # read what is left on the screen
    screen = terminal.text
    assert status == 130, screen
    assert "Traceback" not in screen, screen
    assert "KeyboardInterrupt" not in screen, screen
    assert termios.tcgetattr(terminal.slave) == before, screen  # echo and line editing are back


def test_typing_a_request_buttons_label_presses_it() -> None:
    target = "docs/snippets/media_requests.py:Delivery"
    out = play(target, ["1", "Share my phone number", "Send my location"])
    assert "bot> [photo] Today's menu: what would you like?" in out
    assert "user> [location 51.5074, -0.1278]" in out  # pressed, not typed
    assert "bot> On its way: soup for +15550100000\n  (keyboard removed)" in out


# --- reminders and timeouts ----------------------------------------------------------------------

REMINDING = str(Path(__file__).resolve().parent / "reminding_bot.py")


def test_reminders_and_the_timeout_arrive_while_the_user_is_idle() -> None:
    out = io.StringIO()
    status = run_playground(REMINDING, storage="memory", stdin=io.StringIO(""), stdout=out)
    assert status == 0
    text = out.getvalue()
    # nobody typed anything after /start: the reminder and the timeout come on their own
    assert text.index("bot> What is your name?") < text.index("bot> Still there?")
    assert text.rstrip().endswith("You can start again any time.")


def test_reminders_arrive_while_idle_on_file_storage(tmp_path: Path) -> None:
    out = play(REMINDING, [], "--storage", f"file:{tmp_path / 'state.jsonl'}")
    assert "bot> Still there?" in out
    assert out.rstrip().endswith("You can start again any time.")
