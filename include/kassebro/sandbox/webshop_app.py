"""What the two webshop sandboxes (`woocommerce.py`, `mystore.py`) share: the store skeleton that
seeds demo orders from `webshop_orders` and adds generated ones, the app base behind the shared fault
layer (`admin.SandboxApp`) and the `/_sandbox` admin routes with `POST /_sandbox/orders/generate`.

Admin API (beside the shared faults, calls and reset of `admin.admin_router`):

- `POST /_sandbox/orders/generate {"count": N, "day": "YYYY-MM-DD", "seed": S, "now": ISO}`: N more
  orders placed on that day (Oslo time) by the shop's own customers, ids after the highest one;
  `seed` defaults to the next id, `now` (when they are seen, so how far their story got) to the end
  of that day. 201 `{"created": N, "ids": [...]}`, 400 for a bad body. 1,000 at once is fine.
- `POST /_sandbox/reset`: back to the demo orders (`{"empty": true}`: no orders at all).
- `GET /_sandbox/vouchers`: the orders, as the shop renders them (`{"orders": [...]}`).
- A status is set with the shop's own API (WooCommerce PUT, Mystore PATCH).

Fault paths and logged paths are under the API prefix ("/orders", "/orders/4101"); a fault given
with the prefix is stripped to that. Secrets in the query string are logged as "***".
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kassebro.sandbox.admin import ApiCall, SandboxApp, admin_router, log_entry
from kassebro.sandbox.common import Receive, Scope
from kassebro.sandbox.tripletex import dumps
from kassebro.sandbox.webshop_orders import OSLO, UTC, Customer, WebOrder, customer_pool, generate_orders

MAX_GENERATE = 100_000
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def end_of(day: dt.date) -> dt.datetime:
    """23:59:59 Oslo time on `day`, in UTC."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), OSLO).astimezone(UTC)


def parse_moment(text: str, *, naive_zone: dt.tzinfo = OSLO) -> dt.datetime:
    """An ISO 8601 date or date-time as UTC; one without an offset is read in `naive_zone`.
    ValueError when it is none."""
    moment = dt.datetime.fromisoformat(text.strip().replace(" ", "+"))  # a "+" unescaped in a query is a space
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment.astimezone(UTC)


class JsonAnswer(JSONResponse):
    """JSON with Decimal written as a plain number (never through float)."""

    media_type = "application/json; charset=UTF-8"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


class WebshopStore:
    """A shop's orders: the neutral demo orders rendered once into the shop's own records (a real
    shop keeps its orders too), then changed by the API. Thread-safe; memory only.

    A shop subclass implements `add` (render and keep one order), `clear`, `order_ids` and `listing`.
    """

    def __init__(
        self,
        *,
        seed: int,
        last_day: dt.date,
        days: int,
        per_day: int,
        customers: int,
        prices_include_vat: bool,
        first_id: int,
        now: dt.datetime,
        orders: Iterable[WebOrder] | None,
    ) -> None:
        self.lock = threading.RLock()
        self.prices_include_vat = prices_include_vat
        self.first_id = first_id
        first_day = last_day - dt.timedelta(days=days - 1)
        self.pool: list[Customer] = customer_pool(seed, customers, before=first_day)
        given = None if orders is None else list(orders)

        def demo() -> list[WebOrder]:
            if given is not None:
                return given
            return generate_orders(
                seed,
                first_day,
                days,
                per_day,
                self.pool,
                prices_include_vat=prices_include_vat,
                first_id=first_id,
                now=now,
            )

        self.demo_orders = demo  # the neutral orders the shop starts from (and resets to)
        self.reset()

    # ---- what a shop implements ----------------------------------------------------------------

    def add(self, order: WebOrder) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def order_ids(self) -> list[int]:
        raise NotImplementedError

    def listing(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    # ---- shared --------------------------------------------------------------------------------

    def reset(self, *, empty: bool = False) -> None:
        with self.lock:
            self.clear()
            for order in [] if empty else self.demo_orders():
                self.add(order)

    def generate(self, count: int, day: dt.date, seed: int | None, now: dt.datetime | None) -> list[int]:
        with self.lock:
            first_id = max(self.order_ids(), default=self.first_id - 1) + 1
            orders = generate_orders(
                first_id if seed is None else seed,
                day,
                1,
                count,
                self.pool,
                prices_include_vat=self.prices_include_vat,
                first_id=first_id,
                now=end_of(day) if now is None else now,
            )
            for order in orders:
                self.add(order)
            return [o.id for o in orders]


class WebshopSandbox(SandboxApp):
    """A webshop API behind the shared fault layer: calls under `api_prefix` are API calls, logged
    and matched by faults with the path under the prefix; `secret_query_keys` are logged as ***."""

    api_prefix = ""
    secret_query_keys: tuple[str, ...] = ()
    json_response = JsonAnswer

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        path = scope["path"]
        if not (path == self.api_prefix or path.startswith(self.api_prefix + "/")):
            return None
        sub_path = path[len(self.api_prefix) :] or "/"
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        query = urlencode([(k, "***" if k in self.secret_query_keys else v) for k, v in pairs], safe="*")
        return ApiCall(sub_path, log_entry(scope, sub_path, query=query), receive)

    def fault_path(self, path: str) -> str:
        if path.startswith(self.api_prefix + "/"):
            return path[len(self.api_prefix) :]
        return path

    def reset_books(self, options: dict[str, Any]) -> None:
        self.state.store.reset(empty=bool(options.get("empty")))

    def voucher_listing(self, request: Request) -> Any:
        return {"orders": self.state.store.listing()}


def webshop_admin_router(app: WebshopSandbox) -> APIRouter:
    """The shared `/_sandbox` routes plus `POST /_sandbox/orders/generate`."""
    router = admin_router(app)

    @router.post("/orders/generate")
    async def generate(request: Request) -> Response:
        try:
            body = json.loads((await request.body()) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            count = body.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_GENERATE:
                raise ValueError(f"count must be an integer from 1 to {MAX_GENERATE}")
            day = dt.date.fromisoformat(str(body["day"])) if body.get("day") else utc_now().astimezone(OSLO).date()
            seed = body.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ValueError("seed must be an integer")
            now = parse_moment(str(body["now"])) if body.get("now") else None
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        ids = app.state.store.generate(count, day, seed, now)
        return JSONResponse({"created": len(ids), "ids": ids}, status_code=201)

    return router


def demo_period(last_day: dt.date | None, now: dt.datetime | None, clock: Clock) -> tuple[dt.date, dt.datetime]:
    """The demo's last day and the moment its orders are seen: by default today and the clock's
    now (so today's later orders are not there yet); a given last day alone is seen at its end."""
    if last_day is None:
        moment = now or clock()
        return moment.astimezone(OSLO).date(), moment
    return last_day, now or end_of(last_day)


def shop_main(
    argv: list[str] | None, *, what: str, default_port: int, seed: int, create_app: Callable[..., Any], label: str
) -> int:
    """A webshop emulator's command line (`python -m kassebro.sandbox.<shop> --port N`), the same
    for each shop: the demo's seed, last day and price convention; SIGTERM stops it cleanly."""
    from kassebro.sandbox.server import sandbox_parser, serve_until_stopped

    parser = sandbox_parser(f"Run the {what}.", default_port, "not used: the shop starts from its demo")
    parser.add_argument("--seed", type=int, default=seed, help="the demo orders' seed")
    parser.add_argument("--last-day", help="the demo's last day, YYYY-MM-DD (default today)")
    parser.add_argument("--prices-excl-vat", action="store_true", help="a shop keeping prices excluding VAT")
    args = parser.parse_args(argv)
    app = create_app(
        seed=args.seed,
        last_day=dt.date.fromisoformat(args.last_day) if args.last_day else None,
        prices_include_vat=not args.prices_excl_vat,
    )
    return serve_until_stopped(app, args, lambda url: label.format(url=url))
