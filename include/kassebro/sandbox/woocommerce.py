"""A local emulator of the WooCommerce REST API v3 (`/wp-json/wc/v3`), for the subset an accounting
integration reads, with fault injection. The demo shop is "Nettbutikk Fjord": 14 days x 6 orders
of `webshop_orders` up to today (`create_app`).

Documented by WooCommerce and followed here (woocommerce.github.io/woocommerce-rest-api-docs, and
the REST controllers of woocommerce/woocommerce where the docs say less):

- Auth over HTTPS: HTTP Basic consumer_key:consumer_secret, or the `consumer_key` and
  `consumer_secret` query parameters. No or unknown key: 401 `woocommerce_rest_cannot_view` ("Sorry,
  you cannot list resources." / "... view this resource."; `woocommerce_rest_cannot_edit` for a
  PUT); a known key with the wrong secret: 401 `woocommerce_rest_authentication_error` "Consumer
  secret is invalid.". Errors are `{code, message, data: {status}}`; unknown routes `rest_no_route`.
- `GET /orders`: `page` (default 1), `per_page` (default 10, 1-100: 101 is a 400
  `rest_invalid_param`, as WordPress validates the schema's maximum, not a silent cap), `offset`,
  `status` (comma list or `status[]`, `any` = all), `after`/`before` (date_created),
  `modified_after`/`modified_before` (date_modified), all exclusive, read in the site's time zone
  (Europe/Oslo) unless `dates_are_gmt=true` or the value has an offset; `include`, `exclude`,
  `customer`, `orderby` (`date` default, `id`, `include`, `modified`; `title`/`slug` sort by id
  here), `order` (`desc` default), ties broken by id. Headers `X-WP-Total`, `X-WP-TotalPages` and a
  `Link` with rel="prev"/"next". A page past the last is an empty list.
- `GET /orders/{id}` (404 `woocommerce_rest_shop_order_invalid_id`), `PUT /orders/{id}` with
  `{"status": ...}`: the status changes, `date_modified` is now, `date_completed` is set on
  "completed", `date_paid` on "processing"/"completed" when not yet paid (WC_Order's status
  transition), and a system note "Order status changed from Processing to Completed." is added
  (labels as WooCommerce writes them). Other fields in the body are ignored (not emulated).
- `GET /orders/{id}/notes` (newest first; `type` any/customer/internal), `GET /orders/{id}/refunds`
  (newest first: amount, reason, refunded_payment, line_items of a line refund with negative
  quantities and the `_refunded_item_id` meta), `GET /customers/{id}` (registered customers; a
  guest has customer_id 0 and no customer), `GET /payment_gateways`, `GET /taxes`.
- The order JSON, its totals (to the øre, in WooCommerce's convention: line `total`s exclude tax
  also with prices incl. VAT), notes, refunds, gateways and tax rates: `woocommerce_orders`, with
  what is INFERRED there (the `_billing_org_number` and `_captured_amount` meta, gateway ids).

INFERRED: a 429 fault answers `rest_too_many_requests` with Retry-After (WooCommerce has no rate
limit of its own; hosts add one); a 500 fault answers WordPress's critical-error body.

Run it: `python -m kassebro.sandbox.woocommerce --port 8940`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API under `/_sandbox` (`webshop_app`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Iterable
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
from kassebro.sandbox.webshop_orders import OSLO, UTC, WebOrder
from kassebro.sandbox.woocommerce_orders import (
    GATEWAYS,
    PAID_STATUSES,
    STATUS_LABELS,
    TAX_RATES,
    Ids,
    Record,
    gateway_json,
    note,
    render,
    set_date,
    status_flags,
    tax_rate_json,
    user_id,
    wc_address,
)

API_PREFIX = "/wp-json/wc/v3"
DEMO_CONSUMER_KEY = "ck_demo"
DEMO_CONSUMER_SECRET = "cs_demo"
DEMO_SHOP = "Nettbutikk Fjord"
DEMO_SEED = 37
DEFAULT_PORT = 8940
MAX_PER_PAGE = 100


class WooError(Exception):
    """A WordPress REST error: `{code, message, data: {status, ...}}`."""

    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def response(self) -> Response:
        body = {"code": self.code, "message": self.message, "data": {"status": self.status, **self.data}}
        return JsonAnswer(body, status_code=self.status)


def invalid_param(name: str, message: str) -> WooError:
    return WooError(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: message})


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class WooStore(WebshopStore):
    """The shop's orders as WooCommerce keeps them (`Record`), and its registered customers."""

    def clear(self) -> None:
        self.seq = Ids()  # the id sequences restart with the books
        self.records: dict[int, Record] = {}

    def add(self, order: WebOrder) -> None:
        with self.lock:
            self.records[order.id] = render(order, self.seq)

    def order_ids(self) -> list[int]:
        return list(self.records)

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.doc for r in self.records.values()]

    def get(self, order_id: int) -> Record:
        record = self.records.get(order_id)
        if record is None:
            raise WooError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return record

    def set_status(self, order_id: int, status: str, now: dt.datetime) -> dict[str, Any]:
        with self.lock:
            record = self.get(order_id)
            doc, before = record.doc, record.doc["status"]
            record.modified = now
            set_date(doc, "date_modified", now)
            if status != before:
                doc["status"] = status
                text = f"Order status changed from {STATUS_LABELS[before]} to {STATUS_LABELS[status]}."
                record.notes.insert(0, note(self.seq, now, text))
                if status == "completed":
                    set_date(doc, "date_completed", now)
                if status in PAID_STATUSES and doc["date_paid"] is None:
                    set_date(doc, "date_paid", now)
                status_flags(doc)
            return doc

    def customer(self, customer_id: int) -> dict[str, Any]:
        found = next((c for c in self.pool if c.account and user_id(c) == customer_id), None)
        if found is None:
            raise WooError(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
        out: dict[str, Any] = {"id": customer_id}
        set_date(out, "date_created", found.registered)
        set_date(out, "date_modified", found.registered)
        meta = (
            [{"id": customer_id, "key": "_billing_org_number", "value": found.org_number}] if found.org_number else []
        )
        return out | {
            "email": found.email,
            "first_name": found.first_name,
            "last_name": found.last_name,
            "role": "customer",
            "username": found.email.split("@")[0],
            "billing": wc_address(found, True, found.address),
            "shipping": wc_address(found, False, found.address),
            "is_paying_customer": True,
            "avatar_url": "",
            "meta_data": meta,
        }


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------

ORDERBY = ("date", "id", "include", "title", "slug", "modified")


def _values(request: Request, name: str) -> list[str]:
    raw = request.query_params.getlist(name) + request.query_params.getlist(name + "[]")
    return [v.strip() for value in raw for v in value.split(",") if v.strip()]


def _integer(request: Request, name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_param(name, f"{name} is not of type integer.") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} (inclusive) and {high} (inclusive)" if high else f"greater than or equal to {low}"
        raise invalid_param(name, f"{name} must be {bounds}")
    return value


def _ids(request: Request, name: str) -> list[int]:
    try:
        return [int(v) for v in _values(request, name)]
    except ValueError:
        raise invalid_param(name, f"{name}[0] is not of type integer.") from None


def select(records: Iterable[Record], request: Request) -> list[Record]:
    """The records `GET /orders` matches, in the order asked for (see the module docstring)."""
    query = request.query_params
    statuses = _values(request, "status") or ["any"]
    for status in statuses:
        if status != "any" and status not in STATUS_LABELS and status != "trash":
            allowed = ", ".join(["any", "trash", *STATUS_LABELS])
            raise invalid_param("status", f"status[0] is not one of {allowed}.")
    zone = UTC if query.get("dates_are_gmt", "").lower() in ("1", "true") else OSLO
    bounds: list[tuple[str, Callable[[Record], bool]]] = []
    for name, field, after in (
        ("after", "created", True),
        ("before", "created", False),
        ("modified_after", "modified", True),
        ("modified_before", "modified", False),
    ):
        if query.get(name):
            try:
                moment = parse_moment(query[name], naive_zone=zone)
            except ValueError:
                raise invalid_param(name, "Invalid date.") from None
            if after:
                bounds.append((name, lambda r, f=field, m=moment: getattr(r, f) > m))
            else:
                bounds.append((name, lambda r, f=field, m=moment: getattr(r, f) < m))
    include, exclude = _ids(request, "include"), set(_ids(request, "exclude"))
    customer = _integer(request, "customer", None, 0)
    orderby = query.get("orderby", "date")
    if orderby not in ORDERBY:
        raise invalid_param("orderby", f"orderby is not one of {', '.join(ORDERBY)}.")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_param("order", "order is not one of asc and desc.")
    found = [
        r
        for r in records
        if ("any" in statuses or r.doc["status"] in statuses)
        and all(test(r) for _, test in bounds)
        and (not include or r.doc["id"] in include)
        and r.doc["id"] not in exclude
        and (customer is None or r.doc["customer_id"] == customer)
    ]
    keys: dict[str, Callable[[Record], Any]] = {
        "date": lambda r: (r.created, r.doc["id"]),
        "modified": lambda r: (r.modified, r.doc["id"]),
        "include": lambda r: include.index(r.doc["id"]) if include else r.doc["id"],
    }
    found.sort(key=keys.get(orderby, lambda r: r.doc["id"]), reverse=order == "desc" and orderby != "include")
    return found


def _with_links(doc: dict[str, Any], base: str) -> dict[str, Any]:
    links = {
        "self": [{"href": f"{base}/orders/{doc['id']}"}],
        "collection": [{"href": f"{base}/orders"}],
    }
    if doc["customer_id"]:
        links["customer"] = [{"href": f"{base}/customers/{doc['customer_id']}"}]
    return doc | {"_links": links}


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------

CRITICAL_ERROR = (
    '<p>There has been a critical error on this website.</p><p><a href="https://wordpress.org/'
    'documentation/article/faq-troubleshooting/">Learn more about troubleshooting WordPress.</a></p>'
)


class WooSandbox(WebshopSandbox):
    """The WooCommerce app behind the shared fault layer; paths under /wp-json/wc/v3."""

    api_prefix = API_PREFIX
    secret_query_keys = ("consumer_key", "consumer_secret")

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        if fault.kind == "429":
            seconds = max(1, int(fault.seconds))
            error = WooError(429, "rest_too_many_requests", "Too many requests. Please try again later.")
            response = error.response()
            response.headers["Retry-After"] = str(seconds)
            return response
        body = {"code": "internal_server_error", "message": CRITICAL_ERROR, "data": {"status": 500}}
        return JsonAnswer(body | {"additional_errors": []}, status_code=500)


def create_app(
    orders: Iterable[WebOrder] | None = None,
    *,
    seed: int = DEMO_SEED,
    last_day: dt.date | None = None,
    days: int = 14,
    per_day: int = 6,
    customers: int = 40,
    prices_include_vat: bool = True,
    now: dt.datetime | None = None,
    keys: dict[str, str] | None = None,
    first_id: int = 4101,
    clock: Clock = utc_now,
) -> WooSandbox:
    """Build the WooCommerce sandbox for one shop ("Nettbutikk Fjord").

    Args:
      orders: the shop's orders (`webshop_orders.WebOrder`; [] for an empty shop); None = the demo:
        `days` x `per_day` orders from `seed` with `customers` customers, ending on `last_day`
        (default today, seen at `now`, default the clock's now, so orders later today are not there).
      prices_include_vat: the shop's "prices entered with tax" setting.
      keys: consumer_key -> consumer_secret accepted (default ck_demo/cs_demo).
      first_id: the first demo order id; clock: what "now" is for PUT (aware datetimes).

    `app.state.store` (WooStore), `app.state.faults` and `app.state.calls` are there for in-process
    inspection.
    """
    last_day, now = demo_period(last_day, now, clock)
    store = WooStore(
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
    app = WooSandbox(title=f"WooCommerce sandbox: {DEMO_SHOP} (kassebro)")
    app.state.store = store
    accepted = dict(keys or {DEMO_CONSUMER_KEY: DEMO_CONSUMER_SECRET})

    @app.exception_handler(WooError)
    async def woo_error(request: Request, exc: WooError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def no_route(request: Request, exc: StarletteHTTPException) -> Response:
        return WooError(404, "rest_no_route", "No route was found matching the URL and request method.").response()

    def authenticated(action: str) -> Callable[[Request], None]:
        def check(request: Request) -> None:
            key, secret = request.query_params.get("consumer_key"), request.query_params.get("consumer_secret")
            header = request.headers.get("authorization", "")
            if header[:6].lower() == "basic ":
                try:
                    key, _, secret = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    key = secret = None
            if key in accepted and secret and accepted[key] != secret:
                raise WooError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
            if key not in accepted or accepted[key] != secret:
                if action == "edit":
                    message = "Sorry, you are not allowed to edit this resource."
                    raise WooError(401, "woocommerce_rest_cannot_edit", message)
                message = (
                    "Sorry, you cannot list resources." if action == "list" else "Sorry, you cannot view this resource."
                )
                raise WooError(401, "woocommerce_rest_cannot_view", message)

        return check

    listing, viewing, editing = (Depends(authenticated(a)) for a in ("list", "view", "edit"))
    api = APIRouter(prefix=API_PREFIX, default_response_class=JsonAnswer)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + API_PREFIX

    def order_id(raw: str) -> int:
        if not raw.isdigit():
            raise WooError(404, "rest_no_route", "No route was found matching the URL and request method.")
        return int(raw)

    @api.get("/orders", dependencies=[listing])
    async def list_orders(request: Request) -> Response:
        per_page = _integer(request, "per_page", 10, 1, MAX_PER_PAGE)
        page = _integer(request, "page", 1, 1)
        offset = _integer(request, "offset", None, 0)
        assert per_page is not None and page is not None
        with store.lock:
            found = select(list(store.records.values()), request)
            start = offset if offset is not None else (page - 1) * per_page
            docs = [_with_links(r.doc, base(request)) for r in found[start : start + per_page]]
        pages = math.ceil(len(found) / per_page)
        links = []
        if page > 1:
            links.append(f'<{request.url.include_query_params(page=min(page - 1, max(pages, 1)))}>; rel="prev"')
        if pages > page:
            links.append(f'<{request.url.include_query_params(page=page + 1)}>; rel="next"')
        headers = {"X-WP-Total": str(len(found)), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return JsonAnswer(docs, headers=headers)

    @api.get("/orders/{raw_id}", dependencies=[viewing])
    async def get_order(raw_id: str, request: Request) -> Response:
        with store.lock:
            return JsonAnswer(_with_links(store.get(order_id(raw_id)).doc, base(request)))

    @api.put("/orders/{raw_id}", dependencies=[editing])
    async def update_order(raw_id: str, request: Request) -> Response:
        try:
            body = json.loads((await request.body()) or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WooError(400, "rest_invalid_json", "Invalid JSON body passed.") from None
        status = body.get("status") if isinstance(body, dict) else None
        found_id = order_id(raw_id)
        store.get(found_id)  # 404 before 400, as WooCommerce checks the order first
        if status is not None:
            status = str(status).removeprefix("wc-")
            if status not in STATUS_LABELS:
                raise invalid_param("status", f"status is not one of {', '.join(STATUS_LABELS)}.")
            doc = store.set_status(found_id, status, clock())
        else:
            doc = store.get(found_id).doc
        return JsonAnswer(_with_links(doc, base(request)))

    @api.get("/orders/{raw_id}/notes", dependencies=[listing])
    async def notes(raw_id: str, request: Request) -> Response:
        record = store.records.get(order_id(raw_id))
        if record is None:
            raise WooError(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
        kind = request.query_params.get("type", "any")
        wanted = [n for n in record.notes if kind == "any" or n["customer_note"] == (kind == "customer")]
        return JsonAnswer(wanted)

    @api.get("/orders/{raw_id}/refunds", dependencies=[listing])
    async def refunds(raw_id: str) -> Response:
        record = store.records.get(order_id(raw_id))
        if record is None:
            raise WooError(404, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
        return JsonAnswer(record.refunds, headers={"X-WP-Total": str(len(record.refunds)), "X-WP-TotalPages": "1"})

    @api.get("/customers/{raw_id}", dependencies=[viewing])
    async def customer(raw_id: str) -> Response:
        return JsonAnswer(store.customer(order_id(raw_id)))

    @api.get("/payment_gateways", dependencies=[listing])
    async def gateways(request: Request) -> Response:
        return JsonAnswer([gateway_json(i, g, base(request)) for i, g in enumerate(GATEWAYS.values())])

    @api.get("/taxes", dependencies=[listing])
    async def taxes(request: Request) -> Response:
        wanted = request.query_params.get("class")
        rows = [tax_rate_json(t) for t in TAX_RATES.values() if wanted in (None, t.tax_class)]
        return JsonAnswer(rows, headers={"X-WP-Total": str(len(rows)), "X-WP-TotalPages": "1"})

    app.include_router(api)
    app.include_router(webshop_admin_router(app))
    return app


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.woocommerce --port 8940`; SIGTERM stops it cleanly."""
    return shop_main(
        argv,
        what="WooCommerce REST API v3 sandbox",
        default_port=DEFAULT_PORT,
        seed=DEMO_SEED,
        create_app=create_app,
        label="WooCommerce sandbox on {url}" + API_PREFIX,
    )


if __name__ == "__main__":
    sys.exit(main())
