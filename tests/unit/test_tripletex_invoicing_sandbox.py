"""The Tripletex sandbox's webshop side (customers, orders, invoices, payment types), over real
HTTP: shapes against the official spec, the rules of apis.md §8, the booking the read-back sees,
faults, persistence and the admin API."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import DEMO_COMPANY, DEMO_EMPLOYEE_TOKEN, DEMO_FIRM_EMPLOYEE_TOKEN, create_app
from kassebro.sandbox.tripletex_invoicing import BANK_ACCOUNT_MISSING, kid_for, line_amounts

from .test_tripletex_sandbox import BAKERY, add_fault, as_user, assert_error, assert_schema, login, response_schema

DAY = "2026-03-02"


# ---- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
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


def _json(body: Any) -> str:
    return json.dumps(body, default=lambda d: float(d) if isinstance(d, Decimal) else d)


def get(api: str, auth: dict[str, str], path: str, **params: Any) -> requests.Response:
    return requests.get(api + path, params=params, headers=auth, timeout=5)


def post(api: str, auth: dict[str, str], path: str, body: Any) -> requests.Response:
    headers = {**auth, "Content-Type": "application/json"}
    return requests.post(api + path, data=_json(body), headers=headers, timeout=5)


def put(api: str, auth: dict[str, str], path: str, **params: Any) -> requests.Response:
    return requests.put(api + path, params=params, headers=auth, timeout=5)


def vat_ids(api: str, auth: dict[str, str]) -> dict[str, int]:
    return {v["number"]: v["id"] for v in get(api, auth, "/ledger/vatType").json()["values"]}


def customer_id(api: str, auth: dict[str, str], number: int) -> int:
    [found] = get(api, auth, "/customer", customerAccountNumber=str(number)).json()["values"]
    return found["id"]


def payment_types(api: str, auth: dict[str, str]) -> dict[str, int]:
    return {p["description"]: p["id"] for p in get(api, auth, "/invoice/paymentType").json()["values"]}


def order_body(api: str, auth: dict[str, str], *, including: bool = True, **overrides: Any) -> dict[str, Any]:
    """Two lines: 2 x 625.00 at 25 % and 115.00 at 15 % (incl. VAT), or the same net excl. VAT."""
    vat = vat_ids(api, auth)
    price = "unitPriceIncludingVatCurrency" if including else "unitPriceExcludingVatCurrency"
    body = {
        "customer": {"id": customer_id(api, auth, 10_001)},
        "orderDate": DAY,
        "deliveryDate": DAY,
        "number": "WEB-1001",
        "reference": "Nettbutikk ordre 1001",
        "deliveryComment": "Leveres på døra",
        "isPrioritizeAmountsIncludingVat": including,
        "orderLines": [
            {"description": "Kaffekanne", "count": 2, price: Decimal("625.00") if including else Decimal("500.00"),
             "vatType": {"id": vat["3"]}},
            {"description": "Kaffebønner", "count": 1, price: Decimal("115.00") if including else Decimal("100.00"),
             "vatType": {"id": vat["31"]}},
        ],
    }  # fmt: skip
    body.update(overrides)
    return body


def create_order(api: str, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    r = post(api, auth, "/order", order_body(api, auth, **overrides))
    assert r.status_code == 201, r.text
    return r.json()["value"]


def balances(api: str, auth: dict[str, str], date_from: str = "2026-01-01", date_to: str = "2027-01-01"):
    r = get(api, auth, "/balanceSheet", dateFrom=date_from, dateTo=date_to, fields="*,account(number)")
    assert r.status_code == 200, r.text
    return {b["account"]["number"]: Decimal(str(b["balanceOut"])) for b in r.json()["values"]}


def admin_state(admin: str, company_id: int | None = None) -> dict[str, Any]:
    params = {} if company_id is None else {"company_id": company_id}
    r = requests.get(admin + "/invoicing", params=params, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


# ---- customers ------------------------------------------------------------------------------


def test_seeded_customers_and_the_inactive_filter(api, auth):
    r = get(api, auth, "/customer")
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/customer", "get", "200"))
    active = r.json()["values"]
    assert [c["customerNumber"] for c in active] == [10_000, 10_001, 10_002]
    assert r.json()["fullResultSize"] == 3

    # Inactive customers are hidden unless asked; isInactive=true gives them (Equals).
    assert get(api, auth, "/customer", customerAccountNumber="100001").json()["values"] == []
    inactive = get(api, auth, "/customer", customerAccountNumber="100001", isInactive="true").json()["values"]
    assert [(c["customerNumber"], c["isInactive"]) for c in inactive] == [(100_001, True)]
    assert [c["customerNumber"] for c in get(api, auth, "/customer", isInactive="true").json()["values"]] == [100_001]

    by_org = get(api, auth, "/customer", organizationNumber="915000001").json()["values"]
    assert [c["customerNumber"] for c in by_org] == [10_000]
    private = get(api, auth, "/customer", email="kari.nordmann@example.no").json()["values"]
    assert [(c["customerNumber"], c["isPrivateIndividual"]) for c in private] == [(10_001, True)]
    listed = get(api, auth, "/customer", customerAccountNumber="10000,10002").json()["values"]
    assert [c["customerNumber"] for c in listed] == [10_000, 10_002]
    assert [c["customerNumber"] for c in get(api, auth, "/customer", customerName="fjord").json()["values"]] == [10_002]
    page = get(api, auth, "/customer", **{"from": 1, "count": 1, "fields": "id,customerNumber"}).json()
    assert page["fullResultSize"] == 3 and page["count"] == 1
    assert [set(c) for c in page["values"]] == [{"id", "customerNumber"}]

    one = get(api, auth, f"/customer/{active[0]['id']}", fields="*,postalAddress(*)")
    assert_schema(one.json(), response_schema("/customer/{id}", "get", "200"))
    assert one.json()["value"]["postalAddress"]["city"] == "Tromsø"


def test_post_customer_numbers_collisions_and_assignment(api, auth, admin):
    body = {
        "name": "Per Hansen",
        "email": "per@example.no",
        "invoiceEmail": "per.faktura@example.no",
        "isPrivateIndividual": True,
        "invoiceSendMethod": "EMAIL",
        "phoneNumber": "+47 900 00 000",
        "postalAddress": {"addressLine1": "Storgata 1", "postalCode": "0155", "city": "Oslo", "country": {"id": 161}},
        "isCustomer": True,
    }
    # A number held by an inactive customer collides too (a client numbering from 100000 without
    # searching the inactive ones).
    for taken in (100_001, 10_000):
        error = assert_error(post(api, auth, "/customer", {**body, "customerNumber": taken}), 422, 18000)
        assert [(m["field"], m["message"]) for m in error["validationMessages"]] == [
            ("customerNumber", "Kundenummeret er allerede i bruk.")
        ]
    r = post(api, auth, "/customer", {**body, "customerNumber": 100_000})
    assert r.status_code == 201, r.text
    assert_schema(r.json(), response_schema("/customer", "post", "201"))
    assert r.json()["value"]["customerNumber"] == 100_000
    assert r.json()["value"]["postalAddress"].keys() == {"id", "url"}  # default rendering

    # Left out (or 0): the highest number in use + 1, at least 10000.
    assert post(api, auth, "/customer", body).json()["value"]["customerNumber"] == 100_002
    assert post(api, auth, "/customer", {**body, "customerNumber": 0}).json()["value"]["customerNumber"] == 100_003
    # The admin can set where the series goes on.
    r = requests.post(admin + "/invoicing", json={"next_customer_number": 10_001}, timeout=5)
    assert r.status_code == 200 and r.json()["next_customer_number"] == 10_001
    assert post(api, auth, "/customer", body).json()["value"]["customerNumber"] == 10_003  # 10001, 10002 taken
    assert post(api, auth, "/customer", body).json()["value"]["customerNumber"] == 10_004

    error = assert_error(post(api, auth, "/customer", {"email": "x@example.no"}), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == ["name"]
    error = assert_error(post(api, auth, "/customer", {"name": "X", "email": "ikke en adresse"}), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == ["email"]


# ---- orders ---------------------------------------------------------------------------------


def test_order_round_trip_and_line_amounts(api, auth):
    r = post(api, auth, "/order", order_body(api, auth))
    assert r.status_code == 201, r.text
    assert_schema(r.json(), response_schema("/order", "post", "201"))
    created = r.json()["value"]
    assert created["isClosed"] is False and created["number"] == "WEB-1001"

    r = get(api, auth, f"/order/{created['id']}", fields="*,orderLines(*)")
    assert_schema(r.json(), response_schema("/order/{id}", "get", "200"))
    lines = r.json()["value"]["orderLines"]
    amounts = [(Decimal(str(x["amountExcludingVatCurrency"])), Decimal(str(x["amountIncludingVatCurrency"])))
               for x in lines]  # fmt: skip
    assert amounts == [(Decimal("1000.00"), Decimal("1250.00")), (Decimal("100.00"), Decimal("115.00"))]
    assert Decimal(str(lines[0]["unitPriceExcludingVatCurrency"])) == Decimal("500.00")  # derived

    # Excl. VAT with a discount: net 3 x 99.99 x 90 % = 269.973 -> 269.97, VAT 67.4925 -> 67.49.
    vat = vat_ids(api, auth)
    line = {"description": "Krus", "count": 3, "unitPriceExcludingVatCurrency": Decimal("99.99"),
            "discount": 10, "vatType": {"id": vat["3"]}}  # fmt: skip
    excl = create_order(api, auth, isPrioritizeAmountsIncludingVat=False, orderLines=[line])
    [shown] = get(api, auth, f"/order/{excl['id']}", fields="orderLines(*)").json()["value"]["orderLines"]
    assert Decimal(str(shown["amountExcludingVatCurrency"])) == Decimal("269.97")
    assert Decimal(str(shown["amountIncludingVatCurrency"])) == Decimal("337.46")


def test_order_search_needs_the_date_range_and_filters(api, auth):
    for params in ({}, {"orderDateFrom": DAY}, {"orderDateTo": "2026-03-03"}):
        error = assert_error(get(api, auth, "/order", **params), 422, 18000)
        assert error["validationMessages"][0]["field"] in ("orderDateFrom", "orderDateTo")
    first = create_order(api, auth)
    second = create_order(api, auth, number="WEB-1002", deliveryComment="Hentes i butikk", orderDate="2026-03-03")
    create_order(api, auth, number="WEB-1001")  # the same number again: not refused (undocumented)

    def found(**params: Any) -> list[int]:
        r = get(api, auth, "/order", **params)
        assert r.status_code == 200, r.text
        assert_schema(r.json(), response_schema("/order", "get", "200"))
        return [o["id"] for o in r.json()["values"]]

    assert len(found(orderDateFrom=DAY, orderDateTo="2026-03-04")) == 3
    assert second["id"] not in found(orderDateFrom=DAY, orderDateTo="2026-03-03")  # dateTo exclusive
    assert found(orderDateFrom=DAY, orderDateTo="2026-03-04", number="WEB-1002") == [second["id"]]
    assert found(orderDateFrom=DAY, orderDateTo="2026-03-04", number="WEB-100") == []  # exact
    assert found(orderDateFrom=DAY, orderDateTo="2026-03-04", deliveryComment="butikk") == [second["id"]]
    other = customer_id(api, auth, 10_000)
    assert found(orderDateFrom=DAY, orderDateTo="2026-03-04", customerId=str(other)) == []
    put(api, auth, f"/order/{first['id']}/:invoice", invoiceDate=DAY, sendToCustomer="false")
    assert found(orderDateFrom=DAY, orderDateTo="2026-03-04", isClosed="true") == [first["id"]]
    assert first["id"] not in found(orderDateFrom=DAY, orderDateTo="2026-03-04", isClosed="false")


def _prices(body: dict[str, Any], *, incl: bool, excl: bool) -> dict[str, Any]:
    line = {k: v for k, v in body["orderLines"][0].items() if not k.startswith("unitPrice")}
    if incl:
        line["unitPriceIncludingVatCurrency"] = Decimal("125.00")
    if excl:
        line["unitPriceExcludingVatCurrency"] = Decimal("100.00")
    return {**body, "orderLines": [line]}


@pytest.mark.parametrize(
    ("including", "incl", "excl", "field"),
    [
        (True, False, True, "orderLines.unitPriceExcludingVatCurrency"),
        (True, True, True, "orderLines.unitPriceExcludingVatCurrency"),
        (True, False, False, "orderLines.unitPriceIncludingVatCurrency"),
        (False, True, False, "orderLines.unitPriceIncludingVatCurrency"),
        (False, True, True, "orderLines.unitPriceIncludingVatCurrency"),
        (False, False, False, "orderLines.unitPriceExcludingVatCurrency"),
    ],
)
def test_prices_must_match_is_prioritize_amounts_including_vat(api, auth, store, including, incl, excl, field):
    body = _prices(order_body(api, auth, isPrioritizeAmountsIncludingVat=including), incl=incl, excl=excl)
    error = assert_error(post(api, auth, "/order", body), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == [field]
    assert error["validationMessages"][0]["path"] == field.replace("orderLines", "orderLines[0]")
    assert store.invoicing.orders_of(DEMO_COMPANY.id) == []


def test_order_refusals(api, auth):
    vat = vat_ids(api, auth)
    cases = [
        ({"customer": {"id": 1}}, "customer.id"),
        ({"customer": None}, "customer"),
        ({"orderDate": None}, "orderDate"),
        ({"deliveryDate": "2026-02-30"}, "deliveryDate"),
    ]
    for override, field in cases:
        error = assert_error(post(api, auth, "/order", order_body(api, auth, **override)), 422, 18000)
        assert [m["field"] for m in error["validationMessages"]] == [field]
    body = order_body(api, auth)
    body["orderLines"][1]["vatType"] = {"id": vat["1"]}  # an incoming VAT type on a sale
    error = assert_error(post(api, auth, "/order", body), 422, 18000)
    assert [m["path"] for m in error["validationMessages"]] == ["orderLines[1].vatType.id"]
    # Another company's customer does not exist here.
    bakery = as_user(login(api, DEMO_FIRM_EMPLOYEE_TOKEN), BAKERY.id)
    body = order_body(api, auth, customer={"id": customer_id(api, bakery, 10_001)})
    assert_error(post(api, auth, "/order", body), 422, 18000)


# ---- invoicing and what the ledger shows ------------------------------------------------------


def test_paid_invoice_books_the_invoice_and_the_payment(api, auth, store):
    order = create_order(api, auth)
    vipps = payment_types(api, auth)["Vipps"]
    r = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY, paymentTypeId=vipps, paidAmount="1365.00")
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/order/{id}/:invoice", "put", "200"))
    invoice = r.json()["value"]
    assert invoice["invoiceNumber"] == 1 and invoice["kid"] == kid_for(1) == "18"
    assert invoice["invoiceDate"] == DAY and invoice["invoiceDueDate"] == "2026-03-16"
    assert Decimal(str(invoice["amount"])) == Decimal("1365.00")
    assert Decimal(str(invoice["amountExcludingVat"])) == Decimal("1100.00")
    assert Decimal(str(invoice["amountOutstanding"])) == Decimal("0.00")
    assert invoice["orders"] == [{"id": order["id"], "url": order["url"]}]
    assert invoice["customer"]["id"] == order["customer"]["id"]

    # The books, to the øre: 1500 settled, revenue and VAT per rate, the money on Vipps' account.
    assert balances(api, auth) == {
        1500: Decimal("0.00"),
        1945: Decimal("1365.00"),
        2700: Decimal("-250.00"),
        2701: Decimal("-15.00"),
        3000: Decimal("-1000.00"),
        3030: Decimal("-100.00"),
    }
    fields = "voucher(id,description),amount,customer(id),invoiceNumber"
    postings = get(api, auth, "/ledger/posting", dateFrom=DAY, dateTo="2026-03-03", accountNumberFrom=1500,
                   accountNumberTo=1500, fields=fields)  # fmt: skip
    receivable = postings.json()["values"]
    assert [(Decimal(str(p["amount"])), p["customer"]["id"], p["invoiceNumber"]) for p in receivable] == [
        (Decimal("1365.00"), order["customer"]["id"], "1"),
        (Decimal("-1365.00"), order["customer"]["id"], "1"),
    ]
    assert receivable[0]["voucher"]["id"] == invoice["voucher"]["id"]
    assert [v.description for v in store.list_vouchers()] == ["Faktura 1", "Innbetaling faktura 1"]

    # The order is closed and cannot be invoiced again.
    assert get(api, auth, f"/order/{order['id']}").json()["value"]["isClosed"] is True
    error = assert_error(put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY), 422, 18000)
    assert error["validationMessages"][0]["message"] == "Ordren er allerede fakturert."
    assert len(store.list_vouchers()) == 2


def test_unpaid_invoice_leaves_the_receivable_open_until_paid(api, auth):
    order = create_order(api, auth, isPrioritizeAmountsIncludingVat=False, orderLines=order_body(
        api, auth, including=False)["orderLines"])  # fmt: skip
    # paymentTypeId=0 and paidAmount=0: not prepaid
    invoice = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY, paymentTypeId=0, paidAmount="0")
    assert invoice.status_code == 200, invoice.text
    invoice = invoice.json()["value"]
    assert Decimal(str(invoice["amountOutstanding"])) == Decimal("1365.00")
    assert balances(api, auth)[1500] == Decimal("1365.00")
    assert balances(api, auth)[3000] == Decimal("-1000.00")

    bank = payment_types(api, auth)["Betalt til bank"]
    path = f"/invoice/{invoice['id']}/:payment"
    error = assert_error(put(api, auth, path, paymentDate="2026-03-10", paymentTypeId=bank), 422, 18000)
    assert error["validationMessages"][0]["field"] == "paidAmount"
    r = put(api, auth, path, paymentDate="2026-03-10", paymentTypeId=bank, paidAmount="1000.00")
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/invoice/{id}/:payment", "put", "200"))
    assert Decimal(str(r.json()["value"]["amountOutstanding"])) == Decimal("365.00")
    put(api, auth, path, paymentDate="2026-03-11", paymentTypeId=bank, paidAmount="365.00")
    assert Decimal(str(get(api, auth, f"/invoice/{invoice['id']}").json()["value"]["amountOutstanding"])) == 0
    final = balances(api, auth)
    assert final[1500] == Decimal("0.00") and final[1920] == Decimal("1365.00")
    assert balances(api, auth, date_to="2026-03-11")[1500] == Decimal("365.00")  # dated by paymentDate

    error = assert_error(put(api, auth, path, paymentDate=DAY, paymentTypeId=1, paidAmount="1.00"), 422, 18000)
    assert error["validationMessages"][0]["field"] == "paymentTypeId"


def test_invoice_query_checks(api, auth, store):
    order = create_order(api, auth)
    path = f"/order/{order['id']}/:invoice"
    vipps = payment_types(api, auth)["Vipps"]
    assert_error(put(api, auth, path), 422, 18000)  # invoiceDate is required
    error = assert_error(put(api, auth, path, invoiceDate=DAY, paymentTypeId=vipps), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == ["paidAmount"]
    error = assert_error(put(api, auth, path, invoiceDate=DAY, paidAmount="10.00"), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == ["paymentTypeId"]
    assert_error(put(api, auth, path, invoiceDate=DAY, paymentTypeId=1, paidAmount="10.00"), 422, 18000)
    assert_error(put(api, auth, "/order/1/:invoice", invoiceDate=DAY), 404, 6000)
    empty = create_order(api, auth, orderLines=[])
    error = assert_error(put(api, auth, f"/order/{empty['id']}/:invoice", invoiceDate=DAY), 422, 18000)
    assert error["validationMessages"][0]["field"] == "orderLines"
    assert store.list_vouchers() == [] and store.invoicing.invoices == {}

    # A part paid by card and the rest by bank.
    kinds = payment_types(api, auth)
    r = put(api, auth, path, invoiceDate=DAY, paymentTypeId=kinds["Bankkort"], paidAmount="365.00",
            paymentTypeIdRestAmount=kinds["Betalt til bank"], createOnAccount="NONE")  # fmt: skip
    assert r.status_code == 200, r.text
    assert Decimal(str(r.json()["value"]["amountOutstanding"])) == 0
    books = balances(api, auth)
    assert (books[1500], books[1580], books[1920]) == (Decimal("0.00"), Decimal("365.00"), Decimal("1000.00"))


def test_send_to_customer_defaults_to_true(api, auth, admin):
    first = create_order(api, auth)  # the private customer 10001, e-mail only
    assert put(api, auth, f"/order/{first['id']}/:invoice", invoiceDate=DAY).status_code == 200
    second = create_order(api, auth, receiverEmail="innkjop@example.no")
    put(api, auth, f"/order/{second['id']}/:invoice", invoiceDate=DAY, sendToCustomer="true")
    quiet = create_order(api, auth)
    put(api, auth, f"/order/{quiet['id']}/:invoice", invoiceDate=DAY, sendToCustomer="false")
    ehf = create_order(api, auth, customer={"id": customer_id(api, auth, 10_000)})
    put(api, auth, f"/order/{ehf['id']}/:invoice", invoiceDate=DAY, sendType="EMAIL")
    sent = admin_state(admin)["emails"]
    assert [(e["order_id"], e["send_type"], e["to"], e["invoice_number"]) for e in sent] == [
        (first["id"], "EMAIL", "kari.nordmann@example.no", 1),
        (second["id"], "EMAIL", "innkjop@example.no", 2),
        (ehf["id"], "EMAIL", "faktura@nordlys-catering.no", 4),  # invoiceEmail before email
    ]


def test_bank_account_missing_then_fixed_and_retried_on_the_same_order(api, auth, admin, store):
    order = create_order(api, auth)
    r = requests.post(admin + "/invoicing", json={"bank_account_registered": False}, timeout=5)
    assert r.status_code == 200 and r.json()["bank_account_registered"] is False
    error = assert_error(put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY), 422, 18000)
    assert [m["message"] for m in error["validationMessages"]] == [BANK_ACCOUNT_MISSING]
    assert BANK_ACCOUNT_MISSING == "Faktura kan ikke opprettes før selskapet har registrert et bankkontonummer."
    assert get(api, auth, f"/order/{order['id']}").json()["value"]["isClosed"] is False
    assert store.list_vouchers() == [] and admin_state(admin)["emails"] == []

    requests.post(admin + "/invoicing", json={"bank_account_registered": True}, timeout=5).raise_for_status()
    r = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY)
    assert r.status_code == 200, r.text
    assert r.json()["value"]["invoiceNumber"] == 1  # the refusal used no number
    assert len(store.list_vouchers()) == 1


def test_invoice_search_needs_the_date_range_and_filters(api, auth, admin):
    for params in ({}, {"invoiceDateFrom": DAY}, {"invoiceDateTo": DAY}):
        assert_error(get(api, auth, "/invoice", **params), 422, 18000)
    requests.post(admin + "/invoicing", json={"next_invoice_number": 5000}, timeout=5).raise_for_status()
    first = put(api, auth, f"/order/{create_order(api, auth)['id']}/:invoice", invoiceDate=DAY).json()["value"]
    other = create_order(api, auth, customer={"id": customer_id(api, auth, 10_002)})
    second = put(api, auth, f"/order/{other['id']}/:invoice", invoiceDate="2026-03-03").json()["value"]
    assert (first["invoiceNumber"], second["invoiceNumber"]) == (5000, 5001)

    def found(**params: Any) -> list[int]:
        r = get(api, auth, "/invoice", invoiceDateFrom=DAY, invoiceDateTo="2026-03-04", **params)
        assert r.status_code == 200, r.text
        assert_schema(r.json(), response_schema("/invoice", "get", "200"))
        return [i["invoiceNumber"] for i in r.json()["values"]]

    assert found() == [5000, 5001]
    assert get(api, auth, "/invoice", invoiceDateFrom=DAY, invoiceDateTo="2026-03-03").json()["fullResultSize"] == 1
    assert found(invoiceNumber="5001") == [5001]
    assert found(kid=first["kid"]) == [5000]
    assert found(voucherId=str(second["voucher"]["id"])) == [5001]
    assert found(customerId=str(other["customer"]["id"])) == [5001]
    r = get(api, auth, f"/invoice/{first['id']}", fields="*,orderLines(*),postings(*)")
    assert_schema(r.json(), response_schema("/invoice/{id}", "get", "200"))
    assert len(r.json()["value"]["orderLines"]) == 2 and len(r.json()["value"]["postings"]) == 1


# ---- payment types --------------------------------------------------------------------------


def test_payment_types_have_their_own_ids_per_company(api, auth):
    r = get(api, auth, "/invoice/paymentType", fields="*,debitAccount(number),creditAccount(number)")
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema("/invoice/paymentType", "get", "200"))
    kiosk = {p["description"]: (p["debitAccount"]["number"], p["creditAccount"]["number"]) for p in r.json()["values"]}
    assert kiosk == {
        "Betalt til bank": (1920, 1500),
        "Kontant": (1900, 1500),
        "Vipps": (1945, 1500),
        "Klarna": (1949, 1500),
        "Bankkort": (1580, 1500),
        "Gavekort": (2900, 1500),
    }
    assert [p["description"] for p in get(api, auth, "/invoice/paymentType", description="KORT").json()["values"]] == [
        "Bankkort",
        "Gavekort",
    ]
    vipps = get(api, auth, "/invoice/paymentType", query="vipps").json()["values"]
    assert [p["description"] for p in vipps] == ["Vipps"]

    bakery = as_user(login(api, DEMO_FIRM_EMPLOYEE_TOKEN), BAKERY.id)
    kiosk_ids, bakery_ids = payment_types(api, auth), payment_types(api, bakery)
    assert kiosk_ids.keys() == bakery_ids.keys()
    assert not set(kiosk_ids.values()) & set(bakery_ids.values())
    one = get(api, bakery, f"/invoice/paymentType/{bakery_ids['Vipps']}")
    assert_schema(one.json(), response_schema("/invoice/paymentType/{id}", "get", "200"))
    assert_error(get(api, auth, f"/invoice/paymentType/{bakery_ids['Vipps']}"), 404, 6000)

    # The kiosk's Vipps id does not exist in the bakery.
    order = create_order(api, bakery)
    r = put(api, bakery, f"/order/{order['id']}/:invoice", invoiceDate=DAY, paymentTypeId=kiosk_ids["Vipps"],
            paidAmount="1365.00")  # fmt: skip
    error = assert_error(r, 422, 18000)
    assert error["validationMessages"][0]["message"] == "Betalingstypen finnes ikke."
    r = put(api, bakery, f"/order/{order['id']}/:invoice", invoiceDate=DAY, paymentTypeId=bakery_ids["Vipps"],
            paidAmount="1365.00")  # fmt: skip
    assert r.status_code == 200, r.text
    assert balances(api, bakery)[1945] == Decimal("1365.00")
    assert balances(api, auth) == {}  # the kiosk's books are untouched


# ---- faults, persistence, admin ---------------------------------------------------------------


def test_save_then_drop_on_post_order_stores_exactly_one_order(sandbox, api, auth, store):
    body = order_body(api, auth)
    add_fault(sandbox, path="/order", method="POST", kind="save_then_drop")
    with pytest.raises(requests.ConnectionError):
        post(api, auth, "/order", body)
    [stored] = store.invoicing.orders_of(DEMO_COMPANY.id)
    assert stored.number == "WEB-1001"
    found = get(api, auth, "/order", orderDateFrom=DAY, orderDateTo="2026-03-03", number="WEB-1001").json()
    assert [o["id"] for o in found["values"]] == [stored.id]
    calls = requests.get(sandbox[1].url + "/_sandbox/calls", timeout=5).json()["calls"]
    [dropped] = [c for c in calls if c["fault"] == "save_then_drop"]
    assert dropped["status"] is None and dropped["saved_status"] == 201


def test_save_then_drop_on_invoicing_leaves_the_invoice_and_a_closed_order(sandbox, api, auth, store):
    order = create_order(api, auth)
    add_fault(sandbox, path="/order/*/:invoice", method="PUT", kind="save_then_drop")
    with pytest.raises(requests.ConnectionError):
        put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY)
    [invoice] = store.invoicing.invoices_of(DEMO_COMPANY.id)
    assert invoice.order_id == order["id"]
    found = get(api, auth, "/invoice", invoiceDateFrom=DAY, invoiceDateTo="2026-03-03").json()["values"]
    assert [i["invoiceNumber"] for i in found] == [1]
    error = assert_error(put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY), 422, 18000)
    assert error["validationMessages"][0]["message"] == "Ordren er allerede fakturert."
    assert len(store.list_vouchers()) == 1


def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "tripletex.json"
    with running(create_app(state_path=state)) as server:
        api = server.url + "/v2"
        auth = login(api, DEMO_EMPLOYEE_TOKEN)
        made = post(api, auth, "/customer", {"name": "Lagret Kunde AS", "email": "lagret@example.no"}).json()["value"]
        order = create_order(api, auth, customer={"id": made["id"]})
        requests.post(server.url + "/_sandbox/invoicing", json={"bank_account_registered": False}, timeout=5)
        assert put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY).status_code == 422
        requests.post(server.url + "/_sandbox/invoicing", json={"bank_account_registered": True}, timeout=5)
        first = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY).json()["value"]
        waiting = create_order(api, auth, customer={"id": made["id"]}, number="WEB-2")
    with running(create_app(state_path=state)) as server:
        api = server.url + "/v2"
        again = get(api, auth, f"/customer/{made['id']}").json()["value"]
        assert again["customerNumber"] == made["customerNumber"] == 100_002
        assert get(api, auth, f"/order/{order['id']}").json()["value"]["isClosed"] is True
        assert get(api, auth, f"/invoice/{first['id']}").json()["value"]["invoiceNumber"] == 1
        second = put(api, auth, f"/order/{waiting['id']}/:invoice", invoiceDate=DAY).json()["value"]
        assert second["invoiceNumber"] == 2 and second["id"] > first["id"]
        assert balances(api, auth)[1500] == Decimal("2730.00")
        assert [e["to"] for e in admin_state(server.url + "/_sandbox")["emails"]] == ["lagret@example.no"] * 2
        assert post(api, auth, "/customer", {"name": "Neste"}).json()["value"]["customerNumber"] == 100_003


def test_admin_listing_and_reset(api, auth, admin, store):
    order = create_order(api, auth)
    put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY)
    post(api, auth, "/customer", {"name": "Ny Kunde"})
    listing = admin_state(admin)
    assert set(listing) == {
        "company_id", "settings", "customers", "orders", "invoices", "payment_types", "emails", "products"
    }  # fmt: skip
    assert listing["company_id"] == DEMO_COMPANY.id
    assert listing["settings"] == {
        "company_id": DEMO_COMPANY.id,
        "bank_account_registered": True,
        "next_invoice_number": 2,
        "next_customer_number": None,
    }
    assert [c["customerNumber"] for c in listing["customers"]] == [10_000, 10_001, 10_002, 100_001, 100_002]
    assert [o["id"] for o in listing["orders"]] == [order["id"]]
    assert listing["orders"][0]["orderLines"][0]["description"] == "Kaffekanne"
    assert [i["invoiceNumber"] for i in listing["invoices"]] == [1]
    assert [p["description"] for p in listing["payment_types"]][:2] == ["Betalt til bank", "Kontant"]
    assert len(listing["emails"]) == 1
    assert admin_state(admin, BAKERY.id)["orders"] == []
    assert requests.get(admin + "/invoicing", params={"company_id": 42}, timeout=5).status_code == 404
    assert requests.post(admin + "/invoicing", json={"next_invoice_number": 0}, timeout=5).status_code == 400

    requests.post(admin + "/invoicing", json={"bank_account_registered": False}, timeout=5).raise_for_status()
    requests.post(admin + "/reset", timeout=5).raise_for_status()
    listing = admin_state(admin)
    assert listing["orders"] == listing["invoices"] == listing["emails"] == []
    assert [c["customerNumber"] for c in listing["customers"]] == [10_000, 10_001, 10_002, 100_001]
    assert listing["settings"]["bank_account_registered"] is True
    assert store.list_vouchers() == []


# ---- the sandbox's own arithmetic -------------------------------------------------------------


def test_line_amounts_round_half_up_as_the_module_says():
    from kassebro.sandbox.tripletex import VAT_TYPES

    vat = {v.number: v for v in VAT_TYPES}
    # incl. VAT: gross 1000.02 at 12 % -> net 892.875 -> 892.88
    assert line_amounts(Decimal(1), Decimal("1000.02"), Decimal(0), vat["33"], including_vat=True) == (89288, 100002)
    # 3 x 33.333 x 50 % = 49.9995 -> 50.00 gross
    assert line_amounts(Decimal(3), Decimal("33.333"), Decimal(50), vat["3"], including_vat=True) == (4000, 5000)
    # excl. VAT: net 0.10 at 15 % -> VAT 0.015 -> 0.02
    assert line_amounts(Decimal(1), Decimal("0.10"), Decimal(0), vat["31"], including_vat=False) == (10, 12)
    assert line_amounts(Decimal("-1"), Decimal("0.10"), Decimal(0), vat["31"], including_vat=False) == (-10, -12)
    assert line_amounts(Decimal(2), Decimal("50"), Decimal(0), vat["5"], including_vat=False) == (10000, 10000)
    assert [kid_for(n) for n in (1, 5000, 12345)] == ["18", "50005", "123455"]


def test_post_invoice_for_an_existing_order_may_set_the_number(api, auth):
    order = create_order(api, auth)
    body = {"invoiceDate": "2026-03-02", "invoiceNumber": 50_000, "orders": [{"id": order["id"]}]}
    r = requests.post(
        api + "/invoice", params={"sendToCustomer": "false"}, data=_json(body),
        headers={**auth, "Content-Type": "application/json"}, timeout=5,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert_schema(r.json(), response_schema("/invoice", "post", "201"))
    assert r.json()["value"]["invoiceNumber"] == 50_000
    found = get(api, auth, "/invoice", invoiceNumber=50_000, invoiceDateFrom="2000-01-01", invoiceDateTo="2100-01-01")
    assert [v["id"] for v in found.json()["values"]] == [r.json()["value"]["id"]]
    other = create_order(api, auth)
    again = {**body, "orders": [{"id": other["id"]}]}
    taken = post(api, auth, "/invoice", again)
    assert_error(taken, 422, 18000)
    assert "invoiceNumber" in taken.text
    closed = post(api, auth, "/invoice", {**body, "invoiceNumber": 0})
    assert_error(closed, 422, 18000)  # the first order is invoiced: it cannot be again
