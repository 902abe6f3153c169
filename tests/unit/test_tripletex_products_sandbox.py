"""Tripletex products, over real HTTP: the sandbox's `/product` (per company, numbers unique,
vatLocked accounts), order lines carrying products whose accounts take the revenue when invoiced,
and the client's `product_id` (found or created, cached, recovered after a lost answer)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import requests

from kassebro.booking.invoice import DraftLine, InvoiceDraft
from kassebro.config.webshop import PaymentRule
from kassebro.ledgers.base import LedgerValidationError
from kassebro.ledgers.tripletex import TripletexClient
from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing
from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import (
    DEMO_COMPANY,
    DEMO_CONSUMER_TOKEN,
    DEMO_EMPLOYEE_TOKEN,
    DEMO_FIRM_EMPLOYEE_TOKEN,
    Account,
    create_app,
)
from kassebro.sources.webshop import WebCustomer, WebLine, WebOrder

from .test_tripletex_invoicing_sandbox import DAY, admin_state, customer_id, get, order_body, post, put, vat_ids
from .test_tripletex_sandbox import BAKERY, add_fault, as_user, assert_error, assert_schema, login, response_schema

# An unlocked high-rate revenue account the default chart lacks (a vendor's mapping may name it).
CATERING = Account(999_000_002, 3020, "Salgsinntekt, catering (test)", "3", False)
LOCKED_3000 = "Kontoen 3000 Salgsinntekt, avgiftspliktig, høy sats er låst til mva-kode 3: Utgående avgift, høy sats."


# ---- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    app = create_app(extra_accounts=[CATERING])
    with running(app) as server:
        yield app, server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    yield


@pytest.fixture
def api(sandbox):
    return sandbox[1].url + "/v2"


@pytest.fixture
def admin(sandbox):
    return sandbox[1].url + "/_sandbox"


@pytest.fixture
def store(sandbox):
    return sandbox[0].state.store


@pytest.fixture
def auth(api) -> dict[str, str]:
    return login(api, DEMO_EMPLOYEE_TOKEN)


@pytest.fixture
def client(sandbox):
    with TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, timeout=5, retry_backoff=0.01) as c:
        yield c


def account_ids(api: str, auth: dict[str, str]) -> dict[int, int]:
    return {a["number"]: a["id"] for a in get(api, auth, "/ledger/account", fields="id,number").json()["values"]}


def product_body(api: str, auth: dict[str, str], account: int, vat: str | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Kassesalg {account} mva {vat}",
        "number": f"kassebro-{account}-{vat}",
        "account": {"id": account_ids(api, auth)[account]},
    }
    if vat is not None:
        body["vatType"] = {"id": vat_ids(api, auth)[vat]}
    body.update(overrides)
    return body


def create_product(api: str, auth: dict[str, str], account: int, vat: str | None, **overrides: Any) -> dict[str, Any]:
    r = post(api, auth, "/product", product_body(api, auth, account, vat, **overrides))
    assert r.status_code == 201, r.text
    return r.json()["value"]


def messages(r: requests.Response) -> list[tuple[str, str]]:
    return [(m["field"], m["message"]) for m in assert_error(r, 422, 18000)["validationMessages"]]


def revenue_postings(api: str, auth: dict[str, str]) -> dict[int, tuple[Decimal, str]]:
    """Account number -> (sum of amountGross, the VAT codes) of the 3xxx postings on DAY."""
    r = get(api, auth, "/ledger/posting", dateFrom=DAY, dateTo="2026-03-03", accountNumberFrom=3000,
            accountNumberTo=3999, fields="account(number),amountGross,vatType(number)")  # fmt: skip
    assert r.status_code == 200, r.text
    found: dict[int, tuple[Decimal, str]] = {}
    for p in r.json()["values"]:
        number = p["account"]["number"]
        total, codes = found.get(number, (Decimal(0), ""))
        found[number] = (total + Decimal(str(p["amountGross"])), codes or p["vatType"]["number"])
    return found


# ---- the sandbox's /product -------------------------------------------------------------------


def test_create_find_and_render_a_product(api, auth):
    r = post(api, auth, "/product", product_body(api, auth, 3000, "3", description="Kasse", ean="7040000000001"))
    assert r.status_code == 201, r.text
    assert_schema(r.json(), response_schema("/product", "post", "201"))
    made = r.json()["value"]
    assert made["account"].keys() == {"id", "url"}  # default rendering: references
    assert (made["number"], made["name"], made["isInactive"]) == ("kassebro-3000-3", "Kassesalg 3000 mva 3", False)

    r = get(api, auth, "/product", productNumber="kassebro-3000-3", fields="id,number,account(number),vatType(number)")
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/product", "get", "200"))
    assert r.json()["fullResultSize"] == 1
    assert r.json()["values"] == [
        {"id": made["id"], "number": "kassebro-3000-3", "account": {"number": 3000}, "vatType": {"number": "3"}}
    ]
    assert get(api, auth, "/product", productNumber="kassebro-3000").json()["values"] == []  # exact, not "contains"

    one = get(api, auth, f"/product/{made['id']}", fields="*,account(number,vatLocked)")
    assert_schema(one.json(), response_schema("/product/{id}", "get", "200"))
    assert one.json()["value"]["account"] == {"number": 3000, "vatLocked": True}
    assert one.json()["value"]["description"] == "Kasse" and one.json()["value"]["ean"] == "7040000000001"
    assert_error(get(api, auth, "/product/1"), 404, 6000)

    # Left out, the VAT type is the account's; prices are kept, the other one shown derived.
    other = create_product(api, auth, 3900, None, priceExcludingVatCurrency="80", isInactive=True)
    shown = get(api, auth, f"/product/{other['id']}", fields="vatType(number),priceIncludingVatCurrency").json()
    assert shown["value"] == {"vatType": {"number": "0"}, "priceIncludingVatCurrency": 80.0}

    # productNumber is a list: comma-separated or repeated. isInactive has no default: both.
    both = {"kassebro-3000-3", "kassebro-3900-None"}
    listed = get(api, auth, "/product", productNumber="kassebro-3000-3,kassebro-3900-None").json()["values"]
    assert {p["number"] for p in listed} == both
    repeated = requests.get(
        api + "/product", params=[("productNumber", n) for n in sorted(both)], headers=auth, timeout=5
    ).json()["values"]
    assert {p["number"] for p in repeated} == both
    assert [p["number"] for p in get(api, auth, "/product", isInactive="false").json()["values"]] == ["kassebro-3000-3"]
    assert [p["id"] for p in get(api, auth, "/product", isInactive="true").json()["values"]] == [other["id"]]
    page = get(api, auth, "/product", **{"from": 1, "count": 1, "fields": "id"}).json()
    assert (page["fullResultSize"], page["count"], page["values"]) == (2, 1, [{"id": other["id"]}])
    assert [p["id"] for p in get(api, auth, "/product", name="MVA 3").json()["values"]] == [made["id"]]
    assert [p["id"] for p in get(api, auth, "/product", ids=str(other["id"])).json()["values"]] == [other["id"]]


def test_a_product_number_is_unique_per_company(api, auth):
    create_product(api, auth, 3000, "3")
    r = post(api, auth, "/product", product_body(api, auth, 3000, "3", name="Et annet navn"))
    assert messages(r) == [("number", "Produktnummeret er allerede i bruk.")]
    create_product(api, auth, 3900, "0", number="gammel", isInactive=True)
    assert messages(post(api, auth, "/product", product_body(api, auth, 3000, "3", number=" gammel "))) == [
        ("number", "Produktnummeret er allerede i bruk.")  # an inactive one's too, trimmed
    ]
    # Without a number there is nothing to collide.
    for _ in range(2):
        create_product(api, auth, 3000, "3", number="")

    # Another company has its own products: the same number is free there.
    bakery = as_user(login(api, DEMO_FIRM_EMPLOYEE_TOKEN), BAKERY.id)
    assert get(api, bakery, "/product").json()["values"] == []
    theirs = create_product(api, bakery, 3000, "3")
    assert theirs["number"] == "kassebro-3000-3"
    assert [p["id"] for p in get(api, bakery, "/product").json()["values"]] == [theirs["id"]]
    assert_error(get(api, auth, f"/product/{theirs['id']}"), 404, 6000)


def test_a_vat_type_the_account_is_not_locked_to_is_refused_as_on_vouchers(api, auth):
    r = post(api, auth, "/product", product_body(api, auth, 3000, "31"))
    assert messages(r) == [("vatType.id", LOCKED_3000)]
    # The very message a voucher posting on 3000 with VAT 31 gets.
    accounts, vat = account_ids(api, auth), vat_ids(api, auth)
    voucher = {
        "date": DAY,
        "description": "Test",
        "postings": [
            {"row": 1, "account": {"id": accounts[1920]}, "amountGross": 115, "amountGrossCurrency": 115},
            {"row": 2, "account": {"id": accounts[3000]}, "amountGross": -115, "amountGrossCurrency": -115,
             "vatType": {"id": vat["31"]}},
        ],
    }  # fmt: skip
    voucher_messages = assert_error(post(api, auth, "/ledger/voucher", voucher), 422, 18000)["validationMessages"]
    assert [m["message"] for m in voucher_messages] == [LOCKED_3000]

    # An unlocked account takes any outgoing type; other refusals.
    assert create_product(api, auth, 3010, "31")["number"] == "kassebro-3010-31"
    assert create_product(api, auth, 3020, "33")["number"] == "kassebro-3020-33"
    assert messages(post(api, auth, "/product", product_body(api, auth, 3010, "1"))) == [
        ("vatType.id", "Mva-koden kan ikke brukes på salg.")
    ]
    assert messages(post(api, auth, "/product", product_body(api, auth, 1920, "0"))) == [
        ("account.id", "Kontoen må være en inntektskonto (3000-3999).")
    ]
    assert messages(post(api, auth, "/product", {"name": "X", "account": {"id": 1}})) == [
        ("account.id", "Kontoen med id 1 finnes ikke.")
    ]
    assert messages(post(api, auth, "/product", {"number": "uten-navn"})) == [("name", "Kan ikke være null.")]
    assert get(api, auth, "/product").json()["fullResultSize"] == 2  # a refusal stores nothing


# ---- orders and invoices with products ----------------------------------------------------------


def test_an_invoiced_order_books_revenue_on_the_products_accounts(api, auth, store):
    vat = vat_ids(api, auth)
    catering = create_product(api, auth, 3020, "3")
    unlocked = create_product(api, auth, 3010, "3", orderLineDescription="Kassesalg, fri")
    exempt = create_product(api, auth, 3100, "5")
    r = post(api, auth, "/product", {"name": "Bærepose", "number": "pose", "vatType": {"id": vat["3"]}})
    assert r.status_code == 201, r.text
    no_account = r.json()["value"]
    price = "unitPriceIncludingVatCurrency"
    body = order_body(api, auth, orderLines=[
        {"description": "Lunsj", "count": 2, price: Decimal("250.00"), "product": {"id": catering["id"]}},
        {"count": 1, price: Decimal("125.00"), "product": {"id": unlocked["id"]}, "vatType": {"id": vat["3"]}},
        {"description": "Avis", "count": 1, price: Decimal("40.00"), "product": {"id": exempt["id"]}},
        {"description": "Kaffe", "count": 1, price: Decimal("115.00"), "vatType": {"id": vat["31"]}},
        {"description": "Pose", "count": 1, price: Decimal("5.00"), "product": {"id": no_account["id"]}},
    ])  # fmt: skip
    r = post(api, auth, "/order", body)
    assert r.status_code == 201, r.text
    order = r.json()["value"]
    shown = get(api, auth, f"/order/{order['id']}", fields="orderLines(description,product(number),vatType(number))")
    assert [
        (line["description"], (line["product"] or {}).get("number"), line["vatType"]["number"])
        for line in shown.json()["value"]["orderLines"]
    ] == [
        ("Lunsj", "kassebro-3020-3", "3"),  # the product's VAT type
        ("Kassesalg, fri", "kassebro-3010-3", "3"),  # the product's order line text
        ("Avis", "kassebro-3100-5", "5"),
        ("Kaffe", None, "31"),
        ("Pose", "pose", "3"),
    ]

    r = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY, sendToCustomer="false")
    assert r.status_code == 200, r.text
    assert revenue_postings(api, auth) == {
        3020: (Decimal("-500.00"), "3"),
        3010: (Decimal("-125.00"), "3"),
        3100: (Decimal("-40.00"), "5"),
        3030: (Decimal("-115.00"), "31"),  # no product: the VAT type's account, as before
        3000: (Decimal("-5.00"), "3"),  # a product without account: the same
    }
    invoice = r.json()["value"]
    voucher = get(api, auth, f"/ledger/voucher/{invoice['voucher']['id']}", fields="postings(row,account(number))")
    rows = {p["account"]["number"] for p in voucher.json()["value"]["postings"] if p["row"] > 0}
    assert rows == {1500, 3020, 3010, 3100, 3030, 3000}
    line = get(api, auth, f"/invoice/{invoice['id']}", fields="orderLines(product(name))").json()["value"]
    assert line["orderLines"][0]["product"] == {"name": "Kassesalg 3020 mva 3"}


def test_order_lines_with_products_are_checked(api, auth, store):
    vat = vat_ids(api, auth)
    locked = create_product(api, auth, 3000, "3")
    price = "unitPriceIncludingVatCurrency"
    lines = [
        {"description": "Ukjent", price: Decimal("10.00"), "product": {"id": 1}, "vatType": {"id": vat["3"]}},
        {"description": "Feil sats", price: Decimal("10.00"), "product": {"id": locked["id"]},
         "vatType": {"id": vat["31"]}},
    ]  # fmt: skip
    assert messages(post(api, auth, "/order", order_body(api, auth, orderLines=lines))) == [
        ("orderLines.product.id", "Produktet finnes ikke."),
        ("orderLines.vatType.id", LOCKED_3000),
    ]
    # Another company's product does not exist for this one.
    bakery = as_user(login(api, DEMO_FIRM_EMPLOYEE_TOKEN), BAKERY.id)
    body = order_body(api, auth, customer={"id": customer_id(api, bakery, 10_001)})
    body["orderLines"] = [
        {"description": "X", price: Decimal("10.00"), "product": {"id": locked["id"]}, "vatType": {"id": vat["3"]}}
    ]
    assert messages(post(api, bakery, "/order", body)) == [("orderLines.product.id", "Produktet finnes ikke.")]
    assert store.invoicing.orders_of(DEMO_COMPANY.id) == []


def test_products_survive_a_restart_and_are_listed_and_reset_by_the_admin(tmp_path):
    state = tmp_path / "tripletex.json"
    with running(create_app(state_path=state)) as server:
        api, admin = server.url + "/v2", server.url + "/_sandbox"
        auth = login(api, DEMO_EMPLOYEE_TOKEN)
        made = create_product(api, auth, 3000, "3")
        assert admin_state(admin)["products"] == [
            {"id": made["id"], "number": "kassebro-3000-3", "name": "Kassesalg 3000 mva 3", "account": 3000,
             "vat_type": "3", "is_inactive": False}
        ]  # fmt: skip
    with running(create_app(state_path=state)) as server:
        api, admin = server.url + "/v2", server.url + "/_sandbox"
        auth = login(api, DEMO_EMPLOYEE_TOKEN)
        assert [p["id"] for p in get(api, auth, "/product", productNumber="kassebro-3000-3").json()["values"]] == [
            made["id"]
        ]
        assert create_product(api, auth, 3900, "0")["id"] == made["id"] + 1  # the ids go on
        requests.post(admin + "/reset", timeout=5).raise_for_status()
        assert get(api, auth, "/product").json()["values"] == []


# ---- the client -------------------------------------------------------------------------------


def test_product_id_creates_once_then_finds_and_caches(client, store, api, auth):
    tx = TripletexInvoicing(client)
    first = tx.product_id("3020", "3")
    [made] = store.invoicing.products_of(DEMO_COMPANY.id)
    assert (made.id, made.number, made.name) == (first, "kassebro-3020-3", "Kassesalg 3020 mva 3")
    shown = get(api, auth, f"/product/{first}", fields="account(number),vatType(number)").json()["value"]
    assert shown == {"account": {"number": 3020}, "vatType": {"number": "3"}}
    assert client.calls["GET /product"] == 1 and client.calls["POST /product"] == 1

    before = sum(client.calls.values())
    assert tx.product_id("3020", "3") == first
    assert sum(client.calls.values()) == before  # cached: no HTTP at all

    # Another instance (the next task) finds it: one lookup, no second product.
    assert TripletexInvoicing(client).product_id("3020", "3") == first
    assert client.calls["GET /product"] == 2 and client.calls["POST /product"] == 1
    assert client.calls["GET /ledger/account"] == 1  # the client's own account lookup, cached
    assert tx.product_id("3100", "5") != first
    assert len(store.invoicing.products_of(DEMO_COMPANY.id)) == 2


@pytest.mark.parametrize("kind", ["save_then_drop", "500"])
def test_product_id_recovers_after_a_lost_answer(sandbox, client, store, kind):
    """Saved but the answer lost: found by the second lookup. Not saved (a 500): posted again."""
    add_fault(sandbox, path="/product", method="POST", kind=kind)
    tx = TripletexInvoicing(client)
    found = tx.product_id("3010", "31")
    [made] = store.invoicing.products_of(DEMO_COMPANY.id)
    assert made.id == found and made.number == "kassebro-3010-31"
    assert client.calls["GET /product"] == 2
    assert client.calls["POST /product"] == (1 if kind == "save_then_drop" else 2)


def test_product_id_refuses_a_product_moved_or_deactivated_by_hand(client, api, auth):
    create_product(api, auth, 3600, "0", number="kassebro-3010-0")
    with pytest.raises(LedgerValidationError, match="books its revenue on account 3600, not 3010"):
        TripletexInvoicing(client).product_id("3010", "0")
    create_product(api, auth, 3020, "3", isInactive=True)
    with pytest.raises(LedgerValidationError, match="kassebro-3020-3 .* is inactive"):
        TripletexInvoicing(client).product_id("3020", "3")


def _draft(*lines: DraftLine) -> InvoiceDraft:
    when = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
    order = WebOrder(
        webshop_id="kasse", number="POS-77", shop_id="77", created_at=when, updated_at=when, status="completed",
        history=(("completed", when),), prices_include_vat=True, currency="NOK", payment_method="credit",
        payment_title="Kreditt", captured=None, total=sum(line.gross for line in lines), vat_total=0,
        customer=WebCustomer(shop_id="9", name="Kari Nordmann", email="kari.nordmann@example.no"),
        lines=tuple(WebLine("item", line.description, line.count, line.unit_price, line.gross, line.vat_rate)
                    for line in lines),
    )  # fmt: skip
    return InvoiceDraft(order, PaymentRule(transfer="invoice"), True, tuple(lines), order.total)


def test_order_lines_with_an_account_carry_products_and_book_there(client, api, auth):
    tx = TripletexInvoicing(client)
    draft = _draft(
        DraftLine("Kreditsalg mat", Decimal(1), Decimal("250.00"), Decimal(0), "3", Decimal(25), 250_00, "3020"),
        DraftLine("Kreditsalg avis", Decimal(2), Decimal("20.00"), Decimal(0), "5", Decimal(0), 40_00, "3100"),
        DraftLine("Frakt", Decimal(1), Decimal("99.00"), Decimal(0), "3", Decimal(25), 99_00),
    )
    customer = customer_id(api, auth, 10_001)
    body = tx.order_body(draft, customer, dt.date(2026, 3, 2), "kassebro:kasse:77", "Kreditsalg 77")
    product_ids = [line.get("product", {}).get("id") for line in body["orderLines"]]
    assert product_ids == [tx.product_id("3020", "3"), tx.product_id("3100", "5"), None]

    order = tx.create_order(draft, customer, dt.date(2026, 3, 2), "kassebro:kasse:77", "Kreditsalg 77")
    assert client.calls["POST /product"] == 2  # made once each, for the body and the order alike
    invoice = tx.invoice_order(order.id, dt.date(2026, 3, 2), send=False)
    assert invoice.amount == 389_00
    assert revenue_postings(api, auth) == {
        3020: (Decimal("-250.00"), "3"),
        3100: (Decimal("-40.00"), "5"),
        3000: (Decimal("-99.00"), "3"),
    }


def test_lines_without_an_account_make_no_product_calls(client, api, auth):
    """The webshop flow as before: no `product` on the lines, no /product call."""
    tx = TripletexInvoicing(client)
    draft = _draft(DraftLine("Ullgenser", Decimal(2), Decimal("199.00"), Decimal(0), "3", Decimal(25), 398_00))
    body = tx.order_body(draft, customer_id(api, auth, 10_001), dt.date(2026, 3, 2), "kassebro:web:1", "Ordre 1")
    assert [set(line) for line in body["orderLines"]] == [
        {"description", "count", "unitPriceIncludingVatCurrency", "discount", "vatType"}
    ]
    assert set(client.calls) == {"POST /token/session/:create", "GET /ledger/vatType"}
