"""A webshop backfill (issue 12): 1,000 completed web orders into Tripletex, as one scheduled run.

The shop is the WooCommerce emulator holding `orders` completed orders (the demo generator's,
every payment path, returning customers and guests, mixed VAT, coupons, shipping and fees); the
ledger is the Tripletex sandbox; both run in this process and answer over real HTTP. kassebro's run
is `transfer_new`, the DAG task's function, with a fresh Tripletex client and a fresh SQLite
journal: reading the shop, drafting each order, finding or creating its customer, looking the order
up, creating it, invoicing it (paid or not) or leaving it open, recording each step.

The reference, in the same run and against the same two servers: the same shop pages fetched with
plain `requests`, then per order the Tripletex calls the transfer makes: for a customer met the first
time the same customer searches and the create, then the `GET /order` lookup, `POST /order` and
`PUT /order/{id}/:invoice` where the method invoices; bodies built beforehand, nothing recorded. The
figures count only if the backfill is right: every order done, one Tripletex order each, every
invoice's amount the shop's total to the øre, and a second run that sends nothing.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

SEED = 1212
METHODS = {
    "stripe": {"transfer": "paid_invoice", "payment_type": "Bankkort"},
    "vipps": {"transfer": "paid_invoice", "payment_type": "Vipps"},
    "klarna": {"transfer": "paid_invoice", "payment_type": "Klarna"},
    "giftcard": {"transfer": "paid_invoice", "payment_type": "Gavekort"},
    "invoice": {"transfer": "invoice", "send_invoice": True},
    "bacs": {"transfer": "order"},
}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SystemExit(f"webshop benchmark: {message}")


def completed_orders(count: int) -> list[Any]:
    """`count` completed demo orders (the generator's mix), placed over the days before today."""
    from kassebro.sandbox.webshop_orders import generate_orders

    days = max(3, count // 100 + 2)
    first = dt.date.today() - dt.timedelta(days=days + 5)
    generated = generate_orders(SEED, first, days, per_day=count * 3 // (2 * days) + 10, customers=max(40, count // 4))
    done = [o for o in generated if o.history[-1][0] == "completed"]
    _require(len(done) >= count, f"the generator gave {len(done)} completed orders, {count} wanted")
    return done[:count]


def _shop_config() -> Any:
    from kassebro.config.webshop import Webshop

    return Webshop.model_validate(
        {
            "id": "bench_shop",
            "name": "Bench Shop",
            "source": {"kind": "woocommerce", "connection": "bench"},
            "ledger": {"connection": "bench"},
            "enabled_since": "2000-01-01",
            "payment_methods": METHODS,
        }
    )


def _kassebro(shop_url: str, tx_url: str, journal: Path) -> dict[str, Any]:
    from kassebro.demo.sandboxes import client
    from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing
    from kassebro.posting.transfers import Transfers
    from kassebro.posting.webshop import transfer_new
    from kassebro.sandbox import woocommerce
    from kassebro.sources.webshop.woocommerce import WooCommerceShop

    shop = _shop_config()
    store = Transfers(f"sqlite:///{journal}")
    api = WooCommerceShop(shop.id, shop_url, woocommerce.DEMO_CONSUMER_KEY, woocommerce.DEMO_CONSUMER_SECRET)
    tx = TripletexInvoicing(client("tripletex", tx_url))
    started = time.perf_counter()
    report = transfer_new(shop, api, tx, store)
    seconds = time.perf_counter() - started
    calls = Counter(tx.calls)
    before = Counter(tx.calls)
    again = transfer_new(shop, api, tx, store)
    second = Counter(tx.calls) - before
    return {
        "seconds": seconds,
        "report": report,
        "calls": dict(calls),
        "shop_calls": api.http.calls,
        "second_run": dict(second),
        "again": again,
        "records": store.all(shop.id),
    }


def _reference(shop_url: str, tx_url: str, plan: list[dict[str, Any]]) -> float:
    """Plain requests: the shop's pages, then per order lookup + create (+ invoice)."""
    import base64

    from kassebro.sandbox import woocommerce
    from kassebro.sandbox.tripletex import DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN

    session = requests.Session()
    started = time.perf_counter()
    page = 1
    while True:
        got = session.get(
            f"{shop_url}/wp-json/wc/v3/orders",
            params={"per_page": 100, "page": page, "orderby": "modified", "order": "asc"},
            auth=(woocommerce.DEMO_CONSUMER_KEY, woocommerce.DEMO_CONSUMER_SECRET),
            timeout=30,
        )
        got.raise_for_status()
        got.json()
        if page >= int(got.headers["X-WP-TotalPages"]):
            break
        page += 1
    token = session.post(
        f"{tx_url}/v2/token/session/:create",
        json={"consumerToken": DEMO_CONSUMER_TOKEN, "employeeToken": DEMO_EMPLOYEE_TOKEN,
              "expirationDate": (dt.date.today() + dt.timedelta(days=1)).isoformat()},
        timeout=30,
    ).json()["value"]["token"]  # fmt: skip
    session.headers["Authorization"] = "Basic " + base64.b64encode(f"0:{token}".encode()).decode()
    json_headers = {"Content-Type": "application/json"}
    for item in plan:
        new = item["customer"]
        if new is not None:
            for query in (new["search"], new["numbers"]):
                for inactive in ("false", "true"):
                    session.get(f"{tx_url}/v2/customer", params={**query, "isInactive": inactive}, timeout=30).json()
            session.post(f"{tx_url}/v2/customer", data=new["body"], headers=json_headers, timeout=30).raise_for_status()
        session.get(f"{tx_url}/v2/order", params=item["lookup"], timeout=30).raise_for_status()
        made = session.post(
            f"{tx_url}/v2/order", data=item["body"], headers={"Content-Type": "application/json"}, timeout=30
        )
        made.raise_for_status()
        if item["invoice"] is not None:
            order_id = made.json()["value"]["id"]
            session.put(f"{tx_url}/v2/order/{order_id}/:invoice", params=item["invoice"], timeout=30).raise_for_status()
    return time.perf_counter() - started


def _plan(tx_url: str, records: list[Any], orders: dict[str, Any], shop: Any) -> list[dict[str, Any]]:
    """Per order, the calls kassebro made, rebuilt for plain requests after a reset: the customers are
    created again first (untimed), the bodies rendered by the same client code."""
    from kassebro.booking.invoice import draft
    from kassebro.core.money import format_ore
    from kassebro.demo.sandboxes import client
    from kassebro.ledgers.http import encode_json
    from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing
    from kassebro.posting.webshop import tag

    tx = TripletexInvoicing(client("tripletex", tx_url))
    customers: dict[str, int] = {}
    plan = []
    for record in records:
        order = orders[record.order_number]
        key = order.customer.key
        first_time = key not in customers
        if first_time:
            customers[key] = tx.create_customer(order.customer, 200_000 + len(customers)).id
        made = draft(order, shop)
        body = tx.order_body(made, customers[key], record.order_date, tag(shop, order.number), f"ordre {order.number}")
        invoice = None
        if made.rule.transfer != "order":
            invoice = {"invoiceDate": record.invoice_date.isoformat(), "sendToCustomer": "false"}
            if made.rule.transfer == "paid_invoice":
                payment_type = tx.payment_type_id(made.rule.payment_type)
                invoice.update(paymentTypeId=payment_type, paidAmount=format_ore(order.captured))
        day = record.order_date
        customer = order.customer
        plan.append(
            {
                # a new customer: the same searches as kassebro's (by organisation number or e-mail,
                # then the free number), active and inactive, and the create; the body prebuilt
                "customer": None if not first_time else {
                    "search": {"organizationNumber": customer.org_number} if customer.org_number
                    else {"email": customer.email or ""},
                    "numbers": {"customerAccountNumber": ",".join(str(100_000 + n) for n in range(20))},
                    "body": encode_json({"name": customer.name, "customerNumber": 300_000 + len(plan),
                                         "email": customer.email,
                                         "isPrivateIndividual": not customer.is_company}).encode(),
                },
                "lookup": {"number": order.number, "orderDateFrom": day.isoformat(),
                           "orderDateTo": (day + dt.timedelta(days=1)).isoformat(), "fields": "id,number,isClosed"},
                "body": encode_json(body).encode(),
                "invoice": invoice,
            }
        )  # fmt: skip
    return plan


def run(count: int = 1000, rounds: int = 1) -> dict[str, Any]:
    """Backfill `count` orders with kassebro, then the reference, `rounds` times each (interleaved)."""
    from kassebro.demo.sandboxes import create_app
    from kassebro.sandbox import woocommerce
    from kassebro.sandbox.server import running
    from kassebro.sources.webshop.woocommerce import WooCommerceShop

    generated = completed_orders(count)
    shop = _shop_config()
    ours: list[float] = []
    reference: list[float] = []
    result: dict[str, Any] = {}
    tx_app = create_app("tripletex")
    with running(woocommerce.create_app(orders=generated)) as shop_server, running(tx_app) as tx_server:
        api = WooCommerceShop(shop.id, shop_server.url, woocommerce.DEMO_CONSUMER_KEY, woocommerce.DEMO_CONSUMER_SECRET)
        orders = {o.number: o for o in api.orders(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))}
        _require(len(orders) == count, f"the shop serves {len(orders)} orders, {count} wanted")
        for _ in range(rounds):
            requests.post(tx_server.url + "/_sandbox/reset", timeout=30).raise_for_status()
            with tempfile.TemporaryDirectory(prefix="kassebro-webshop-") as work:
                result = _kassebro(shop_server.url, tx_server.url, Path(work) / "journal.sqlite")
            ours.append(result["seconds"])
            _check(result, orders, tx_server.url, shop)
            records = result["records"]
            requests.post(tx_server.url + "/_sandbox/reset", timeout=30).raise_for_status()
            plan = _plan(tx_server.url, records, orders, shop)
            reference.append(_reference(shop_server.url, tx_server.url, plan))
    calls = result["calls"]
    report = result["report"]
    transfers = Counter(shop.payment_methods[orders[r.order_number].payment_method].transfer for r in result["records"])
    customers_new = calls.get("POST /customer", 0)
    order_calls = sum(v for k, v in calls.items() if k in ("GET /order", "POST /order", "PUT /order/{id}/:invoice"))
    once = sum(v for k, v in calls.items() if k in ("POST /token/session/:create", "GET /ledger/vatType",
                                                     "GET /invoice/paymentType"))  # fmt: skip
    seconds = statistics.median(ours)
    return {
        "orders": count,
        "seconds": seconds,
        "orders_per_min": count / seconds * 60,
        "reference_s": statistics.median(reference),
        "ratio": statistics.median(o / r for o, r in zip(ours, reference, strict=True)),
        "runs": [round(x, 2) for x in ours],
        "reference_runs": [round(x, 2) for x in reference],
        "calls": calls,
        "calls_total": sum(calls.values()),
        "calls_per_order": sum(calls.values()) / count,
        "order_calls_per_order": order_calls / count,
        "customer_calls": calls.get("GET /customer", 0) + customers_new,
        "customers_new": customers_new,
        "once": once,
        "shop_calls": result["shop_calls"],
        "transfers": dict(transfers),
        "notes": sum(1 for o in report.outcomes if o.note and "left open" not in o.note),
        "second_run": result["second_run"],
    }


def _check(result: dict[str, Any], orders: dict[str, Any], tx_url: str, shop: Any) -> None:
    report = result["report"]
    states = Counter(o.state for o in report.outcomes)
    _require(states == Counter({"done": len(orders)}), f"not every order was transferred: {dict(states)}")
    state = requests.get(tx_url + "/_sandbox/invoicing", timeout=60).json()
    numbers = Counter(o["number"] for o in state["orders"])
    _require(sorted(numbers) == sorted(orders) and max(numbers.values()) == 1, "not one Tripletex order per web order")
    by_id = {o["id"]: o["number"] for o in state["orders"]}
    for invoice in state["invoices"]:
        number = by_id[invoice["orders"][0]["id"]]
        _require(Decimal(str(invoice["amount"])) * 100 == orders[number].total, f"invoice of {number} differs")
    _require(not any(k.startswith(("POST", "PUT")) for k in result["second_run"]), "the second run sent something")
