"""Run a sandbox app with uvicorn on 127.0.0.1 in a background thread.

Tests and `make run` need a real HTTP server (clients are tested over real sockets, and the
"save then drop the connection" fault only exists on a real transport), but must not block the
caller. The socket is bound before the thread starts, so the port is known at once, also when a
free one was picked.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

DEFAULT_HOST = "127.0.0.1"


class SandboxServer:
    """One uvicorn server for one ASGI app, started in a daemon thread.

    Access logging is off on purpose: a legacy Tripletex session call carries the tokens in its
    query string, and they must never reach a log.
    """

    def __init__(self, app: Any, *, host: str = DEFAULT_HOST, port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (only known once started)."""
        if self._socket is None:
            raise RuntimeError("server not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """Base URL of the server, without a trailing slash, e.g. http://127.0.0.1:8900."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Bind, start serving in a thread and wait until uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"sandbox server on {self.url} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox server on {self.url} did not start in {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread; idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._socket is not None:
            self._socket.close()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it), for command lines."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> SandboxServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._socket is not None else f"{self.host}:{self._requested_port}"
        return f"SandboxServer({where})"


@contextlib.contextmanager
def running(app: Any, *, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[SandboxServer]:
    """Serve `app` for the duration of a `with` block; port 0 picks a free port.

    >>> with running(create_app()) as server:
    ...     requests.get(server.url + "/_sandbox/calls")
    """
    server = SandboxServer(app, host=host, port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sandbox_parser(
    description: str, port: int, state_help: str = "JSON file to keep the books in across restarts"
) -> argparse.ArgumentParser:
    """The command line every sandbox has (`--host`, `--port`, `--state`, `--log-level`); a sandbox
    adds its own options (accepted tokens, keys) before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    parser.add_argument("--state", help=state_help)
    parser.add_argument("--log-level", default="info")
    return parser


def serve_until_stopped(app: Any, args: argparse.Namespace, banner: Callable[[str], str]) -> int:
    """Serve `app` on `args.host`/`args.port` until SIGTERM or Ctrl-C, which stop it cleanly;
    prints `banner(url)` once it accepts connections. The exit status of a sandbox's `main`."""
    server = SandboxServer(app, host=args.host, port=args.port, log_level=args.log_level).start()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print(banner(server.url), flush=True)
    server.wait()
    return 0
