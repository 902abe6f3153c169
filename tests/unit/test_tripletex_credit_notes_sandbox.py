"""The Tripletex sandbox's credit notes (`PUT /invoice/{id}/:createCreditNote`), over real HTTP: the
spec's shape and parameters, the credit note and its voucher, the credited invoice, the refusals,
the send, a lost answer and persistence."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import DEMO_COMPANY, DEMO_EMPLOYEE_TOKEN, create_app

from . import test_tripletex_invoicing_sandbox as invoicing_tests
from .test_tripletex_invoicing_sandbox import (
    DAY,
    admin_state,
    balances,
    create_order,
    customer_id,
    get,
    payment_types,
    put,
)
from .test_tripletex_sandbox import add_fault, assert_error, assert_schema, login, response_schema

# the invoicing tests' fixtures: the sandbox (reset before each test), its URLs, a login, its store
sandbox, _clean, api, admin, auth, store = (
    invoicing_tests.sandbox,
    invoicing_tests._clean,
    invoicing_tests.api,
    invoicing_tests.admin,
    invoicing_tests.auth,
    invoicing_tests.store,
)

LATER = "2026-03-09"
CREDIT = "/invoice/{id}/:createCreditNote"


def invoice(api, auth, **params) -> dict:
    """An invoice of 1365.00 (1250.00 at 25 %, 115.00 at 15 %) for the private customer 10001."""
    order = create_order(api, auth)
    r = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY, sendToCustomer="false", **params)
    assert r.status_code == 200, r.text
    return r.json()["value"]


def credit(api, auth, invoice_id: int, **params):
    return put(api, auth, CREDIT.format(id=invoice_id), **params)


def test_a_credit_note_reverses_an_unpaid_invoice_and_settles_it(api, auth, store):
    original = invoice(api, auth)
    r = credit(api, auth, original["id"], date=LATER, comment="Refundert i nettbutikken", sendToCustomer="false")
    assert r.status_code == 200, r.text
    assert_schema(r.json(), response_schema(CREDIT, "put", "200"))
    note = r.json()["value"]
    assert (note["isCreditNote"], note["creditedInvoice"], note["isCredited"]) == (True, original["id"], False)
    assert note["invoiceNumber"] == 2 and note["invoiceDate"] == LATER  # the company's own series
    assert note["comment"] == "Refundert i nettbutikken"
    assert Decimal(str(note["amount"])) == Decimal("-1365.00")
    assert Decimal(str(note["amountExcludingVat"])) == Decimal("-1100.00")
    assert Decimal(str(note["amountOutstanding"])) == 0
    assert note["customer"]["id"] == original["customer"]["id"]

    again = get(api, auth, f"/invoice/{original['id']}", fields="*")
    assert_schema(again.json(), response_schema("/invoice/{id}", "get", "200"))
    shown = again.json()["value"]
    assert (shown["isCredited"], shown["isCreditNote"], shown["creditedInvoice"]) == (True, False, None)
    assert Decimal(str(shown["amountOutstanding"])) == 0  # settled by the credit note

    lines = get(api, auth, f"/invoice/{note['id']}", fields="orderLines(count,amountIncludingVatCurrency)")
    assert [(Decimal(str(x["count"])), Decimal(str(x["amountIncludingVatCurrency"])))
            for x in lines.json()["value"]["orderLines"]] == [
        (Decimal(-2), Decimal("-1250.00")), (Decimal(-1), Decimal("-115.00"))
    ]  # fmt: skip

    # The books: the invoice's voucher reversed, the customer on 1500, nothing left anywhere.
    assert set(balances(api, auth).values()) == {Decimal("0.00")}
    fields = "voucher(id,description),amount,customer(id),invoiceNumber"
    postings = get(api, auth, "/ledger/posting", dateFrom=DAY, dateTo="2026-03-10", accountNumberFrom=1500,
                   accountNumberTo=1500, fields=fields).json()["values"]  # fmt: skip
    assert [(Decimal(str(p["amount"])), p["customer"]["id"], p["invoiceNumber"]) for p in postings] == [
        (Decimal("1365.00"), original["customer"]["id"], "1"),
        (Decimal("-1365.00"), original["customer"]["id"], "2"),
    ]
    assert postings[1]["voucher"]["id"] == note["voucher"]["id"]
    assert [v.description for v in store.list_vouchers()] == ["Faktura 1", "Kreditnota 2"]

    # Both are listed; the search sees the credit fields.
    found = get(api, auth, "/invoice", invoiceDateFrom=DAY, invoiceDateTo="2026-03-10",
                fields="invoiceNumber,isCredited,isCreditNote,creditedInvoice").json()["values"]  # fmt: skip
    assert found == [
        {"invoiceNumber": 1, "isCredited": True, "isCreditNote": False, "creditedInvoice": None},
        {"invoiceNumber": 2, "isCredited": False, "isCreditNote": True, "creditedInvoice": original["id"]},
    ]


def test_a_paid_invoice_credited_leaves_the_payment_owed_back_to_the_customer(api, auth):
    original = invoice(api, auth, paymentTypeId=payment_types(api, auth)["Vipps"], paidAmount="1365.00")
    r = credit(api, auth, original["id"], date=LATER, sendToCustomer="false")
    assert r.status_code == 200, r.text
    assert Decimal(str(r.json()["value"]["amountOutstanding"])) == Decimal("-1365.00")
    shown = get(api, auth, f"/invoice/{original['id']}").json()["value"]
    assert Decimal(str(shown["amountOutstanding"])) == 0 and shown["isCredited"] is True
    books = balances(api, auth)
    assert (books[1500], books[1945], books[3000], books[2700]) == (
        Decimal("-1365.00"), Decimal("1365.00"), Decimal("0.00"), Decimal("0.00")
    )  # fmt: skip


def test_credit_notes_refusals_change_nothing(api, auth, store):
    original = invoice(api, auth)
    error = assert_error(credit(api, auth, original["id"], sendToCustomer="false"), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == ["date"]
    error = assert_error(credit(api, auth, original["id"], date="2026-03-01", sendToCustomer="false"), 422, 18000)
    assert [m["field"] for m in error["validationMessages"]] == ["date"]  # before the invoice
    bad = credit(api, auth, original["id"], date=LATER, sendToCustomer="true", sendType="FAX")
    assert_error(bad, 422, 18000)
    assert_error(credit(api, auth, 1, date=LATER), 404, 6000)
    assert store.invoicing.invoices_of(DEMO_COMPANY.id)[0].credited_by is None and len(store.list_vouchers()) == 1

    note = credit(api, auth, original["id"], date=LATER, sendToCustomer="false").json()["value"]
    assert note["invoiceNumber"] == 2  # the refusals took no number
    error = assert_error(credit(api, auth, original["id"], date=LATER, sendToCustomer="false"), 422, 18000)
    assert [(m["field"], m["message"]) for m in error["validationMessages"]] == [
        ("id", "Fakturaen er allerede kreditert.")
    ]
    error = assert_error(credit(api, auth, note["id"], date=LATER, sendToCustomer="false"), 422, 18000)
    assert [(m["field"], m["message"]) for m in error["validationMessages"]] == [
        ("id", "En kreditnota kan ikke krediteres.")
    ]
    assert len(store.invoicing.invoices_of(DEMO_COMPANY.id)) == 2 and len(store.list_vouchers()) == 2


def test_send_to_customer_defaults_to_true_and_an_email_needs_credit_note_email(api, auth, admin):
    quiet = invoice(api, auth)
    assert credit(api, auth, quiet["id"], date=LATER, sendToCustomer="false", creditNoteEmail="x@example.no").ok
    no_address = invoice(api, auth)  # customer 10001 is sent invoices by EMAIL: not sent without an address
    assert credit(api, auth, no_address["id"], date=LATER).ok
    emailed = invoice(api, auth)
    third = credit(api, auth, emailed["id"], date=LATER, creditNoteEmail="kari.nordmann@example.no").json()["value"]
    order = create_order(api, auth, customer={"id": customer_id(api, auth, 10_000)})  # sends by EHF
    ehf = put(api, auth, f"/order/{order['id']}/:invoice", invoiceDate=DAY, sendToCustomer="false").json()["value"]
    fourth = credit(api, auth, ehf["id"], date=LATER).json()["value"]
    sent = admin_state(admin)["emails"]
    assert [(e["invoice_number"], e["send_type"], e["to"], e["credit_note"]) for e in sent] == [
        (third["invoiceNumber"], "EMAIL", "kari.nordmann@example.no", True),
        (fourth["invoiceNumber"], "EHF", None, True),
    ]


def test_save_then_drop_leaves_exactly_one_credit_note(sandbox, api, auth, store):
    original = invoice(api, auth)
    add_fault(sandbox, path="/invoice/*/:createCreditNote", method="PUT", kind="save_then_drop")
    with pytest.raises(requests.ConnectionError):
        credit(api, auth, original["id"], date=LATER, sendToCustomer="false")
    shown = get(api, auth, f"/invoice/{original['id']}", fields="isCredited").json()["value"]
    assert shown == {"isCredited": True}
    error = assert_error(credit(api, auth, original["id"], date=LATER, sendToCustomer="false"), 422, 18000)
    assert error["validationMessages"][0]["message"] == "Fakturaen er allerede kreditert."
    assert [i.credit_note_of for i in store.invoicing.invoices_of(DEMO_COMPANY.id)] == [None, original["id"]]


def test_credit_notes_survive_a_restart(tmp_path):
    state = tmp_path / "tripletex.json"
    with running(create_app(state_path=state)) as server:
        api = server.url + "/v2"
        auth = login(api, DEMO_EMPLOYEE_TOKEN)
        original = invoice(api, auth)
        note = credit(api, auth, original["id"], date=LATER, sendToCustomer="false").json()["value"]
    with running(create_app(state_path=state)) as server:
        api = server.url + "/v2"
        fields = "isCredited,isCreditNote,creditedInvoice,amountOutstanding,comment"
        assert get(api, auth, f"/invoice/{original['id']}", fields=fields).json()["value"]["isCredited"] is True
        shown = get(api, auth, f"/invoice/{note['id']}", fields=fields).json()["value"]
        assert (shown["isCreditNote"], shown["creditedInvoice"]) == (True, original["id"])
        assert_error(credit(api, auth, original["id"], date=LATER, sendToCustomer="false"), 422, 18000)
