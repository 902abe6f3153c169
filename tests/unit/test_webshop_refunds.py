"""A web order refunded by the shop after its transfer, into the Tripletex sandbox over real HTTP: a
full refund of an invoice becomes exactly one credit note (after a lost answer too, and when a person
credited it already); a partial one and one of an order left open are reported, nothing made."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import requests
from sqlalchemy import Column, MetaData, Table, create_engine

from kassebro.posting import transfers
from kassebro.posting.transfers import Transfers
from kassebro.posting.webshop import retransfer, transfer_new, transfer_order, transfer_orders
from kassebro.sources.webshop import WebOrder

from . import test_webshop_transfer as transfer_tests
from .test_webshop_transfer import SHOP, books, ours, web_order

# the transfer tests' fixtures: the Tripletex sandbox (reset before each test), the client, the records
sandbox, _clean, tx, store = transfer_tests.sandbox, transfer_tests._clean, transfer_tests.tx, transfer_tests.store

REFUNDED_AT = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
TOTAL = 53690


def refunded(order: WebOrder, amount: int = TOTAL, status: str = "refunded") -> WebOrder:
    """The order as the shop shows it after a refund: a full one moves it to "refunded" (no
    completed status), a partial one leaves it "completed"; either way the order was modified."""
    history = (*order.history, (status, REFUNDED_AT)) if status != order.status else order.history
    return replace(order, refunded=amount, status=status, history=history, updated_at=REFUNDED_AT)


def credit_notes(state: dict) -> list[dict]:
    return [i for i in state["invoices"] if i["isCreditNote"]]


def test_a_full_refund_after_the_transfer_makes_one_credit_note(sandbox, tx, store) -> None:
    first = transfer_order(web_order("8001"), SHOP, tx, store)  # Vipps: a paid invoice, not e-mailed
    assert first.state == "done" and first.note == ""
    report = transfer_orders([refunded(web_order("8001"))], SHOP, tx, store)
    (outcome,) = report.outcomes
    assert outcome.state == "done" and outcome.invoice_number == first.invoice_number
    assert "credited as credit note" in outcome.note and "536.90 paid stays owed" in outcome.note
    state = books(sandbox)
    (note,) = credit_notes(state)
    (invoice,) = [i for i in state["invoices"] if not i["isCreditNote"]]
    assert note["creditedInvoice"] == invoice["id"] and invoice["isCredited"] is True
    assert float(note["amount"]) == -536.90 and note["invoiceDate"] == "2026-12-05"
    assert "8001" in note["comment"]
    assert state["emails"] == []  # Vipps' rule sends no invoices, so no credit note either
    record = store.get("fjord", "8001")
    assert (record.state, record.credit_state, record.credit_note_number, record.refunded_ore) == (
        "done", "credited", note["invoiceNumber"], TOTAL
    )  # fmt: skip
    assert f"credit note {note['invoiceNumber']}" in record.message

    again = transfer_orders([refunded(web_order("8001"))], SHOP, tx, store)  # the next run: nothing
    assert again.outcomes == [] and again.skipped == 1
    direct = transfer_order(refunded(web_order("8001")), SHOP, tx, store)
    assert direct.state == "done" and f"credited as credit note {note['invoiceNumber']}" in direct.note
    assert len(credit_notes(books(sandbox))) == 1


def test_a_lost_answer_on_the_credit_note_still_makes_exactly_one(sandbox, tx, store) -> None:
    assert transfer_order(web_order("8002"), SHOP, tx, store).state == "done"
    fault = {"kind": "save_then_drop", "method": "PUT", "path": "/invoice/*/:createCreditNote", "times": 1}
    requests.post(sandbox[1] + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()
    report = transfer_orders([refunded(web_order("8002"))], SHOP, tx, store)
    (lost,) = report.outcomes
    assert lost.state == "crediting" and "try again" in lost.message and report.problems == [lost]
    record = store.get("fjord", "8002")
    assert (record.state, record.credit_state, record.credit_note_id) == ("done", "crediting", None)
    assert record.credit_sent_at is not None and record.credit_date == dt.date(2026, 12, 5)

    (found,) = transfer_orders([refunded(web_order("8002"))], SHOP, tx, store).outcomes
    assert found.state == "done" and "credited as credit note" in found.note
    (note,) = credit_notes(books(sandbox))
    assert store.get("fjord", "8002").credit_note_id == note["id"]
    assert transfer_orders([refunded(web_order("8002"))], SHOP, tx, store).outcomes == []
    assert len(credit_notes(books(sandbox))) == 1


def test_a_partial_refund_is_reported_once_and_no_credit_note_made(sandbox, tx, store) -> None:
    assert transfer_order(web_order("8003"), SHOP, tx, store).state == "done"
    (outcome,) = transfer_orders([refunded(web_order("8003"), 8990, "completed")], SHOP, tx, store).outcomes
    assert outcome.state == "done" and "89.90" in outcome.note and "partial refund" in outcome.note
    assert "VAT" in outcome.note
    assert credit_notes(books(sandbox)) == []
    assert store.get("fjord", "8003").refunded_ore == 8990
    assert transfer_orders([refunded(web_order("8003"), 8990, "completed")], SHOP, tx, store).outcomes == []
    # the rest refunded later: now the whole invoice is refunded, but a part was reported already
    (rest,) = transfer_orders([refunded(web_order("8003"))], SHOP, tx, store).outcomes
    assert "credited as credit note" in rest.note and len(credit_notes(books(sandbox))) == 1


def test_an_order_left_open_keeps_the_note(sandbox, tx, store) -> None:
    assert transfer_order(web_order("8004", "bacs"), SHOP, tx, store).state == "done"
    (outcome,) = transfer_orders([refunded(web_order("8004", "bacs"))], SHOP, tx, store).outcomes
    assert outcome.state == "done" and "credit it in Tripletex" in outcome.note
    assert books(sandbox)["invoices"] == []


def test_a_pay_later_credit_note_is_emailed_and_a_retransfer_without_email_never_is(sandbox, tx, store) -> None:
    for number in ("8005", "8006"):
        assert transfer_order(web_order(number, "invoice"), SHOP, tx, store).state == "done"
    assert len(books(sandbox)["emails"]) == 2  # the invoices
    (emailed,) = transfer_orders([refunded(web_order("8005", "invoice"))], SHOP, tx, store).outcomes
    assert "(e-mailed)" in emailed.note

    class Shop:
        def order(self, number):
            return refunded(web_order(number, "invoice"))

    (quiet,) = retransfer(SHOP, Shop(), tx, store, ["8006"], email=False).outcomes
    assert "credited as credit note" in quiet.note and "e-mailed" not in quiet.note
    state = books(sandbox)
    assert len(credit_notes(state)) == 2
    sent = [e for e in state["emails"] if e["credit_note"]]
    assert [(e["invoice_number"], e["to"]) for e in sent] == [(emailed_number(state, "8005"), "kari@example.no")]
    assert store.get("fjord", "8005").credit_emailed is True and store.get("fjord", "8006").credit_emailed is False


def emailed_number(state: dict, number: str) -> int:
    (order,) = ours(state, number)
    (note,) = [i for i in credit_notes(state) if i["orders"][0]["id"] == order["id"]]
    return note["invoiceNumber"]


def test_a_credit_note_made_by_hand_is_recorded_not_made_again(sandbox, tx, store) -> None:
    done = transfer_order(web_order("8007"), SHOP, tx, store)
    invoice_id = store.get("fjord", "8007").invoice_id
    by_hand = tx.credit_note(invoice_id, dt.date(2026, 12, 1), "kreditert manuelt", send=False)
    (outcome,) = transfer_orders([refunded(web_order("8007"))], SHOP, tx, store).outcomes
    assert outcome.state == "done" and f"credit note {by_hand.number}" in outcome.note
    record = store.get("fjord", "8007")
    assert (record.credit_note_id, record.invoice_number) == (by_hand.id, done.invoice_number)
    assert len(credit_notes(books(sandbox))) == 1


def test_a_scheduled_run_rereads_a_done_order_the_shop_refunded(sandbox, tx, store) -> None:
    class Shop:
        def __init__(self) -> None:
            self.orders_now = [web_order("8008"), web_order("8009")]

        def orders(self, since):
            return [o for o in self.orders_now if o.updated_at >= since]

    shop = Shop()
    first = transfer_new(SHOP, shop, tx, store, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert {o.number for o in first.by_state("done")} == {"8008", "8009"}
    shop.orders_now = [refunded(web_order("8008")), web_order("8009")]  # 8009 done, not refunded: skipped
    second = transfer_new(SHOP, shop, tx, store, now=dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    assert [(o.number, o.state) for o in second.outcomes] == [("8008", "done")] and second.skipped == 1
    assert second.problems == [] and len(credit_notes(books(sandbox))) == 1


def test_a_refund_known_at_the_first_transfer_is_credited_in_the_same_attempt(sandbox, tx, store) -> None:
    order = replace(web_order("8010"), refunded=TOTAL)  # refunded, though the shop still says completed
    outcome = transfer_order(order, SHOP, tx, store)
    assert outcome.state == "done" and outcome.invoice_number and "credited as credit note" in outcome.note
    state = books(sandbox)
    assert len(state["invoices"]) == 2 and len(credit_notes(state)) == 1
    assert transfer_orders([order], SHOP, tx, store).outcomes == []


def test_an_older_journal_gets_the_refund_columns_and_keeps_its_rows(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    old = MetaData()
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in transfers.orders_table.columns
        if c.name not in transfers.ADDED_COLUMNS
    ]
    Table(transfers.orders_table.name, old, *columns)
    engine = create_engine(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO kassebro_webshop_orders (webshop_id, order_number, state, transfer, attempts, message, "
            "updated_at, invoice_id, invoice_number, invoice_amount_ore) "
            "VALUES ('fjord', '1', 'done', 'paid_invoice', 1, '', '2026-11-30 12:00:00', 7, 3, 53690)"
        )
    store = Transfers(url)
    record = store.get("fjord", "1")
    assert (record.state, record.invoice_number, record.refunded_ore, record.credit_state) == ("done", 3, None, None)
    assert store.refunds("fjord") == {"1": (0, None)}
    assert Transfers(url).get("fjord", "1") == record  # a second start finds the columns there


def test_a_refused_credit_note_waits_for_a_retransfer(sandbox, tx, store, monkeypatch) -> None:
    from kassebro.ledgers.base import LedgerValidationError

    assert transfer_order(web_order("8011"), SHOP, tx, store).state == "done"

    def refuse(*args, **kwargs):
        raise LedgerValidationError("Tripletex", "Fakturaen kan ikke krediteres.")

    monkeypatch.setattr(tx, "credit_note", refuse)
    report = transfer_orders([refunded(web_order("8011"))], SHOP, tx, store)
    (failed,) = report.outcomes
    assert failed.state == "failed" and "krediteres" in failed.message and report.problems == [failed]
    record = store.get("fjord", "8011")
    assert (record.state, record.credit_state, record.refunded_ore) == ("done", "failed", None)
    assert transfer_orders([refunded(web_order("8011"))], SHOP, tx, store).outcomes == []  # until a re-transfer
    monkeypatch.undo()

    class Shop:
        def order(self, number):
            return refunded(web_order(number))

    (outcome,) = retransfer(SHOP, Shop(), tx, store, ["8011"]).outcomes
    assert outcome.state == "done" and "credited as credit note" in outcome.note
    assert "krediteres" not in store.get("fjord", "8011").message  # the later refund note replaced it
    assert len(credit_notes(books(sandbox))) == 1
