"""Web orders into the Tripletex sandbox over real HTTP, exactly once, per payment path.

The orders here are built by hand (the shops' own shapes are the adapters' tests); what is checked
is what the Tripletex sandbox holds afterwards: orders, invoices, e-mails, customers, the books.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests

from kassebro.config.webshop import Webshop
from kassebro.demo.sandboxes import client
from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing
from kassebro.posting.transfers import Transfers
from kassebro.posting.webshop import retransfer, tag, transfer_order, transfer_orders
from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import create_app
from kassebro.sources.webshop import WebCustomer, WebLine, WebOrder

CREATED = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
SHIPPED = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server.url


@pytest.fixture(autouse=True)
def _clean(sandbox):
    requests.post(sandbox[1] + "/_sandbox/reset", timeout=5).raise_for_status()


@pytest.fixture
def tx(sandbox) -> TripletexInvoicing:
    return TripletexInvoicing(client("tripletex", sandbox[1]))


@pytest.fixture
def store(tmp_path) -> Transfers:
    return Transfers(f"sqlite:///{tmp_path / 'journal.sqlite'}")


SHOP = Webshop.model_validate(
    {
        "id": "fjord",
        "name": "Nettbutikk Fjord",
        "source": {"kind": "woocommerce", "connection": "woocommerce_demo"},
        "ledger": {"connection": "tripletex_demo"},
        "enabled_since": "2026-11-01",
        "payment_methods": {
            "vipps": {"transfer": "paid_invoice", "payment_type": "Vipps"},
            "invoice": {"transfer": "invoice", "send_invoice": True},
            "bacs": {"transfer": "order"},
        },
    }
)


def web_order(number: str, method: str = "vipps", *, captured: int | None = 53690, customer: WebCustomer | None = None):
    lines = (
        WebLine("item", "Ullgenser", Decimal(2), Decimal("199.00"), 39800, Decimal(25), sku="UG-1"),
        WebLine("item", "Kaffe 500 g", Decimal(1), Decimal("89.90"), 8990, Decimal(15), sku="KF-5"),
        WebLine("shipping", "Posten Servicepakke", Decimal(1), Decimal("99.00"), 9900, Decimal(25)),
        WebLine("discount", "Rabatt JUL10", Decimal(1), Decimal("-50.00"), -5000, Decimal(25)),
    )
    return WebOrder(
        webshop_id="fjord", number=number, shop_id=number, created_at=CREATED, updated_at=SHIPPED,
        status="completed", history=(("completed", SHIPPED),), prices_include_vat=True, currency="NOK",
        payment_method=method, payment_title=method.title(), captured=captured, total=53690, vat_total=9800,
        customer=customer or WebCustomer(shop_id="42", name="Kari Nordmann", email="kari@example.no", postcode="5003",
                                         city="Bergen"),
        lines=lines,
    )  # fmt: skip


def books(sandbox) -> dict:
    return requests.get(sandbox[1] + "/_sandbox/invoicing", timeout=5).json()


def ours(state: dict, number: str) -> list[dict]:
    return [o for o in state["orders"] if o.get("number") == number]


def test_paid_invoice_is_marked_paid_with_the_captured_amount_and_not_emailed(sandbox, tx, store) -> None:
    outcome = transfer_order(web_order("5001"), SHOP, tx, store)
    assert outcome.state == "done" and outcome.invoice_number and outcome.note == ""
    state = books(sandbox)
    (order,) = ours(state, "5001")
    assert order["isClosed"] is True and tag(SHOP, "5001") in order["deliveryComment"]
    (invoice,) = [i for i in state["invoices"] if i["orders"][0]["id"] == order["id"]]
    assert Decimal(str(invoice["amount"])) == Decimal("536.90")
    assert Decimal(str(invoice["amountOutstanding"])) == 0
    assert state["emails"] == []
    record = store.get("fjord", "5001")
    assert (record.state, record.invoice_number, record.paid_ore, record.emailed) == (
        "done",
        outcome.invoice_number,
        53690,
        False,
    )


def test_invoice_to_pay_later_is_emailed_and_left_open(sandbox, tx, store) -> None:
    outcome = transfer_order(web_order("5002", "invoice"), SHOP, tx, store)
    assert outcome.state == "done"
    state = books(sandbox)
    (invoice,) = state["invoices"]
    assert Decimal(str(invoice["amountOutstanding"])) == Decimal("536.90")
    assert len(state["emails"]) == 1 and "kari@example.no" in str(state["emails"][0])


def test_b2b_order_is_left_open_for_invoicing_in_tripletex(sandbox, tx, store) -> None:
    outcome = transfer_order(web_order("5003", "bacs"), SHOP, tx, store)
    assert outcome.state == "done" and outcome.invoice_number is None and "left open" in outcome.note
    state = books(sandbox)
    (order,) = ours(state, "5003")
    assert order["isClosed"] is False and state["invoices"] == []


def test_a_capture_that_differs_is_reported_and_left_on_the_invoice(sandbox, tx, store) -> None:
    outcome = transfer_order(web_order("5004", captured=53600), SHOP, tx, store)
    assert outcome.state == "done" and "captured 536.00" in outcome.note and "0.90 left" in outcome.note
    (invoice,) = books(sandbox)["invoices"]
    assert Decimal(str(invoice["amountOutstanding"])) == Decimal("0.90")


def test_a_paid_method_without_a_captured_amount_is_held_nothing_sent(sandbox, tx, store) -> None:
    outcome = transfer_order(web_order("5005", captured=None), SHOP, tx, store)
    assert outcome.state == "held" and "captured" in outcome.message
    assert ours(books(sandbox), "5005") == []


@pytest.mark.parametrize(("method", "path"), [("POST", "/order"), ("PUT", "/order/*/:invoice")])
def test_saved_then_connection_dropped_leaves_one_order_and_one_invoice(sandbox, tx, store, method, path) -> None:
    fault = {"kind": "save_then_drop", "method": method, "path": path, "times": 1}
    requests.post(sandbox[1] + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()
    first = transfer_order(web_order("5006"), SHOP, tx, store)
    assert first.state in ("new", "ordered", "invoicing") and "try again" in first.message
    second = transfer_order(web_order("5006"), SHOP, tx, store)
    assert second.state == "done"
    third = transfer_order(web_order("5006"), SHOP, tx, store)  # and again: nothing more
    assert third.state == "done" and "already invoiced" in third.note
    state = books(sandbox)
    assert len(ours(state, "5006")) == 1 and len(state["invoices"]) == 1


def test_a_wiped_journal_finds_the_order_and_its_invoice_in_tripletex(sandbox, tx, store, tmp_path) -> None:
    assert transfer_order(web_order("5007"), SHOP, tx, store).state == "done"
    fresh = Transfers(f"sqlite:///{tmp_path / 'wiped.sqlite'}")
    again = transfer_order(web_order("5007"), SHOP, tx, fresh)
    assert again.state == "done" and again.invoice_number == store.get("fjord", "5007").invoice_number
    state = books(sandbox)
    assert len(ours(state, "5007")) == 1 and len(state["invoices"]) == 1


def test_new_customers_are_numbered_from_100000_around_numbers_taken_even_inactive(sandbox, tx, store) -> None:
    # the sandbox holds an inactive customer numbered 100001, made in Tripletex by hand
    one = WebCustomer(shop_id="1", name="Ola Nordmann", email="ola@example.no")
    two = WebCustomer(
        shop_id="2", name="Fjord Bygg AS", is_company=True, org_number="987654321", email="post@fjordbygg.no"
    )
    transfer_orders([web_order("5008", customer=one), web_order("5009", customer=two)], SHOP, tx, store)
    numbers = {c["name"]: c["customerNumber"] for c in books(sandbox)["customers"]}
    assert numbers["Ola Nordmann"] == 100000 and numbers["Fjord Bygg AS"] == 100002


def test_a_known_customer_is_matched_by_organisation_number(sandbox, tx, store) -> None:
    existing = [c for c in books(sandbox)["customers"] if c.get("organizationNumber") == "915000001"][0]
    buyer = WebCustomer(shop_id="77", name="Bedrift AS", is_company=True, org_number="915 000 001")
    assert transfer_order(web_order("5010", "bacs", customer=buyer), SHOP, tx, store).state == "done"
    (order,) = ours(books(sandbox), "5010")
    assert order["customer"]["id"] == existing["id"]


def test_a_known_customer_costs_at_most_four_calls_per_order(sandbox, tx, store) -> None:
    transfer_order(web_order("5011"), SHOP, tx, store)  # warms the customer, payment types and VAT types
    before = sum(tx.calls.values())
    transfer_order(web_order("5012"), SHOP, tx, store)
    assert sum(tx.calls.values()) - before <= 4


def test_retransfer_reports_a_done_order_and_continues_a_failed_one_without_email(sandbox, tx, store) -> None:
    assert transfer_order(web_order("5013", "invoice"), SHOP, tx, store).state == "done"
    requests.post(sandbox[1] + "/_sandbox/invoicing", json={"bank_account_registered": False}, timeout=5)
    failed = transfer_order(web_order("5014", "invoice"), SHOP, tx, store)
    assert failed.state == "failed" and "bankkontonummer" in failed.message
    requests.post(sandbox[1] + "/_sandbox/invoicing", json={"bank_account_registered": True}, timeout=5)

    class Shop:
        def order(self, number):
            return web_order(number, "invoice")

    report = retransfer(SHOP, Shop(), tx, store, ["5013", "5014"], email=False)
    by_number = {o.number: o for o in report.outcomes}
    assert "already invoiced" in by_number["5013"].note
    assert by_number["5014"].state == "done" and by_number["5014"].tx_order_id == failed.tx_order_id
    state = books(sandbox)
    assert len(ours(state, "5014")) == 1 and len(state["invoices"]) == 2
    assert len(state["emails"]) == 1  # only 5013's first transfer e-mailed


def test_overlapping_runs_transfer_each_order_once(sandbox, store) -> None:
    """Two runs at once (a manual trigger during the scheduled one): the claims keep them apart."""
    import threading

    orders = [web_order(str(6000 + n), "invoice") for n in range(8)]
    reports = []

    def one_run() -> None:
        tx = TripletexInvoicing(client("tripletex", sandbox[1]))
        reports.append(transfer_orders(orders, SHOP, tx, store))

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = books(sandbox)
    numbers = sorted(o["number"] for o in state["orders"])
    assert numbers == sorted(o.number for o in orders)  # one Tripletex order each
    assert len(state["invoices"]) == len(orders) and len(state["emails"]) == len(orders)
    outcomes = [o for report in reports for o in report.outcomes]
    assert sum(o.state == "done" and not o.note.startswith("already") for o in outcomes) == len(orders)
    assert {o.state for o in outcomes} <= {"done", "busy"}
    kari = [c for c in state["customers"] if c["name"] == "Kari Nordmann" and c.get("email") == "kari@example.no"]
    assert len(kari) == 1  # one customer, though both runs met her at once


SERIES = SHOP.model_copy(update={"invoice_number_start": 50_000})


def test_the_shops_own_invoice_series_numbers_invoices_and_costs_four_calls(sandbox, tx, store) -> None:
    first = transfer_order(web_order("7001"), SERIES, tx, store)
    before = sum(tx.calls.values())
    second = transfer_order(web_order("7002", "invoice"), SERIES, tx, store)
    assert (first.invoice_number, second.invoice_number) == (50_000, 50_001)
    assert sum(tx.calls.values()) - before <= 4  # lookup, create, number check, invoice
    state = books(sandbox)
    assert sorted(i["invoiceNumber"] for i in state["invoices"]) == [50_000, 50_001]
    assert len(state["emails"]) == 1  # the pay-later one


def test_a_lost_answer_on_a_numbered_invoice_is_found_by_its_number(sandbox, tx, store) -> None:
    fault = {"kind": "save_then_drop", "method": "POST", "path": "/invoice", "times": 1}
    requests.post(sandbox[1] + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()
    assert transfer_order(web_order("7003"), SERIES, tx, store).state != "done"
    again = transfer_order(web_order("7003"), SERIES, tx, store)
    assert again.state == "done" and again.invoice_number == 50_000
    assert len(books(sandbox)["invoices"]) == 1


def test_a_series_overlapping_tripletex_numbers_stops_the_order_until_moved(sandbox, tx, store) -> None:
    # Tripletex's own counter already gave 50000 to an invoice made there
    requests.post(sandbox[1] + "/_sandbox/invoicing", json={"next_invoice_number": 50_000}, timeout=5)
    assert transfer_order(web_order("7004"), SHOP, tx, store).invoice_number == 50_000
    failed = transfer_order(web_order("7005"), SERIES, tx, store)
    assert failed.state == "failed" and "overlaps" in failed.message and "50000" in failed.message
    moved = SHOP.model_copy(update={"invoice_number_start": 60_000})

    class Shop:
        def order(self, number):
            return web_order(number)

    report = retransfer(moved, Shop(), tx, store, ["7005"])
    (outcome,) = report.outcomes
    assert outcome.state == "done" and outcome.invoice_number == 60_000
    state = books(sandbox)
    assert sorted(i["invoiceNumber"] for i in state["invoices"]) == [50_000, 60_000]
    assert len(ours(state, "7005")) == 1
