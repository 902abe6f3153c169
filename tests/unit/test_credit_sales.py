"""POS credit sales on the ledger's customer accounts (`credit_sales: customer_ledger`).

The demo shop's SAF-T files declare their credit customers (customersSuppliers: name, organisation
number, e-mail, address) and sell to them on account (11002, paid by 12006 "Kundekonto"). With the
setting, the day's voucher books the unpaid part to 1500 with the customer on the posting; the
Tripletex client finds or creates that customer; the voucher still equals the Z report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import pytest
import requests
import yaml

from kassebro.config import load_vendor, vendor_warnings
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal

from ..e2e.conftest import DAYS, make_home


def _credit_days(vendor) -> list[dt.date]:
    """The demo days whose voucher books a credit sale on a customer."""
    return [d for d in DAYS if any(line.customer for line in pipeline.load_voucher(vendor, d).lines)]


def _shop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit) -> Path:
    """The demo shop's home (make_home) with its vendor file changed by `edit(data)`, in use."""
    home = make_home(tmp_path, "butikk_fjord", "shop")
    path = home / "config" / "vendors" / "butikk_fjord.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    monkeypatch.setenv("KASSEBRO_CONFIG", str(home / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(home / "data"))
    return home


@contextlib.contextmanager
def _prepared(app):
    """The sandbox `app` running, the demo days prepared: (vendor, journal, app, url)."""
    from kassebro.sandbox.server import running

    with running(app) as server:
        vendor = load_vendor("butikk_fjord")
        journal = Journal()
        for day in DAYS:
            pipeline.prepare(vendor, day, journal)
        yield vendor, journal, app, server.url


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from kassebro.sandbox.tripletex import create_app

    def edit(data: dict) -> None:
        data["ledger"]["send_to_ledger"] = True
        data["mapping"]["credit_sales"] = "customer_ledger"

    _shop_home(tmp_path, monkeypatch, edit)
    with _prepared(create_app()) as prepared:
        yield prepared


def _client(url: str):
    from kassebro.demo.sandboxes import client

    return client("tripletex", url)


def test_the_voucher_books_credit_sales_on_the_customer_account_with_the_customer(shop) -> None:
    vendor, _journal, _app, _url = shop
    days = _credit_days(vendor)
    assert days, "the demo shop sells on account on one of the demo days"
    voucher = pipeline.load_voucher(vendor, days[0])
    credit = [line for line in voucher.lines if line.customer]
    assert credit and all(line.account == "1500" and line.amount > 0 for line in credit)
    assert not [line for line in voucher.lines if line.account == "1570"]
    declared = json.loads(voucher.meta["customers"])
    for line in credit:
        assert declared[line.customer]["name"] in line.description
    assert sum(line.amount for line in voucher.lines) == 0


def test_tripletex_gets_the_customer_on_the_posting_found_or_made_once(shop) -> None:
    vendor, journal, app, url = shop
    days = _credit_days(vendor)
    for day in DAYS:
        assert pipeline.post(vendor, day, _client(url), journal)["state"] == "posted"
    state = requests.get(url + "/_sandbox/invoicing", timeout=5).json()
    by_id = {c["id"]: c for c in state["customers"]}
    ours = {line.customer for d in days for line in pipeline.load_voucher(vendor, d).lines if line.customer}
    store = app.state.store
    on_1500 = [
        p
        for v in store.list_vouchers()
        if v.external_voucher_number
        for p in v.postings
        if p.row >= 1 and store.books().accounts[p.account_id].number == 1500
    ]
    assert on_1500 and all(p.customer_id in by_id for p in on_1500)
    made = {by_id[p.customer_id]["name"] for p in on_1500}
    assert len({p.customer_id for p in on_1500}) == len(ours) == len(made)
    # made once each: a customer of the POS appears once in Tripletex however many days it bought
    names = [c["name"] for c in state["customers"]]
    assert all(names.count(name) == 1 for name in made)
    # new numbers from the mapping's customer_number_start, around the inactive 100001
    numbers = sorted(by_id[p.customer_id]["customerNumber"] for p in on_1500)
    assert numbers[0] >= 100_000 and 100_001 not in numbers


def test_a_system_without_customer_postings_keeps_1570_and_the_config_check_says_so(tmp_path, monkeypatch) -> None:
    def edit(data: dict) -> None:
        data["ledger"] = {"system": "xledger", "connection": "xledger_demo", "lease_seconds": 2,
                          "visibility_seconds": 0}  # fmt: skip
        data["mapping"]["credit_sales"] = "customer_ledger"

    _shop_home(tmp_path, monkeypatch, edit)
    vendor = load_vendor("butikk_fjord")
    assert vendor.customer_postings is False
    assert any("Xledger takes no customer" in w and "1570" in w for w in vendor_warnings(vendor))
    day = DAYS[1]
    pipeline.prepare(vendor, day, Journal())
    lines = pipeline.load_voucher(vendor, day).lines
    assert not any(line.customer or line.account == "1500" for line in lines)
    assert any(line.account == "1570" for line in lines)


@pytest.fixture
def fiken_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The demo shop's days booked in Fiken, credit sales on the customer ledger."""
    from kassebro.sandbox.fiken import create_app

    def edit(data: dict) -> None:
        data["ledger"] = {"system": "fiken", "connection": "fiken_demo", "company": "demo-kiosk-as",
                          "lease_seconds": 2, "visibility_seconds": 0}  # fmt: skip
        data.pop("department", None)
        keys = data["mapping"].get("accounting_keys", {})
        data["mapping"] = {"template": "fiken", "accounting_keys": keys, "credit_sales": "customer_ledger"}

    _shop_home(tmp_path, monkeypatch, edit)
    with _prepared(create_app()) as prepared:
        yield prepared


def test_fiken_books_credit_sales_on_each_customer_contacts_account(fiken_shop) -> None:
    from kassebro.demo.sandboxes import client

    vendor, journal, _app, url = fiken_shop
    assert vendor.customer_postings is True and vendor_warnings(vendor) == [
        w for w in vendor_warnings(vendor) if "customer" not in w
    ]
    ledger = client("fiken", url)
    for day in DAYS:
        assert pipeline.post(vendor, day, ledger, journal)["state"] == "posted"
        assert pipeline.verify(vendor, day, ledger, journal)["verified"] is True  # 1500:NNNNN reads back as 1500
    path = f"{ledger.company_path}/contacts"
    ours = {key: ledger._all_pages(path, {"memberNumberString": f"butikk_fjord:{key}"}) for key in ("K1001", "K1002")}
    assert all(len(found) == 1 for found in ours.values())  # one contact each, over three days
    codes = {found[0]["customerAccountCode"] for found in ours.values()}
    booked = [
        line["account"]
        for entry in ledger._all_pages(f"{ledger.company_path}/journalEntries", {})
        for line in entry.get("lines") or []
        if str(line.get("account", "")).startswith("1500:")
    ]
    assert booked and set(booked) == codes


@pytest.fixture
def poweroffice_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The demo shop's days booked in PowerOffice Go, credit sales on the customer ledger."""
    from kassebro.sandbox.poweroffice import create_app

    def edit(data: dict) -> None:
        data["ledger"] = {"system": "poweroffice", "connection": "poweroffice_demo", "lease_seconds": 2,
                          "visibility_seconds": 0}  # fmt: skip
        data["mapping"]["credit_sales"] = "customer_ledger"

    _shop_home(tmp_path, monkeypatch, edit)
    with _prepared(create_app()) as prepared:
        yield prepared


def test_poweroffice_books_credit_sales_on_each_customers_subledger(poweroffice_shop) -> None:
    from kassebro.demo.sandboxes import client

    vendor, journal, _app, url = poweroffice_shop
    assert vendor.customer_postings is True
    for day in DAYS:
        assert pipeline.post(vendor, day, client("poweroffice", url), journal)["state"] == "posted"
        # a fresh client reads the subledger lines back as 1500, as the day was built
        assert pipeline.verify(vendor, day, client("poweroffice", url), journal)["verified"] is True
    ledger = client("poweroffice", url)
    found = {
        key: ledger._list("/Customers", {"externalImportReference": f"butikk_fjord:{key}"})
        for key in ("K1001", "K1002")
    }
    assert all(len(rows) == 1 for rows in found.values())  # one customer each, over three days
    numbers = {rows[0]["Number"] for rows in found.values()}
    rows = ledger._list("/AccountTransactions", {"fromDate": DAYS[0].isoformat(), "toDate": DAYS[-1].isoformat()})
    on_customers = {r["CustomerAccountNo"] for r in rows if r.get("CustomerAccountNo")}
    assert on_customers == numbers and all(str(r["AccountNo"]) == "1500" for r in rows if r.get("CustomerAccountNo"))
