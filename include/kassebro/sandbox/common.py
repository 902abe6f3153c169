"""What every ledger sandbox shares underneath: the fault list, the call log, and the raw-ASGI
helpers that let a sandbox save a request and then drop the connection without answering. The
layer that puts them in front of each API, and the `/_sandbox` admin API, are in `admin.py`.

The "save then drop" fault is the one that proves exactly-once posting: the ledger has the
voucher, the client never hears so. It needs the real socket, so it works under uvicorn only.
"""

from __future__ import annotations

import asyncio
import fnmatch
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

FAULT_KINDS = ("429", "500", "delay", "save_then_drop", "hidden_save")


@dataclass
class Fault:
    """One injected fault: for the next `times` calls matching method and path (under the API prefix).

    `path` is a glob (`/ledger/voucher`, `/ledger/voucher/*`, `*`); `times` -1 = until cleared.
    `seconds`: the X-Rate-Limit-Reset for "429", the wait for "delay", how long the voucher stays
    out of lookups for "hidden_save" (see `save_later`).
    """

    kind: str
    path: str = "*"
    method: str = "*"
    times: int = 1
    seconds: float = 1.0
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path, self.path)


class FaultInjector:
    """Thread-safe list of pending faults; the first matching one fires and is used up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(
        self,
        kind: str,
        path: str = "*",
        method: str = "*",
        times: int = 1,
        seconds: float = 1.0,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if not path.startswith("/") and path != "*":
            path = "/" + path
        path = path.removeprefix("/v2") or "/"
        with self._lock:
            fault = Fault(kind, path, method.upper(), int(times), float(seconds), self._next_id)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return replace(fault)
        return None

    def list(self) -> list[Fault]:
        with self._lock:
            return [replace(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class CallLog:
    """Every API call: method, path, redacted query, status (None = connection dropped), fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(entry)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body now; return it and a receive that replays it."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def buffered(receive: Receive) -> Receive:
    """Read the whole request body now; return a receive that replays it."""
    return (await read_body(receive))[1]


def drop_connection(send: Send) -> bool:
    """Close uvicorn's socket without an answer; the client sees a dropped connection."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    cycle.disconnected = True  # type: ignore[union-attr]  # stops uvicorn's fallback 500
    transport.close()
    return True


_LATER: set[asyncio.Task] = set()  # keeps the deferred saves alive until they have run


async def save_later(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
    scope: Scope,
    receive: Receive,
    send: Send,
    entry: dict[str, Any],
    seconds: float,
) -> None:
    """The "hidden_save" fault: the request is taken, the connection dropped without an answer, and
    the voucher shows in lookups only `seconds` later (a ledger whose search lags its writes).

    Done by handling the request `seconds` later, which looks the same from outside: the caller
    cannot know the outcome, and lookups find nothing until then.
    """
    replay = await buffered(receive)
    entry["status"] = None
    if not drop_connection(send):
        raise RuntimeError("hidden_save needs the app to run under uvicorn")

    async def swallow(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            entry["saved_status"] = message["status"]

    async def later() -> None:
        await asyncio.sleep(seconds)
        await app(scope, replay, swallow)

    task = asyncio.get_running_loop().create_task(later())
    _LATER.add(task)
    task.add_done_callback(_LATER.discard)
