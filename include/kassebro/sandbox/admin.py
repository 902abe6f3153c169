"""The sandboxes' control plane, one copy for all five: the fault layer in front of each API and
the `/_sandbox` admin API.

`SandboxApp` is a FastAPI app with a raw ASGI layer in `__call__`, outside Starlette's middleware,
because only there does `send` belong to uvicorn's connection: that is what lets "save_then_drop"
close the socket before a single byte of the answer is written. Every API call passes the layer:

1. the sandbox says whether the request is an API call and how it is logged (`open_call`); admin
   and docs requests pass untouched;
2. the sandbox may refuse it before anything else (`admit`: Tripletex's optional rate limit,
   Fiken's one request at a time per company), with its own answer;
3. the next matching fault (`app.state.faults`, see `common.FaultInjector`) fires:
   - "429", "500": the system's own error answer (`fault_reply`); the request is not handled;
   - "delay": the request is read first, then handled `seconds` later (a client that gave up
     meanwhile still had its work done, as on a slow server);
   - "save_then_drop": the request is handled, then the connection closed without an answer;
   - "hidden_save": the connection is closed at once, the request handled `seconds` later;
4. the call is logged (`app.state.calls`) before its answer, or the dropped connection, reaches
   the client, so a test can assert the exact sequence right after its calls.

The admin API (`admin_router`, under `/_sandbox`) is the same on every sandbox:
`POST/GET/DELETE /faults` (`{kind, path, method, times, seconds}`; 201 with the fault, 400 for a
bad one), `GET/DELETE /calls`, `GET /vouchers` (the books, as the sandbox lists them) and
`POST /reset` (the books, the faults and the call log; the optional JSON body's options go to the
sandbox). A sandbox adds its own routes to the router it gets back before including it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from kassebro.sandbox.common import (
    CallLog,
    Fault,
    FaultInjector,
    Receive,
    Scope,
    Send,
    buffered,
    drop_connection,
    save_later,
)

ADMIN_PREFIX = "/_sandbox"


def log_entry(scope: Scope, path: str, **extra: Any) -> dict[str, Any]:
    """A call log entry: method, path (under the API prefix), query, status (None = no answer,
    the connection dropped), request_id, fault and time; `extra` adds or replaces fields."""
    return {
        "method": scope["method"],
        "path": path,
        "query": scope.get("query_string", b"").decode("latin-1"),
        "status": None,
        "request_id": str(uuid.uuid4()),
        "fault": None,
        "time": dt.datetime.now().isoformat(timespec="milliseconds"),
        **extra,
    }


@dataclass
class ApiCall:
    """One API call on its way through the fault layer.

    `path` is what faults match and the log shows; `receive` the request's (a sandbox that read the
    body already gives a replaying one); `log_body` whether the log keeps the JSON body (never for
    credentials); `faultable` whether faults apply; `headers` go on every answer to the call;
    `context` is the sandbox's own (Fiken keeps the company lock there).
    """

    path: str
    entry: dict[str, Any]
    receive: Receive
    log_body: bool = True
    faultable: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


class SandboxApp(FastAPI):
    """A ledger sandbox: FastAPI plus the fault layer, the call log and the admin API's hooks.

    `app.state.faults` (FaultInjector), `app.state.calls` (CallLog) and `app.state.store` (the
    sandbox's books, set by its `create_app`) are there for in-process inspection.
    """

    json_response: type[JSONResponse] = JSONResponse  # answers of GET /calls and GET /vouchers
    log_decimals = True  # logged JSON bodies keep decimals as Decimal (the response class writes them)

    def __init__(self, *, title: str, **kwargs: Any) -> None:
        super().__init__(
            title=title,
            docs_url=f"{ADMIN_PREFIX}/docs",
            openapi_url=f"{ADMIN_PREFIX}/openapi.json",
            redoc_url=None,
            **kwargs,
        )
        self.state.faults = FaultInjector()
        self.state.calls = CallLog()

    # ---- what a sandbox declares ---------------------------------------------------------------

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        """The API call this HTTP request is, or None when it is not one (admin, docs)."""
        raise NotImplementedError

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        """The system's own answer to a "429" or "500" fault."""
        raise NotImplementedError

    def admit(self, call: ApiCall) -> Response | None:
        """A refusal before any fault (a rate limit, a concurrency rule), or None to go on."""
        return None

    def finish(self, call: ApiCall) -> None:
        """Runs once the call is over, whatever happened (release what `admit` took)."""

    def fault_path(self, path: str) -> str:
        """A fault's path as given to `POST /_sandbox/faults` -> as calls are logged."""
        return path

    def reset_books(self, options: dict[str, Any]) -> None:
        """`POST /_sandbox/reset`: empty the books; `options` is the request's JSON object."""
        raise NotImplementedError

    def voucher_listing(self, request: Request) -> Any:
        """`GET /_sandbox/vouchers`: the content to answer (or a ready Response)."""
        raise NotImplementedError

    # ---- the layer -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        call = await self.open_call(scope, receive) if scope["type"] == "http" else None
        if call is None:
            await super().__call__(scope, receive, send)
            return
        entry = call.entry
        chunks: list[bytes] = []
        recorded = False

        async def logged_receive() -> dict[str, Any]:
            message = await call.receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            if chunks and call.log_body:
                raw = b"".join(chunks)
                try:
                    entry["body"] = json.loads(raw.decode("utf-8"), parse_float=Decimal if self.log_decimals else None)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    entry["body"] = raw.decode("utf-8", "replace")
            self.state.calls.append(entry)

        async def tagged_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                if call.headers:
                    extra = [(k.encode(), v.encode()) for k, v in call.headers.items()]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                record()
            await send(message)

        handle = super().__call__
        request_receive: Receive = logged_receive
        try:
            refusal = self.admit(call)
            if refusal is not None:
                await refusal(scope, request_receive, tagged_send)
                return
            fault = self.state.faults.take(scope["method"], call.path) if call.faultable else None
            if fault is not None:
                entry["fault"] = fault.kind
            if fault is None:
                await handle(scope, request_receive, tagged_send)
            elif fault.kind in ("429", "500"):
                await self.fault_reply(fault, call)(scope, request_receive, tagged_send)
            elif fault.kind == "delay":
                request_receive = await buffered(request_receive)
                await asyncio.sleep(fault.seconds)
                await handle(scope, request_receive, tagged_send)
            elif fault.kind == "hidden_save":
                await save_later(handle, scope, request_receive, send, entry, fault.seconds)
            else:  # save_then_drop

                async def swallow(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        entry["saved_status"] = message["status"]

                await handle(scope, request_receive, swallow)
                entry["status"] = None
                record()
                if not drop_connection(send):
                    raise RuntimeError("save_then_drop needs the app to run under uvicorn")
        finally:
            self.finish(call)
            record()


def admin_router(app: SandboxApp) -> APIRouter:
    """The `/_sandbox` routes every sandbox has; the caller adds its own, then includes it."""
    router = APIRouter(prefix=ADMIN_PREFIX)
    answer: Callable[[Any], Response] = app.json_response

    @router.post("/faults")
    async def add_fault(request: Request) -> Response:
        body = await request.json()
        try:
            fault = app.state.faults.add(
                kind=str(body["kind"]),
                path=app.fault_path(str(body.get("path", "*"))),
                method=str(body.get("method", "*")),
                times=int(body.get("times", 1)),
                seconds=float(body.get("seconds", 1.0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(fault), status_code=201)

    @router.get("/faults")
    async def list_faults() -> Response:
        return JSONResponse({"faults": [asdict(f) for f in app.state.faults.list()]})

    @router.delete("/faults")
    async def clear_faults() -> Response:
        app.state.faults.clear()
        return Response(status_code=204)

    @router.get("/calls")
    async def calls() -> Response:
        return answer({"calls": app.state.calls.list()})

    @router.delete("/calls")
    async def clear_calls() -> Response:
        app.state.calls.clear()
        return Response(status_code=204)

    @router.get("/vouchers")
    async def vouchers(request: Request) -> Response:
        listing = app.voucher_listing(request)
        return listing if isinstance(listing, Response) else answer(listing)

    @router.post("/reset")
    async def reset(request: Request) -> Response:
        raw = await request.body()
        try:
            options = json.loads(raw) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": f"not JSON: {exc}"}, status_code=400)
        if not isinstance(options, dict):
            return JSONResponse({"error": "expected a JSON object of options"}, status_code=400)
        app.reset_books(options)
        app.state.faults.clear()
        app.state.calls.clear()
        return Response(status_code=204)

    return router
