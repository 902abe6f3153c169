"""The webshop sandboxes over real HTTP: WooCommerce REST API v3 and the (inferred) Mystore-like API:
auth, paging, filters, status changes, totals to the øre in each shop's convention, the shared
demo-order generator, faults and the admin routes."""

from __future__ import annotations

import collections
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import requests

from kassebro.sandbox import mystore, woocommerce
from kassebro.sandbox.server import running
from kassebro.sandbox.webshop_orders import (
    CATALOG,
    PAYMENT_METHODS,
    VAT_RATES,
    customer_pool,
    generate_orders,
)

LAST_DAY = dt.date(2026, 3, 15)  # a fixed demo: every order's story is known
WOO = woocommerce.API_PREFIX
WOO_AUTH = (woocommerce.DEMO_CONSUMER_KEY, woocommerce.DEMO_CONSUMER_SECRET)
MS = mystore.API_PREFIX
MS_AUTH = {"Authorization": f"Bearer {mystore.DEMO_TOKEN}"}
PRICES = {p.sku: Decimal(p.price) / 100 for p in CATALOG}


def d(text: str) -> Decimal:
    return Decimal(text)


@pytest.fixture(scope="module")
def woo():
    with running(woocommerce.create_app(last_day=LAST_DAY)) as server:
        yield server


@pytest.fixture(scope="module")
def shop():
    with running(mystore.create_app(last_day=LAST_DAY)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(request):
    for name in ("woo", "shop"):
        if name in request.fixturenames:
            server = request.getfixturevalue(name)
            requests.post(server.url + "/_sandbox/reset", timeout=10).raise_for_status()


def woo_get(server, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + WOO + path, params=params, auth=WOO_AUTH, timeout=10)


def woo_all(server, **params: Any) -> list[dict[str, Any]]:
    return woo_get(server, "/orders", per_page=100, **params).json()


def ms_get(server, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + MS + path, params=params, headers=MS_AUTH, timeout=10)


def ms_all(server, **params: Any) -> list[dict[str, Any]]:
    return ms_get(server, "/orders", **{"page[size]": 100}, **params).json()["data"]


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def test_the_generator_is_deterministic():
    first = generate_orders(5, dt.date(2026, 2, 1), 3, 4)
    assert first == generate_orders(5, dt.date(2026, 2, 1), 3, 4)
    assert first != generate_orders(6, dt.date(2026, 2, 1), 3, 4)
    assert [o.id for o in first] == list(range(1001, 1013))
    assert customer_pool(5, 10) == customer_pool(5, 10)


def test_generated_customers_are_norwegian_return_and_companies_have_valid_org_numbers():
    orders = generate_orders(37, dt.date(2026, 3, 2), 14, 6)
    customers = collections.Counter(o.customer.email for o in orders)
    assert customers.most_common(1)[0][1] >= 3  # returning customers
    companies = {o.customer for o in orders if o.customer.kind == "company"}
    assert companies and any(o.guest for o in orders) and any(not o.guest for o in orders)
    for c in companies:
        digits = [int(x) for x in c.org_number]
        assert len(digits) == 9
        remainder = sum(a * b for a, b in zip(digits[:8], (3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
        assert digits[8] == (0 if remainder == 0 else 11 - remainder)
    assert all(len(o.customer.address.postcode) == 4 and o.customer.address.country == "NO" for o in orders)


def test_now_cuts_the_story():
    day = dt.date(2026, 3, 1)
    noon = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    seen = generate_orders(3, day, 1, 20, now=noon)
    assert seen and len(seen) < 20
    assert all(o.created <= noon and o.modified <= noon for o in seen)
    whole = generate_orders(3, day, 1, 20)
    assert [o.id for o in seen] == [o.id for o in whole[: len(seen)]]


@pytest.mark.parametrize("module", [woocommerce, mystore], ids=["woocommerce", "mystore"])
def test_the_default_demo_has_every_payment_method_vat_rate_refunds_and_cancellations(module):
    app = module.create_app()  # ends today, seen now
    orders = app.state.store.demo_orders()
    methods = collections.Counter(o.payment_method for o in orders)
    assert set(methods) == set(PAYMENT_METHODS)
    assert {line.product.vat_rate for o in orders for line in o.lines} == set(VAT_RATES)
    assert any(len({line.product.vat_rate for line in o.lines}) > 1 for o in orders)  # mixed rates in one order
    statuses = collections.Counter(o.status for o in orders)
    assert statuses["cancelled"] and statuses["refunded"] and statuses["processing"]
    assert any(o.refunds and o.status == "completed" for o in orders)  # partly refunded
    assert any(o.capture_delta for o in orders) and any(o.coupon for o in orders)
    assert any(o.fees for o in orders) and any(o.shipping is None for o in orders)


# --------------------------------------------------------------------------------------------
# WooCommerce
# --------------------------------------------------------------------------------------------


def test_woocommerce_auth_failures(woo):
    url = woo.url + WOO + "/orders"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }
    assert requests.get(url, auth=("ck_other", "cs_demo"), timeout=10).json()["code"] == "woocommerce_rest_cannot_view"
    wrong = requests.get(url, auth=("ck_demo", "cs_wrong"), timeout=10)
    assert (wrong.status_code, wrong.json()["code"]) == (401, "woocommerce_rest_authentication_error")
    single = requests.get(url + "/4101", timeout=10).json()
    assert single["message"] == "Sorry, you cannot view this resource."
    edit = requests.put(url + "/4101", json={"status": "completed"}, timeout=10)
    assert (edit.status_code, edit.json()["code"]) == (401, "woocommerce_rest_cannot_edit")
    by_query = requests.get(url, params={"consumer_key": "ck_demo", "consumer_secret": "cs_demo"}, timeout=10)
    assert by_query.status_code == 200
    calls = requests.get(woo.url + "/_sandbox/calls", timeout=10).json()["calls"]
    assert "cs_demo" not in calls[-1]["query"] and "consumer_secret=***" in calls[-1]["query"]


def test_woocommerce_paging_headers_links_and_per_page_limit(woo):
    first = woo_get(woo, "/orders")
    assert first.status_code == 200 and len(first.json()) == 10
    assert (first.headers["X-WP-Total"], first.headers["X-WP-TotalPages"]) == ("84", "9")
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    assert 'rel="prev"' not in first.headers["Link"]
    last = woo_get(woo, "/orders", page=9)
    assert len(last.json()) == 4 and 'rel="next"' not in last.headers["Link"] and "page=8" in last.headers["Link"]
    assert woo_get(woo, "/orders", page=10).json() == []
    seen = [o["id"] for page in range(1, 10) for o in woo_get(woo, "/orders", page=page).json()]
    assert len(seen) == len(set(seen)) == 84
    everything = woo_get(woo, "/orders", per_page=100)
    assert len(everything.json()) == 84 and everything.headers["X-WP-TotalPages"] == "1"
    too_many = woo_get(woo, "/orders", per_page=101)
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "rest_invalid_param" and "per_page" in too_many.json()["data"]["params"]
    dates = [o["date_created_gmt"] for o in everything.json()]
    assert dates == sorted(dates, reverse=True)  # orderby=date, order=desc by default
    ids = [o["id"] for o in woo_all(woo, orderby="id", order="asc")]
    assert ids == sorted(ids) and ids[0] == 4101
    assert [o["id"] for o in woo_all(woo, include="4105,4102", orderby="include")] == [4105, 4102]


def test_woocommerce_filters_by_status_and_dates(woo):
    statuses = collections.Counter(o["status"] for o in woo_all(woo))
    assert set(statuses) <= {"pending", "on-hold", "processing", "completed", "cancelled", "refunded"}
    picked = woo_all(woo, status="cancelled,refunded")
    assert len(picked) == statuses["cancelled"] + statuses["refunded"] > 0
    assert {o["status"] for o in picked} == {"cancelled", "refunded"}
    assert len(woo_all(woo, status="any")) == 84
    assert woo_get(woo, "/orders", status="shipped").status_code == 400
    orders = woo_all(woo)
    cut = sorted(o["date_modified_gmt"] for o in orders)[60]
    later = woo_all(woo, modified_after=cut, dates_are_gmt="true")
    assert later and all(o["date_modified_gmt"] > cut for o in later)
    assert len(later) == sum(o["date_modified_gmt"] > cut for o in orders)
    local = next(o["date_modified"] for o in orders if o["date_modified_gmt"] == cut)
    assert [o["id"] for o in woo_all(woo, modified_after=local)] == [o["id"] for o in later]  # site time
    day = woo_all(woo, after="2026-03-10T00:00:00", before="2026-03-11T00:00:00")
    assert len(day) == 6 and all(o["date_created"].startswith("2026-03-10") for o in day)


def test_woocommerce_status_change_records_dates_and_a_note(woo):
    processing = woo_all(woo, status="processing")[0]
    assert processing["date_completed"] is None
    before = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None) - dt.timedelta(seconds=1)
    changed = requests.put(
        woo.url + WOO + f"/orders/{processing['id']}", json={"status": "completed"}, auth=WOO_AUTH, timeout=10
    )
    assert changed.status_code == 200
    order = changed.json()
    assert order["status"] == "completed"
    assert order["date_completed_gmt"] == order["date_modified_gmt"] >= before.isoformat()
    assert order["date_paid"] == processing["date_paid"]
    notes = woo_get(woo, f"/orders/{processing['id']}/notes").json()
    assert notes[0]["note"] == "Order status changed from Processing to Completed."
    assert notes[0]["date_created_gmt"] == order["date_modified_gmt"] and notes[0]["customer_note"] is False
    recent = woo_all(woo, modified_after=before.isoformat(), dates_are_gmt="true")
    assert [o["id"] for o in recent] == [processing["id"]]
    assert woo_get(woo, f"/orders/{processing['id']}").json()["status"] == "completed"
    bad = requests.put(
        woo.url + WOO + f"/orders/{processing['id']}", json={"status": "sent"}, auth=WOO_AUTH, timeout=10
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "rest_invalid_param")
    missing = requests.put(woo.url + WOO + "/orders/1", json={"status": "completed"}, auth=WOO_AUTH, timeout=10)
    assert (missing.status_code, missing.json()["code"]) == (404, "woocommerce_rest_shop_order_invalid_id")


def reconcile_woocommerce(order: dict[str, Any]) -> None:
    """WooCommerce's convention: line totals exclude tax; the order total adds them up to the øre."""
    lines, fees, ships = order["line_items"], order["fee_lines"], order["shipping_lines"]
    total = (
        sum(d(x["total"]) + d(x["total_tax"]) for x in lines)
        + d(order["shipping_total"])
        + d(order["shipping_tax"])
        + sum(d(x["total"]) + d(x["total_tax"]) for x in fees)
    )
    assert d(order["total"]) == total, order["id"]
    assert d(order["shipping_total"]) == sum(d(x["total"]) for x in ships)
    assert d(order["shipping_tax"]) == sum(d(x["total_tax"]) for x in ships)
    cart_tax = sum(d(x["total_tax"]) for x in lines + fees)
    assert d(order["cart_tax"]) == cart_tax and d(order["total_tax"]) == cart_tax + d(order["shipping_tax"])
    assert d(order["discount_total"]) == sum(d(x["subtotal"]) - d(x["total"]) for x in lines)
    assert d(order["discount_tax"]) == sum(d(x["subtotal_tax"]) - d(x["total_tax"]) for x in lines)
    coupons = order["coupon_lines"]
    assert sum(d(c["discount"]) for c in coupons) == d(order["discount_total"])
    assert bool(coupons) == (d(order["discount_total"]) + d(order["discount_tax"]) > 0)
    assert sum(d(t["tax_total"]) + d(t["shipping_tax_total"]) for t in order["tax_lines"]) == d(order["total_tax"])
    for line in lines:
        assert [t["total"] for t in line["taxes"]] == [line["total_tax"]]
        assert abs(Decimal(str(line["price"])) * line["quantity"] - d(line["total"])) < Decimal("0.0001")
    for text in [order[k] for k in ("total", "total_tax", "discount_total", "shipping_total")]:
        assert text == f"{d(text):.2f}"


def list_amounts(line: dict[str, Any]) -> set[Decimal]:
    """What a line of the catalogue can come to: its list price x quantity, less 0, 10 or 20 %."""
    full = PRICES[line["sku"]] * line["quantity"]
    return {(full * share).quantize(Decimal("0.01"), "ROUND_HALF_UP") for share in (1, Decimal("0.9"), Decimal("0.8"))}


def test_every_woocommerce_order_adds_up_and_line_totals_exclude_tax(woo):
    orders = woo_all(woo)
    for order in orders:
        reconcile_woocommerce(order)
        assert order["prices_include_tax"] is True and order["currency"] == "NOK"
        for line in order["line_items"]:
            if not order["coupon_lines"]:  # prices include VAT: the line's gross is the list price
                assert d(line["total"]) + d(line["total_tax"]) in list_amounts(line)
            if line["tax_class"] != "zero-rate":
                assert d(line["total_tax"]) > 0  # so `total` is net, tax excluded
    assert {line["tax_class"] for o in orders for line in o["line_items"]} == {"", "reduced-rate", "zero-rate"}
    shipped = next(o for o in orders if o["shipping_lines"] and o["shipping_lines"][0]["method_id"] == "flat_rate")
    ship = shipped["shipping_lines"][0]
    assert (ship["total"], ship["total_tax"]) in (("79.20", "19.80"), ("119.20", "29.80"))  # 99.00 / 149.00 gross


def test_woocommerce_captures_refunds_customers_gateways_and_taxes(woo):
    orders = woo_all(woo)
    metas = [(o, {m["key"]: m["value"] for m in o["meta_data"]}) for o in orders]
    captured = [(o, meta["_captured_amount"]) for o, meta in metas if "_captured_amount" in meta]
    differing = [o for o, amount in captured if amount != o["total"]]
    assert captured and 0 < len(differing) <= 5
    refunded = [o for o in orders if o["status"] == "refunded"]
    assert refunded and all(d(o["refunds"][0]["total"]) == -d(o["total"]) for o in refunded)
    partly = [o for o in orders if o["refunds"] and o["status"] == "completed"][0]
    refund = woo_get(woo, f"/orders/{partly['id']}/refunds").json()[0]
    item = refund["line_items"][0]
    assert item["quantity"] < 0 and d(refund["amount"]) == -(d(item["total"]) + d(item["total_tax"]))
    assert d(partly["refunds"][0]["total"]) == -d(refund["amount"])
    company = next(o for o in orders if o["billing"]["company"])
    org = next(m["value"] for m in company["meta_data"] if m["key"] == "_billing_org_number")
    assert len(org) == 9 and org.isdigit()
    registered = next(o for o in orders if o["customer_id"])
    customer = woo_get(woo, f"/customers/{registered['customer_id']}").json()
    assert customer["email"] == registered["billing"]["email"]
    assert any(o["customer_id"] == 0 for o in orders)
    assert woo_get(woo, "/customers/0").status_code == 404
    gateways = {g["id"]: g["title"] for g in woo_get(woo, "/payment_gateways").json()}
    assert gateways == {
        "stripe": "Kort",
        "vipps": "Vipps",
        "klarna": "Klarna",
        "giftcard": "Gavekort",
        "invoice": "Faktura",
        "bacs": "Bankoverføring (bedrift)",
    }
    assert {o["payment_method"] for o in orders} == set(gateways)
    taxes = {t["class"]: t["rate"] for t in woo_get(woo, "/taxes").json()}
    assert taxes == {"standard": "25.0000", "reduced-rate": "15.0000", "zero-rate": "0.0000"}
    fee = next(o for o in orders if o["fee_lines"])["fee_lines"][0]
    assert (fee["name"], d(fee["total"]) + d(fee["total_tax"])) == ("Fakturagebyr", Decimal("39.00"))


def test_a_woocommerce_shop_with_prices_excluding_tax_adds_up_too():
    app = woocommerce.create_app(last_day=LAST_DAY, prices_include_vat=False)
    with running(app) as server:
        orders = woo_all(server)
    assert orders and all(o["prices_include_tax"] is False for o in orders)
    for order in orders:
        reconcile_woocommerce(order)
        for line in order["line_items"] if not order["coupon_lines"] else []:
            assert d(line["total"]) in list_amounts(line)  # the list price is net


def test_woocommerce_faults_and_generated_orders(woo):
    fault = requests.post(woo.url + "/_sandbox/faults", json={"kind": "500", "path": "/orders"}, timeout=10)
    assert fault.status_code == 201
    failed = woo_get(woo, "/orders")
    assert failed.status_code == 500 and failed.json()["code"] == "internal_server_error"
    assert woo_get(woo, "/orders").status_code == 200
    requests.post(woo.url + "/_sandbox/faults", json={"kind": "500", "path": WOO + "/orders/*"}, timeout=10)
    assert woo_get(woo, "/orders/4101").status_code == 500
    calls = requests.get(woo.url + "/_sandbox/calls", timeout=10).json()["calls"]
    assert [(c["path"], c["status"], c["fault"]) for c in calls[-3:]] == [
        ("/orders", 500, "500"),
        ("/orders", 200, None),
        ("/orders/4101", 500, "500"),
    ]
    made = requests.post(
        woo.url + "/_sandbox/orders/generate", json={"count": 1000, "day": "2026-03-16", "seed": 9}, timeout=60
    )
    assert made.status_code == 201 and made.json()["ids"] == list(range(4185, 5185))
    assert woo_get(woo, "/orders").headers["X-WP-Total"] == "1084"
    assert len(woo_all(woo, after="2026-03-16T00:00:00")) == 100
    assert requests.post(woo.url + "/_sandbox/orders/generate", json={"count": 0}, timeout=10).status_code == 400
    listing = requests.get(woo.url + "/_sandbox/vouchers", timeout=10).json()["orders"]
    assert len(listing) == 1084
    requests.post(woo.url + "/_sandbox/reset", json={"empty": True}, timeout=10).raise_for_status()
    assert woo_get(woo, "/orders").headers["X-WP-Total"] == "0"


# --------------------------------------------------------------------------------------------
# Mystore
# --------------------------------------------------------------------------------------------


def test_mystore_auth_failures(shop):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {mystore.DEMO_TOKEN}"}):
        answer = requests.get(shop.url + MS + "/orders", headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.json() == {"errors": [{"status": "401", "title": "Unauthorized"}]}
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert ms_get(shop, "/orders").headers["content-type"] == "application/vnd.api+json"


def test_mystore_paging_meta_and_links(shop):
    first = ms_get(shop, "/orders").json()
    assert first["meta"]["page"] == {"total": 70, "number": 1, "size": 50, "last": 2}
    assert len(first["data"]) == 50 and first["links"]["prev"] is None
    second = requests.get(first["links"]["next"], headers=MS_AUTH, timeout=10).json()
    assert len(second["data"]) == 20 and second["links"]["next"] is None and second["links"]["prev"]
    ids = [o["id"] for o in first["data"] + second["data"]]
    assert len(set(ids)) == 70 and ids[0] == "10001" and ids == sorted(ids, key=int)
    capped = ms_get(shop, "/orders", **{"page[size]": 500}).json()
    assert capped["meta"]["page"]["size"] == 100 and len(capped["data"]) == 70
    assert ms_get(shop, "/orders", **{"page[number]": 0}).status_code == 400
    assert ms_get(shop, "/orders", **{"page[number]": 3}).json()["data"] == []
    order = ms_get(shop, "/orders/10001").json()["data"]
    assert order["type"] == "orders" and order["attributes"]["order_number"] == "10001"
    assert ms_get(shop, "/orders/999").json()["errors"][0]["status"] == "404"


def test_mystore_filters_by_status_and_updated_since(shop):
    orders = ms_all(shop)
    statuses = collections.Counter(o["attributes"]["status"] for o in orders)
    assert set(statuses) <= {"Ny", "Under behandling", "Sendt", "Kansellert", "Returnert"}
    sent = ms_all(shop, **{"filter[status]": "Sendt"})
    assert len(sent) == statuses["Sendt"] > 0 and {o["attributes"]["status"] for o in sent} == {"Sendt"}
    both = ms_all(shop, **{"filter[status]": "Kansellert,Returnert"})
    assert len(both) == statuses["Kansellert"] + statuses["Returnert"] > 0
    assert ms_get(shop, "/orders", **{"filter[status]": "Shipped"}).status_code == 400
    assert ms_get(shop, "/orders", **{"filter[customer]": "1"}).status_code == 400
    since = sorted(o["attributes"]["updated_at"] for o in orders)[50]
    recent = ms_all(shop, **{"filter[updated_since]": since})
    assert len(recent) == sum(o["attributes"]["updated_at"] >= since for o in orders) >= 1
    assert ms_get(shop, "/orders", **{"filter[updated_since]": "yesterday"}).status_code == 400
    assert all(o["attributes"]["created_at"].endswith("+01:00") for o in orders)


def test_mystore_status_change_appends_to_the_history(shop):
    order = ms_all(shop, **{"filter[status]": "Under behandling"})[0]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    body = {"data": {"type": "orders", "id": order["id"], "attributes": {"status": "Sendt"}}}
    changed = requests.patch(shop.url + MS + f"/orders/{order['id']}", json=body, headers=MS_AUTH, timeout=10)
    assert changed.status_code == 200
    attributes = changed.json()["data"]["attributes"]
    assert attributes["status"] == "Sendt"
    assert attributes["status_history"][:-1] == order["attributes"]["status_history"]
    assert attributes["status_history"][-1] == {"status": "Sendt", "changed_at": attributes["updated_at"]}
    recent = ms_all(shop, **{"filter[updated_since]": before.isoformat()})
    assert [o["id"] for o in recent] == [order["id"]]
    url = shop.url + MS + f"/orders/{order['id']}"
    unknown = requests.patch(url, json={"data": {"attributes": {"status": "Borte"}}}, headers=MS_AUTH, timeout=10)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["source"]["pointer"] == "/data/attributes/status"
    other = {"data": {"type": "orders", "id": "1", "attributes": {"status": "Sendt"}}}
    assert requests.patch(url, json=other, headers=MS_AUTH, timeout=10).status_code == 409


def reconcile_mystore(attributes: dict[str, Any]) -> None:
    """total = lines + shipping + fees - discounts (each incl. VAT) to the øre; vat_total alike."""
    incl = attributes["prices_include_vat"]

    def gross(part: dict[str, Any], key: str) -> Decimal:
        return d(part[key]) + (0 if incl else d(part["vat_amount"]))

    shipping = attributes["shipping"]
    parts = [(line, "total") for line in attributes["lines"]] + [(f, "price") for f in attributes["fees"]]
    parts += [(shipping, "price")] if shipping else []
    total = sum(gross(p, k) for p, k in parts) - sum(gross(x, "amount") for x in attributes["discounts"])
    vat = sum(d(p["vat_amount"]) for p, _ in parts) - sum(d(x["vat_amount"]) for x in attributes["discounts"])
    assert d(attributes["total"]) == total and d(attributes["vat_total"]) == vat
    for line in attributes["lines"]:
        amount = d(line["quantity"]) * d(line["unit_price"]) * (100 - d(line["discount_percent"])) / 100
        assert d(line["total"]) == amount.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        rate = d(line["vat_rate"])
        exact = d(line["total"]) * rate / ((100 + rate) if incl else 100)
        assert d(line["vat_amount"]) == exact.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


def test_every_mystore_order_adds_up_and_captures_its_total(shop):
    orders = [o["attributes"] for o in ms_all(shop)]
    for attributes in orders:
        reconcile_mystore(attributes)
    captured = [a for a in orders if a["payment"]["captured_amount"] is not None]
    differing = [a for a in captured if a["payment"]["captured_amount"] != a["total"]]
    assert captured and 0 < len(differing) <= 5
    assert all(a["payment"]["method"] not in ("faktura", "b2b") for a in captured)
    assert {a["payment"]["method"] for a in orders} == {"kort", "vipps", "klarna", "gavekort", "faktura", "b2b"}
    assert {line["vat_rate"] for a in orders for line in a["lines"]} == {"25.00", "15.00", "0.00"}
    returned = [a for a in orders if a["status"] == "Returnert"]
    assert returned and all(a["refunds"][-1]["amount"] == a["total"] for a in returned)
    assert any(a["refunds"] and a["status"] == "Sendt" for a in orders)
    assert any(a["discounts"] for a in orders)
    company = next(a for a in orders if a["customer"]["type"] == "company")
    assert len(company["customer"]["organization_number"]) == 9 and company["customer"]["invoice_email"]
    assert any(a["customer"]["id"] is None for a in orders)
    methods = ms_get(shop, "/payment_methods").json()["data"]
    assert {m["id"]: m["name"] for m in methods}["faktura"] == "Faktura vedlagt"
    statuses = ms_get(shop, "/order_statuses").json()["data"]
    assert [s["name"] for s in statuses if s["is_completed"]] == ["Sendt"]


def test_a_mystore_shop_with_prices_excluding_vat_adds_up_too():
    with running(mystore.create_app(last_day=LAST_DAY, prices_include_vat=False)) as server:
        orders = [o["attributes"] for o in ms_all(server)]
    assert orders and not any(a["prices_include_vat"] for a in orders)
    for attributes in orders:
        reconcile_mystore(attributes)


def test_mystore_faults_and_generated_orders(shop):
    requests.post(shop.url + "/_sandbox/faults", json={"kind": "500", "path": "/orders"}, timeout=10)
    failed = ms_get(shop, "/orders")
    assert failed.status_code == 500 and failed.json()["errors"][0]["status"] == "500"
    assert ms_get(shop, "/orders").status_code == 200
    made = requests.post(shop.url + "/_sandbox/orders/generate", json={"count": 1000, "day": "2026-03-16"}, timeout=60)
    assert made.status_code == 201 and made.json()["created"] == 1000
    assert ms_get(shop, "/orders").json()["meta"]["page"]["total"] == 1070
    for attributes in [o["attributes"] for o in ms_all(shop, **{"page[number]": 11})]:
        reconcile_mystore(attributes)
