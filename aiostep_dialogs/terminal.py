"""The playground's console: lines in without blocking the event loop, text out at any time.

The bot may speak while the user is idle (a ``wait_for`` timeout, a reminder), so reading a
line must not stop the event loop, and printing must not lose what the user is typing. In a
terminal (POSIX), `TerminalConsole` reads keys itself (cbreak mode, through
``loop.add_reader``) and keeps the line being typed: bot output is printed above it, then the
prompt and the typed text are drawn again. Elsewhere (a pipe, a file, Windows),
`LineConsole` reads lines in a thread and prints as it goes.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
from typing import Any, TextIO

__all__ = ["Console", "LineConsole", "TerminalConsole", "open_console"]

try:
    import termios
    import tty
except ImportError:  # pragma: no cover - Windows
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]


class Console:
    """Where the playground reads the user's lines and shows what happens."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()

    async def readline(self) -> str | None:
        """The next line the user entered (without its newline), or ``None`` at end of input."""
        return await self.lines.get()

    def show(self, text: str, *, error: bool = False) -> None:
        """Print ``text`` (one or more lines) to standard output, or standard error."""
        stream = self.err if error else self.out
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()

    def close(self) -> None:
        """Stop reading and give the terminal back as it was."""


class LineConsole(Console):
    """Lines from any text stream, read by a daemon thread (a pipe, a file, a console without
    termios). A thread outside the loop's executor: ``asyncio.run`` would wait for it to return
    from a blocked ``readline`` before exiting."""

    def __init__(self, stdin: TextIO, out: TextIO, err: TextIO, prompt: str = "") -> None:
        super().__init__(out, err)
        self.prompt = prompt
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._read, args=(stdin, loop), name="aiostep-playground-input", daemon=True
        )
        self._thread.start()
        self._draw_prompt()

    def _read(self, stdin: TextIO, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                line: str | None = stdin.readline()
            except (OSError, ValueError):  # closed under us
                line = ""
            if not line:
                line = None
            try:
                loop.call_soon_threadsafe(self._put, line)
            except RuntimeError:  # the loop is closed: the playground is over
                return
            if line is None:
                return

    def _put(self, line: str | None) -> None:
        self.lines.put_nowait(line if line is None else line.rstrip("\r\n"))
        if line is not None:
            self._draw_prompt()

    def _draw_prompt(self) -> None:
        if self.prompt:
            self.out.write(self.prompt)
            self.out.flush()

    def show(self, text: str, *, error: bool = False) -> None:
        if self.prompt:
            self.out.write("\r")
        super().show(text, error=error)
        self._draw_prompt()


class TerminalConsole(Console):
    """A POSIX terminal: keys read by ``loop.add_reader`` in cbreak mode, with its own echo and
    line editing (Backspace, Ctrl-U, Ctrl-W; Ctrl-D on an empty line ends), so that output can
    be printed above the line being typed and the line drawn again below it.

    Ctrl-C still sends SIGINT (cbreak keeps ISIG). The terminal's settings are restored by
    `close`.
    """

    def __init__(self, stdin: TextIO, out: TextIO, err: TextIO, prompt: str = "you> ") -> None:
        super().__init__(out, err)
        assert termios is not None and tty is not None
        self.prompt = prompt
        self.fd = stdin.fileno()
        self.buffer: list[str] = []
        self._saved: Any = termios.tcgetattr(self.fd)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._escape = ""  # the part of an escape sequence (arrow keys...) read so far
        self._loop = asyncio.get_running_loop()
        tty.setcbreak(self.fd, termios.TCSANOW)
        self._loop.add_reader(self.fd, self._on_input)
        self._reading = True
        self._write(self.prompt)

    @staticmethod
    def supported(stdin: TextIO, out: TextIO) -> bool:
        """Whether ``stdin`` and ``out`` are a terminal this console can drive."""
        if termios is None:
            return False
        try:
            return stdin.isatty() and out.isatty() and os.name == "posix"
        except (AttributeError, ValueError):
            return False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def show(self, text: str, *, error: bool = False) -> None:
        # clear the prompt line, print above it, then draw the prompt and the typed text again
        self._write("\r\x1b[K")
        super().show(text, error=error)
        self._write(self.prompt + "".join(self.buffer))

    def _on_input(self) -> None:
        try:
            data = os.read(self.fd, 1024)
        except OSError:  # the terminal went away (EIO on a closed pty)
            data = b""
        if not data:
            self._end()
            return
        for char in self._decoder.decode(data):
            self._key(char)

    def _end(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self.fd)
            self.lines.put_nowait(None)

    def _key(self, char: str) -> None:
        if self._escape:
            # ESC [ ... final byte, ESC O x, or ESC x: an editing key this console ignores
            self._escape += char
            if self._escape == "\x1b[" or self._escape == "\x1bO":
                return
            if self._escape.startswith("\x1b[") and not ("@" <= char <= "~"):
                return
            self._escape = ""
            return
        if char == "\x1b":
            self._escape = char
        elif char in "\r\n":
            line, self.buffer = "".join(self.buffer), []
            self._write("\n" + self.prompt)
            self.lines.put_nowait(line)
        elif char in "\x7f\b":
            if self.buffer:
                self.buffer.pop()
                self._write("\b \b")
        elif char == "\x15":  # Ctrl-U: the whole line
            self.buffer = []
            self._write("\r\x1b[K" + self.prompt)
        elif char == "\x17":  # Ctrl-W: the last word
            text = "".join(self.buffer).rstrip()
            cut = text.rfind(" ") + 1
            self.buffer = list(text[:cut])
            self._write("\r\x1b[K" + self.prompt + "".join(self.buffer))
        elif char == "\x04":  # Ctrl-D
            if not self.buffer:
                self._write("\n")
                self._end()
        elif char == "\x0c":  # Ctrl-L: draw the line again
            self._write("\r\x1b[K" + self.prompt + "".join(self.buffer))
        elif char >= " ":
            self.buffer.append(char)
            self._write(char)

    def close(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self.fd)
        with contextlib.suppress(OSError, ValueError):
            self._write("\r\x1b[K")  # the prompt nobody will answer
        assert termios is not None
        with contextlib.suppress(termios.error):  # a terminal gone has nothing to restore
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def open_console(stdin: TextIO, out: TextIO, err: TextIO | None = None) -> Console:
    """A `TerminalConsole` when ``stdin`` and ``out`` are a terminal, else a
    `LineConsole` (with a ``you>`` prompt if ``stdin`` is a terminal all the same)."""
    err = err if err is not None else sys.stderr
    if TerminalConsole.supported(stdin, out):
        return TerminalConsole(stdin, out, err)
    interactive = False
    with contextlib.suppress(AttributeError, ValueError):
        interactive = stdin.isatty()
    return LineConsole(stdin, out, err, prompt="you> " if interactive else "")
