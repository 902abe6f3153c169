"""A "Mystore-like" webshop API, with fault injection. The demo shop is "Mystore Demo": 14 days x 5
orders of `webshop_orders` up to today (`create_app`).

OUR INFERENCE, NOT MYSTORE'S API: Mystore publishes no API documentation we have, so every path,
parameter, field and error below is the shape we expect a Norwegian web shop platform's order API
to have, JSON:API flavoured (`{"data": {"type", "id", "attributes"}}`, `filter[...]`, `page[...]`,
`{"errors": [...]}`). A client written against it must be checked against the real API before use.

- Base `/api/v1`, auth `Authorization: Bearer <token>` (demo "mystore-demo-token"); without a valid
  one: 401 `{"errors":[{"status":"401","title":"Unauthorized"}]}` and `WWW-Authenticate: Bearer`.
  Answers are `application/vnd.api+json`; errors `{"errors":[{status, title, detail, source}]}`.
- `GET /orders`: `filter[updated_since]` (ISO 8601, inclusive: updated_at >= it; without an offset
  read in Oslo time), `filter[status]` (the merchant's status names, comma separated), `sort` (`id`
  default, `created_at`, `updated_at`, "-" for descending), `page[number]` (default 1),
  `page[size]` (default 50; above 100 it is served as 100, and `meta.page.size` says so). Answer
  `{"data": [...], "meta": {"page": {"total", "number", "size", "last"}}, "links": {"self",
  "first", "prev", "next", "last"}}`, prev/next null at the ends. A bad filter, sort or page: 400.
- `GET /orders/{id}` -> `{"data": {...}}` (404 when unknown); `PATCH /orders/{id}` with
  `{"data": {"type": "orders", "id": "...", "attributes": {"status": "Sendt"}}}`: a new status is
  appended to `status_history` and `updated_at` is now; an unknown status is a 422, a data.id other
  than the path's a 409; other attributes are ignored (not emulated).
- `GET /payment_methods` -> `{"data": [{id, name}]}`: kort (Kort), vipps, klarna, gavekort,
  faktura ("Faktura vedlagt"), b2b ("Faktura (bedrift)"). `GET /order_statuses` -> `{"data":
  [{name, is_completed}]}`: the merchant's own names, "Ny", "Under behandling", "Sendt" (the one
  completed status), "Kansellert", "Returnert" (returned and refunded in full after "Sendt").

An order's attributes: order_number, created_at, updated_at (ISO 8601 with the Oslo offset,
+01:00 or +02:00), currency "NOK", prices_include_vat, status, status_history [{status,
changed_at}], payment {method, title, captured_amount (null when nothing was taken at checkout:
invoice, b2b, cancelled), transaction_id}, customer {id (null for a guest), type "private" |
"company", first_name, last_name, company_name, organization_number, email, invoice_email, phone},
billing_address and shipping_address {address1, address2, postcode, city, country}, lines [{id,
sku, name, quantity, unit_price, vat_rate, discount_percent, total, vat_amount}], shipping {name,
price, vat_rate, vat_amount} or null, fees [same], discounts [{code, amount, vat_rate,
vat_amount}] (the coupon, one entry per VAT rate, amount positive), total, vat_total, refunds
[{id, amount, reason, created_at}], customer_note. Amounts are strings with 2 decimals, quantity
and rates too ("2.00", "25.00").

How total and vat_total are computed (the shop's convention, to the øre): every line `total`,
shipping and fee `price` and discount `amount` is in the shop's convention (VAT included when
prices_include_vat, else excluded); a line total is quantity x unit_price less discount_percent,
rounded half up. Each of them has its `vat_amount`, rounded to the øre half up on its own (out of
the gross amount: x rate / (100 + rate); or on top of the net one: x rate / 100). Then
  total     = sum(lines) + shipping + sum(fees) - sum(discounts)   (each VAT included: the amount
              itself when prices include VAT, else amount + vat_amount),
  vat_total = sum of the lines', shipping's and fees' vat_amount - the discounts' vat_amount.
captured_amount equals total except on an order with a capture difference.

Run it: `python -m kassebro.sandbox.mystore --port 8950`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API under `/_sandbox` (`webshop_app`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassebro.sandbox.admin import ApiCall
from kassebro.sandbox.common import Fault
from kassebro.sandbox.webshop_app import (
    Clock,
    JsonAnswer,
    WebshopSandbox,
    WebshopStore,
    demo_period,
    parse_moment,
    shop_main,
    utc_now,
    webshop_admin_router,
)
from kassebro.sandbox.webshop_orders import OSLO, Address, Customer, WebOrder, money, split

API_PREFIX = "/api/v1"
DEMO_TOKEN = "mystore-demo-token"
DEMO_SHOP = "Mystore Demo"
DEMO_SEED = 32
DEFAULT_PORT = 8950
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100

STATUS_NAMES = {
    "new": "Ny",
    "processing": "Under behandling",
    "completed": "Sendt",
    "cancelled": "Kansellert",
    "refunded": "Returnert",
}
COMPLETED = "Sendt"
PAYMENT_METHODS = {
    "card": ("kort", "Kort"),
    "vipps": ("vipps", "Vipps"),
    "klarna": ("klarna", "Klarna"),
    "giftcard": ("gavekort", "Gavekort"),
    "invoice": ("faktura", "Faktura vedlagt"),
    "b2b": ("b2b", "Faktura (bedrift)"),
}
SORTS = ("id", "created_at", "updated_at")


class MystoreError(Exception):
    """A JSON:API error answer."""

    def __init__(self, status: int, title: str, detail: str | None = None, source: dict[str, str] | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.source = status, title, detail, source

    def response(self) -> Response:
        error: dict[str, Any] = {"status": str(self.status), "title": self.title}
        if self.detail:
            error["detail"] = self.detail
        if self.source:
            error["source"] = self.source
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return ApiAnswer({"errors": [error]}, status_code=self.status, headers=headers)


class ApiAnswer(JsonAnswer):
    media_type = "application/vnd.api+json"


def bad_parameter(name: str, detail: str) -> MystoreError:
    return MystoreError(400, "Invalid query parameter", detail, {"parameter": name})


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(OSLO).isoformat(timespec="seconds")


def _address(a: Address) -> dict[str, Any]:
    return {
        "address1": a.address1,
        "address2": a.address2,
        "postcode": a.postcode,
        "city": a.city,
        "country": a.country,
    }


def _customer(c: Customer) -> dict[str, Any]:
    company = c.kind == "company"
    return {
        "id": str(c.id) if c.account else None,
        "type": c.kind,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "company_name": c.company if company else None,
        "organization_number": c.org_number if company else None,
        "email": c.email,
        "invoice_email": c.invoice_email or None,
        "phone": c.phone,
    }


def render(o: WebOrder) -> dict[str, Any]:
    """The order's attributes; total and vat_total as the module docstring says."""
    incl = o.prices_include_vat
    total = vat_total = 0

    def part(amount: int, rate: int, sign: int = 1) -> dict[str, str]:
        """The VAT fields of one amount, which is added to (sign 1) or taken off (-1) the totals."""
        nonlocal total, vat_total
        _, vat = split(amount, rate, incl)
        total += sign * (amount if incl else amount + vat)
        vat_total += sign * vat
        return {"vat_rate": f"{rate}.00", "vat_amount": money(vat)}

    lines = [
        {
            "id": str(n),
            "sku": line.product.sku,
            "name": line.product.name,
            "quantity": f"{line.quantity}.00",
            "unit_price": money(line.product.price),
            "discount_percent": f"{line.discount_percent}.00",
            "total": money(line.amount),
        }
        | part(line.amount, line.product.vat_rate)
        for n, line in enumerate(o.lines, start=1)
    ]
    shipping = None
    if o.shipping is not None:
        shipping = {"name": o.shipping.name, "price": money(o.shipping.price)} | part(
            o.shipping.price, o.shipping.vat_rate
        )
    fees = [{"name": f.name, "price": money(f.price)} | part(f.price, f.vat_rate) for f in o.fees]
    discounts = []
    for rate in sorted({line.product.vat_rate for line in o.lines}, reverse=True):
        amount = sum(line.coupon for line in o.lines if line.product.vat_rate == rate)
        if o.coupon is not None and amount:
            discounts.append({"code": o.coupon.code, "amount": money(amount)} | part(amount, rate, -1))
    method, title = PAYMENT_METHODS[o.payment_method]
    refunds = [
        {"id": f"{o.id}-{n}", "amount": money(total if r.amount is None else r.amount), "reason": r.reason}
        | {"created_at": iso(r.at)}
        for n, r in enumerate(sorted(o.refunds, key=lambda r: r.at), start=1)
    ]
    return {
        "order_number": str(o.id),
        "created_at": iso(o.created),
        "updated_at": iso(o.modified),
        "currency": "NOK",
        "prices_include_vat": incl,
        "status": STATUS_NAMES[o.status],
        "status_history": [{"status": STATUS_NAMES[s], "changed_at": iso(t)} for s, t in o.history],
        "payment": {
            "method": method,
            "title": title,
            "captured_amount": money(total + o.capture_delta) if o.captured else None,
            "transaction_id": o.transaction_id or None,
        },
        "customer": _customer(o.customer),
        "billing_address": _address(o.customer.address),
        "shipping_address": _address(o.shipping_address),
        "lines": lines,
        "shipping": shipping,
        "fees": fees,
        "discounts": discounts,
        "total": money(total),
        "vat_total": money(vat_total),
        "refunds": refunds,
        "customer_note": o.customer_note or None,
    }


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


@dataclass
class Record:
    id: int
    attributes: dict[str, Any]
    created: dt.datetime  # UTC
    updated: dt.datetime  # UTC


class MystoreStore(WebshopStore):
    def clear(self) -> None:
        self.records: dict[int, Record] = {}

    def add(self, order: WebOrder) -> None:
        with self.lock:
            self.records[order.id] = Record(order.id, render(order), order.created, order.modified)

    def order_ids(self) -> list[int]:
        return list(self.records)

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            return [resource(r) for r in self.records.values()]

    def get(self, raw_id: str) -> Record:
        record = self.records.get(int(raw_id)) if raw_id.isdigit() else None
        if record is None:
            raise MystoreError(404, "Not Found", f"Order {raw_id} not found.")
        return record

    def set_status(self, record: Record, status: str, now: dt.datetime) -> None:
        with self.lock:
            attributes = record.attributes
            record.updated = now
            attributes["updated_at"] = iso(now)
            if status != attributes["status"]:
                attributes["status"] = status
                attributes["status_history"].append({"status": status, "changed_at": iso(now)})


def resource(record: Record, base: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "orders", "id": str(record.id), "attributes": record.attributes}
    if base:
        out["links"] = {"self": f"{base}/orders/{record.id}"}
    return out


def _positive(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise bad_parameter(name, f"{name} must be a positive integer.")
    return int(raw)


def select(records: Iterable[Record], request: Request) -> list[Record]:
    """The records `GET /orders` matches, sorted (see the module docstring)."""
    query = request.query_params
    for name in query:
        if name.startswith("filter[") and name not in ("filter[updated_since]", "filter[status]"):
            raise bad_parameter(name, f"Unknown filter {name}.")
    found = list(records)
    if query.get("filter[updated_since]"):
        try:
            since = parse_moment(query["filter[updated_since]"])
        except ValueError:
            raise bad_parameter("filter[updated_since]", "Expected an ISO 8601 date-time.") from None
        found = [r for r in found if r.updated >= since]
    if query.get("filter[status]"):
        known = {name.casefold(): name for name in STATUS_NAMES.values()}
        wanted = set()
        for name in query["filter[status]"].split(","):
            if name.strip().casefold() not in known:
                raise bad_parameter("filter[status]", f"Unknown status {name.strip()!r}; see /order_statuses.")
            wanted.add(known[name.strip().casefold()])
        found = [r for r in found if r.attributes["status"] in wanted]
    sort = query.get("sort", "id")
    if sort.removeprefix("-") not in SORTS:
        raise bad_parameter("sort", f"sort must be one of {', '.join(SORTS)}, '-' for descending.")
    keys = {"id": lambda r: r.id, "created_at": lambda r: (r.created, r.id)}
    found.sort(key=keys.get(sort.removeprefix("-"), lambda r: (r.updated, r.id)), reverse=sort.startswith("-"))
    return found


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


class MystoreSandbox(WebshopSandbox):
    """The Mystore-like app behind the shared fault layer; paths under /api/v1."""

    api_prefix = API_PREFIX
    json_response = ApiAnswer

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        if fault.kind == "429":
            response = MystoreError(429, "Too Many Requests").response()
            response.headers["Retry-After"] = str(max(1, int(fault.seconds)))
            return response
        return MystoreError(500, "Internal Server Error").response()


def create_app(
    orders: Iterable[WebOrder] | None = None,
    *,
    seed: int = DEMO_SEED,
    last_day: dt.date | None = None,
    days: int = 14,
    per_day: int = 5,
    customers: int = 30,
    prices_include_vat: bool = True,
    now: dt.datetime | None = None,
    tokens: Iterable[str] = (DEMO_TOKEN,),
    first_id: int = 10001,
    clock: Clock = utc_now,
) -> MystoreSandbox:
    """Build the Mystore-like sandbox for one shop ("Mystore Demo").

    Args:
      orders: the shop's orders (`webshop_orders.WebOrder`; [] for an empty shop); None = the demo:
        `days` x `per_day` orders from `seed` with `customers` customers, ending on `last_day`
        (default today, seen at `now`, default the clock's now, so orders later today are not there).
      prices_include_vat: whether the shop keeps its prices with VAT included.
      tokens: accepted bearer tokens; first_id: the first demo order id; clock: "now" for PATCH.

    `app.state.store` (MystoreStore), `app.state.faults` and `app.state.calls` are there for
    in-process inspection.
    """
    last_day, now = demo_period(last_day, now, clock)
    store = MystoreStore(
        seed=seed,
        last_day=last_day,
        days=days,
        per_day=per_day,
        customers=customers,
        prices_include_vat=prices_include_vat,
        first_id=first_id,
        now=now,
        orders=orders,
    )
    app = MystoreSandbox(title=f"Mystore-like sandbox: {DEMO_SHOP} (kassebro; the API shape is inferred)")
    app.state.store = store
    accepted = set(tokens)

    @app.exception_handler(MystoreError)
    async def mystore_error(request: Request, exc: MystoreError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = "Not Found" if exc.status_code == 404 else str(exc.detail)
        return MystoreError(exc.status_code, title).response()

    def authenticated(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in accepted:
            raise MystoreError(401, "Unauthorized")

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authenticated)], default_response_class=ApiAnswer)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + API_PREFIX

    @api.get("/orders")
    async def list_orders(request: Request) -> Response:
        number = _positive(request, "page[number]", 1)
        size = min(_positive(request, "page[size]", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        with store.lock:
            found = select(store.records.values(), request)
            data = [resource(r, base(request)) for r in found[(number - 1) * size : number * size]]
        last = max(1, math.ceil(len(found) / size))

        def page(n: int | None) -> str | None:
            return None if n is None else str(request.url.include_query_params(**{"page[number]": n}))

        links = {
            "self": str(request.url),
            "first": page(1),
            "prev": page(number - 1 if 1 < number <= last + 1 else None),
            "next": page(number + 1 if number < last else None),
            "last": page(last),
        }
        meta = {"page": {"total": len(found), "number": number, "size": size, "last": last}}
        return ApiAnswer({"data": data, "meta": meta, "links": links})

    @api.get("/orders/{raw_id}")
    async def get_order(raw_id: str, request: Request) -> Response:
        with store.lock:
            return ApiAnswer({"data": resource(store.get(raw_id), base(request))})

    @api.patch("/orders/{raw_id}")
    async def patch_order(raw_id: str, request: Request) -> Response:
        record = store.get(raw_id)
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MystoreError(400, "Invalid JSON", "The request body is not valid JSON.") from None
        data = body.get("data") if isinstance(body, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(attributes, dict):
            raise MystoreError(400, "Invalid document", "Expected {data: {attributes: {...}}}.", {"pointer": "/data"})
        if data.get("id") is not None and str(data["id"]) != str(record.id):  # type: ignore[union-attr]
            raise MystoreError(
                409, "Conflict", "data.id does not match the order in the path.", {"pointer": "/data/id"}
            )
        if "status" in attributes:
            names = {name.casefold(): name for name in STATUS_NAMES.values()}
            status = names.get(str(attributes["status"]).casefold())
            if status is None:
                detail = f"Unknown status {attributes['status']!r}; see /order_statuses."
                raise MystoreError(422, "Invalid status", detail, {"pointer": "/data/attributes/status"})
            store.set_status(record, status, clock())
        return ApiAnswer({"data": resource(record, base(request))})

    @api.get("/payment_methods")
    async def payment_methods() -> Response:
        return ApiAnswer({"data": [{"id": i, "name": name} for i, name in PAYMENT_METHODS.values()]})

    @api.get("/order_statuses")
    async def order_statuses() -> Response:
        names = STATUS_NAMES.values()
        return ApiAnswer({"data": [{"name": name, "is_completed": name == COMPLETED} for name in names]})

    app.include_router(api)
    app.include_router(webshop_admin_router(app))
    return app


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.mystore --port 8950`; SIGTERM stops it cleanly."""
    return shop_main(
        argv,
        what="Mystore-like webshop sandbox",
        default_port=DEFAULT_PORT,
        seed=DEMO_SEED,
        create_app=create_app,
        label="Mystore-like sandbox on {url}" + API_PREFIX,
    )


if __name__ == "__main__":
    sys.exit(main())
