"""Reconciliation against the live Tripletex sandbox: days posted by the real pipeline, then changed
in the ledger the way a person (or a second poster) would; each change is found once, as its kind,
and nothing else is."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from kassebro.booking.voucher import Voucher, VoucherLine
from kassebro.config import load_vendor
from kassebro.posting import pipeline
from kassebro.posting.journal import Journal
from kassebro.posting.zreports import ZReports
from kassebro.readback.findings import Findings
from kassebro.readback.reconcile import parse_ref, reconcile

from ..e2e.conftest import DAYS, tripletex_home

FIRST, LAST = DAYS[0] - dt.timedelta(days=3), DAYS[-1]


@pytest.fixture
def posted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with tripletex_home(tmp_path, monkeypatch) as (_root, app, client):
        vendor = load_vendor("cafe_solsiden")
        journal = Journal()
        for day in DAYS:
            pipeline.prepare(vendor, day, journal)
            assert pipeline.post(vendor, day, client(), journal)["state"] == "posted"
        yield vendor, journal, app, client


def _kinds(result) -> list[tuple[str, str]]:
    return sorted((f.kind, f.business_day.isoformat()) for f in result.findings)


def test_a_ledger_that_holds_what_was_booked_gives_no_finding(posted) -> None:
    vendor, journal, _app, client = posted
    result = reconcile([vendor], FIRST, LAST, lambda v: client(), journal=journal)
    assert result.findings == ()
    assert {d for _, d in result.checked} == set(DAYS)  # days before enabled_since are not the vendor's
    assert result.vouchers_read == 3 and result.postings_read > 0
    zdays = ZReports(journal.url).read(vendor.id, FIRST, LAST)
    assert set(zdays) == set(DAYS) and all(z.payments_total > 0 for z in zdays.values())


def test_an_edit_a_deletion_and_a_duplicate_are_found_as_exactly_those(posted) -> None:
    vendor, journal, app, client = posted
    edited, deleted, doubled = DAYS
    stored = app.state.store.voucher(int(journal.get(vendor.id, edited).ledger_id))
    rows = [p for p in stored.postings if not p.system_generated]
    rows[0].gross += 100  # a person moves 1.00 between two lines in the ledger's UI
    rows[1].gross -= 100
    with client() as c:
        c._request("DELETE", f"/ledger/voucher/{journal.get(vendor.id, deleted).ledger_id}")
        c.post(journal.voucher(vendor.id, doubled))  # a second poster that did not look first
    result = reconcile([vendor], FIRST, LAST, lambda v: client(), journal=journal)
    assert _kinds(result) == [
        ("changed", edited.isoformat()),
        ("duplicated", doubled.isoformat()),
        ("missing", deleted.isoformat()),
    ]
    by_kind = {f.kind: f for f in result.findings}
    assert "differ from what was booked" in by_kind["changed"].message and "1.00" in by_kind["changed"].message
    assert len(by_kind["duplicated"].evidence["ledger_ids"]) == 2
    assert by_kind["missing"].evidence["ledger_ids"] == []
    stored_findings = Findings(journal.url).read([vendor.id])
    assert sorted((f.kind, f.business_day.isoformat()) for f in stored_findings) == _kinds(result)
    # a mended day loses its finding at the next reconciliation; the others keep one row each
    rows[0].gross -= 100
    rows[1].gross += 100
    again = reconcile([vendor], FIRST, LAST, lambda v: client(), journal=journal)
    assert _kinds(again) == [("duplicated", doubled.isoformat()), ("missing", deleted.isoformat())]
    assert len(Findings(journal.url).read([vendor.id])) == 2


def test_a_z_report_that_no_longer_agrees_is_unbalanced_and_the_pos_accounts_show_it(posted) -> None:
    vendor, journal, _app, client = posted
    zreports = ZReports(journal.url)
    kept = zreports.read(vendor.id, DAYS[1], DAYS[1])[DAYS[1]]
    ptype, pcode, amount = kept.payments[0]
    zreports.save(dataclasses.replace(kept, payments=((ptype, pcode, amount + 5_000), *kept.payments[1:])))
    result = reconcile([vendor], FIRST, LAST, lambda v: client(), journal=journal)
    assert _kinds(result) == [("unbalanced", DAYS[1].isoformat())]
    finding = result.findings[0]
    account = vendor.mapping.payment_account(ptype, pcode)
    assert finding.evidence["z_report"][account] - finding.evidence["ledger"][account] == 5_000


def test_another_voucher_on_the_pos_accounts_is_a_pos_accounts_finding(posted) -> None:
    vendor, journal, _app, client = posted
    cash = vendor.mapping.payment_account("CASH", "12001") or sorted(set(vendor.mapping.payment_types.values()))[0]
    deposit = Voucher(
        vendor_id="manual",
        business_day=DAYS[1],
        external_ref="bank deposit 17",  # not one of kassebro's references: a person's voucher
        description="Kontant utlegg",
        lines=(
            VoucherLine(vendor.mapping.cash_difference_account, 2_000_00, None, "Kassedifferanse"),
            VoucherLine(cash, -2_000_00, None, "Kasse"),
        ),
    )
    with client() as c:
        c.post(deposit)
    result = reconcile([vendor], FIRST, LAST, lambda v: client(), journal=journal)
    assert _kinds(result) == [("pos_accounts", LAST.isoformat())]
    assert result.findings[0].evidence["other_vouchers"] == {cash: -2_000_00}


def test_an_unreadable_ledger_is_unknown_not_agreed(posted) -> None:
    from kassebro.ledgers.tripletex import TripletexClient

    vendor, journal, app, _client = posted
    result = reconcile(
        [vendor], FIRST, LAST, lambda v: TripletexClient(app.state.url, "wrong", "wrong"), journal=journal
    )
    assert [f.kind for f in result.findings] == ["unreadable"]
    assert result.checked == () and result.not_checked


def test_references() -> None:
    assert parse_ref("kassebro:cafe_solsiden:2026-11-02") == ("cafe_solsiden", dt.date(2026, 11, 2))
    assert parse_ref("kassebro:cafe_solsiden:2026-11-02:v3:reversal") == ("cafe_solsiden", dt.date(2026, 11, 2))
    assert parse_ref("kassebro:cafe_solsiden:2026-13-02") is None
    assert parse_ref("Faktura 17") is None


def test_the_cli_reconciles_through_the_airflow_connection_and_shows_what_is_stored(
    posted, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from kassebro.cli import main
    from kassebro.demo.sandboxes import connection

    vendor, journal, app, _client = posted
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(connection("tripletex", app.state.url)))
    window = ["--to", LAST.isoformat(), "--days", "7"]
    assert main(["reconcile", *window]) == 0
    assert "0 finding(s)" in capsys.readouterr().out
    app.state.store.delete(int(journal.get(vendor.id, DAYS[0]).ledger_id))
    assert main(["reconcile", *window]) == 1
    out = capsys.readouterr().out
    assert f"MISSING      cafe_solsiden        {DAYS[0]}" in out and "1 finding(s)" in out
    assert main(["reconcile", "--show", *window]) == 1  # from the store: no ledger read
    assert f"MISSING      cafe_solsiden        {DAYS[0]}" in capsys.readouterr().out
