"""POS credit sales as Tripletex invoices (`credit_sales: invoice`), over real HTTP.

The demo shop sells on account (11002, paid by 12006 "Kundekonto", customersSuppliers declared).
With the setting, each credit sale becomes one Tripletex invoice not marked paid (revenue on the
mapped accounts through products), the day's voucher books the rest of the Z report, and voucher +
invoices equal the Z report. Never twice: a rerun, a lost answer, a wiped journal.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import requests

from kassebro.booking.credit_invoices import orders_in
from kassebro.config import load_vendor
from kassebro.core.errors import ConfigError
from kassebro.posting import pipeline

from ..e2e.conftest import DAYS
from .test_credit_sales import _client, _prepared, _shop_home


def _invoice_mode(data: dict) -> None:
    data["ledger"]["send_to_ledger"] = True
    data["mapping"]["credit_sales"] = "invoice"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from kassebro.sandbox.tripletex import create_app

    _shop_home(tmp_path, monkeypatch, _invoice_mode)
    with _prepared(create_app()) as prepared:
        yield prepared


def _credit_days(vendor) -> list[dt.date]:
    return [d for d in DAYS if orders_in(pipeline.load_voucher(vendor, d).meta, vendor.id)]


def _invoicing(url: str) -> dict:
    return requests.get(url + "/_sandbox/invoicing", timeout=5).json()


def test_the_voucher_leaves_the_invoiced_credit_sales_out_and_says_what_they_were(shop) -> None:
    vendor, _journal, _app, _url = shop
    days = _credit_days(vendor)
    assert days, "the demo shop sells on account on one of the demo days"
    for day in days:
        voucher = pipeline.load_voucher(vendor, day)
        orders = orders_in(voucher.meta, vendor.id)
        assert not [line for line in voucher.lines if line.customer or line.account in ("1500", "1570")]
        assert sum(line.amount for line in voucher.lines) == 0
        # voucher + invoices = the day's sales: the invoiced payments are the Z report's 12006 amounts
        invoiced = json.loads(voucher.meta["invoiced_payments"])
        assert sum(invoiced.values()) == sum(o.total for o in orders) > 0
        # the meta round-trips the orders exactly as booking made them from the day's frames
        from kassebro.booking.credit_invoices import credit_sales
        from kassebro.core.frames import SalesDay

        made = credit_sales(SalesDay.load(pipeline.work_dir(vendor.id, day) / "frames"), vendor)
        assert made.orders == tuple(orders) and not made.issues
        for order in orders:
            assert order.total == sum(line.amount for line in order.lines)
            assert all(line.account and line.vat_code for line in order.lines)
            assert order.customer.name and order.customer.shop_id


def test_each_credit_sale_becomes_one_unpaid_invoice_before_the_voucher_and_never_twice(shop) -> None:
    vendor, journal, _app, url = shop
    days = _credit_days(vendor)
    expected = {o.number: o for d in days for o in orders_in(pipeline.load_voucher(vendor, d).meta, vendor.id)}
    for day in DAYS:
        result = pipeline.post(vendor, day, _client(url), journal)
        assert result["state"] == "posted"
        if day in days:
            assert len(result["invoices"]) == len(orders_in(pipeline.load_voucher(vendor, day).meta, vendor.id))
    state = _invoicing(url)
    ours = [o for o in state["orders"] if (o.get("deliveryComment") or "").startswith(f"kassebro:pos_{vendor.id}:")]
    assert sorted(o["number"] for o in ours) == sorted(expected)
    ids = {o["id"] for o in ours}
    invoices = [i for i in state["invoices"] if {o["id"] for o in i["orders"]} & ids]
    assert len(invoices) == len(expected)
    assert all(float(i["amountOutstanding"]) == float(i["amount"]) for i in invoices)  # not marked paid
    by_number = {o["number"]: o for o in ours}
    for number, order in expected.items():
        made = next(i for i in invoices if by_number[number]["id"] in {o["id"] for o in i["orders"]})
        assert round(float(made["amount"]) * 100) == order.total
    # revenue on the vendor's mapped accounts (through one product per account and VAT code)
    store = _app.state.store
    for number, order in expected.items():
        made = next(i for i in invoices if by_number[number]["id"] in {o["id"] for o in i["orders"]})
        booked = store.voucher(int(made["voucher"]["id"]))
        credited = {store.books().accounts[p.account_id].number for p in booked.postings if p.gross < 0}
        revenue = {a for a in credited if not 2700 <= a < 2800}  # less the output VAT accounts
        assert revenue == {int(line.account) for line in order.lines}
    # a second run (the DAG's retry, a backfill) makes nothing new
    for day in DAYS:
        pipeline.post(vendor, day, _client(url), journal)
    again = _invoicing(url)
    assert len(again["orders"]) == len(state["orders"]) and len(again["invoices"]) == len(state["invoices"])


def test_a_wiped_journal_finds_the_orders_in_tripletex_instead_of_making_them_again(shop, tmp_path) -> None:
    vendor, journal, _app, url = shop
    day = _credit_days(vendor)[0]
    pipeline.post(vendor, day, _client(url), journal)
    before = _invoicing(url)
    from kassebro.posting.transfers import orders_table

    with journal.engine.begin() as conn:
        conn.execute(orders_table.delete())
    assert pipeline.post(vendor, day, _client(url), journal)["state"] == "posted"
    after = _invoicing(url)
    assert len(after["orders"]) == len(before["orders"]) and len(after["invoices"]) == len(before["invoices"])


def test_a_refused_invoice_keeps_the_days_voucher_out_of_the_ledger(shop) -> None:
    vendor, journal, app, url = shop
    day = _credit_days(vendor)[0]
    # a company without a bank account number cannot invoice (Tripletex's rule, in the sandbox)
    company = _invoicing(url)["company_id"]
    response = requests.post(
        url + "/_sandbox/invoicing", json={"company_id": company, "bank_account_registered": False}, timeout=5
    )
    assert response.status_code in (200, 204), response.text
    from kassebro.ledgers.base import LedgerValidationError

    with pytest.raises(LedgerValidationError, match="credit sale invoice"):
        pipeline.post(vendor, day, _client(url), journal)
    assert not journal.booked(vendor.id, day)
    assert not [v for v in app.state.store.list_vouchers() if v.external_voucher_number]


def test_invoice_mode_is_for_tripletex_only(tmp_path, monkeypatch) -> None:
    def edit(data: dict) -> None:
        data["ledger"] = {"system": "xledger", "connection": "xledger_demo", "lease_seconds": 2,
                          "visibility_seconds": 0}  # fmt: skip
        data["mapping"]["credit_sales"] = "invoice"

    home = _shop_home(tmp_path, monkeypatch, edit)
    assert (home / "config").exists()
    with pytest.raises(ConfigError, match="credit_sales: invoice"):
        load_vendor("butikk_fjord")


def test_a_credit_sale_paid_in_part_at_the_till_holds_the_day_back_with_the_reason(shop) -> None:
    from kassebro.booking.rules import book
    from kassebro.core.frames import SalesDay

    vendor, _journal, _app, _url = shop
    day = _credit_days(vendor)[0]
    sales = SalesDay.load(pipeline.work_dir(vendor.id, day) / "frames")
    payments = sales.payments.copy()
    receipts = sales.receipts
    credit = receipts[receipts["customer_id"].fillna("") != ""].iloc[0]
    row = payments[(payments["register_id"] == credit["register_id"]) & (payments["trans_id"] == credit["trans_id"])]
    split = row.iloc[[0, 0]].copy()
    split.iloc[0, split.columns.get_loc("amount")] = 1000
    split.iloc[1, split.columns.get_loc("amount")] = int(row.iloc[0]["amount"]) - 1000
    split.iloc[0, split.columns.get_loc("payment_code")] = "12001"
    split.iloc[0, split.columns.get_loc("payment_type")] = "KONTANT"
    import pandas as pd

    changed = pd.concat([payments.drop(row.index), split], ignore_index=True).astype(payments.dtypes.to_dict())
    from dataclasses import replace

    voucher, results = book(replace(sales, payments=changed), vendor)
    assert voucher is None
    failed = {r.rule: r.message for r in results if not r.success}
    assert "credit_sale_invoiceable" in failed
    assert "10.00 of it was paid at the till (KONTANT)" in failed["credit_sale_invoiceable"]


@pytest.mark.parametrize(("method", "path"), [("POST", "/order"), ("PUT", "/order/*/:invoice")])
def test_saved_then_connection_dropped_leaves_one_invoice_per_credit_sale(shop, method, path) -> None:
    from kassebro.ledgers.base import LedgerTransient

    vendor, journal, app, url = shop
    day = _credit_days(vendor)[0]
    fault = {"kind": "save_then_drop", "method": method, "path": path, "times": 1}
    requests.post(url + "/_sandbox/faults", json=fault, timeout=5).raise_for_status()
    with pytest.raises(LedgerTransient, match="not made yet"):
        pipeline.post(vendor, day, _client(url), journal)
    assert not journal.booked(vendor.id, day)  # the voucher waits for its invoices
    assert pipeline.post(vendor, day, _client(url), journal)["state"] == "posted"
    state = _invoicing(url)
    wanted = orders_in(pipeline.load_voucher(vendor, day).meta, vendor.id)
    assert len(state["orders"]) == len(state["invoices"]) == len(wanted)
    assert len([v for v in app.state.store.list_vouchers() if v.external_voucher_number]) == 1


def test_the_reconciliation_counts_the_invoiced_credit_sales_with_the_day(shop) -> None:
    from kassebro.readback.reconcile import reconcile

    vendor, journal, _app, url = shop
    for day in DAYS:
        pipeline.post(vendor, day, _client(url), journal)
    result = reconcile([vendor], DAYS[0], DAYS[-1], lambda v: _client(url), journal=journal)
    assert result.findings == ()
    assert {d for _, d in result.checked} == set(DAYS)


def test_the_preview_shows_the_invoices_the_night_will_make(shop) -> None:
    from kassebro.booking.preview import preview_json, render_table

    vendor, _journal, _app, _url = shop
    day = _credit_days(vendor)[0]
    voucher = pipeline.load_voucher(vendor, day)
    orders = orders_in(voucher.meta, vendor.id)
    doc = preview_json(voucher)
    assert [i["number"] for i in doc["credit_invoices"]] == [o.number for o in orders]
    table = render_table(voucher)
    assert "credit sales invoiced in Tripletex before the voucher" in table
    assert all(o.number in table and o.customer.name in table for o in orders)


def test_a_webshop_file_cannot_pose_as_a_vendors_credit_invoices(tmp_path) -> None:
    from kassebro.config.webshop import load_webshops

    (tmp_path / "webshops").mkdir()
    (tmp_path / "webshops" / "pos_butikk.yaml").write_text(
        "id: pos_butikk\nname: X\nsource: {kind: pos, connection: x}\nledger: {connection: t}\n"
        "enabled_since: 2026-11-01\npayment_methods: {faktura: {transfer: invoice}}\n"
    )
    loaded = load_webshops(tmp_path)
    assert loaded.webshops == ()
    assert any("credit invoices" in issue.message for issue in loaded.issues)
