"""The reconciliation proof, end to end on the five sandboxes with the journal on PostgreSQL.

Fourteen demo days of every demo vendor are read, checked and posted by the pipeline's own steps
(the functions the vendor DAG's tasks call). Then a person edits one voucher in the Tripletex
sandbox, deletes one in Fiken's (Fiken keeps it beside a reverse transaction), and a duplicate
is forced in PowerOffice's. The read-back DAG's task body, run per company, finds exactly those
three and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 11, 16)
DAYS = 14


@pytest.fixture
def demo(tmp_path: Path, database: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from airflow.models.variable import Variable

    from kassebro.airflow.hooks import FikenHook
    from kassebro.demo.home import demo_connections, init
    from kassebro.demo.sandboxes import connection, serve
    from kassebro.sandbox.fiken import DEMO_REFRESH_TOKEN

    home = init(tmp_path / "home", days=DAYS, today=TODAY)
    monkeypatch.setenv("KASSEBRO_CONFIG", str(home / "config"))
    monkeypatch.setenv("KASSEBRO_DATA", str(home / "data"))
    monkeypatch.setenv("KASSEBRO_JOURNAL_URL", database)
    Variable.delete(FikenHook.token_variable(DEMO_REFRESH_TOKEN))  # a fresh sandbox: forget rotated tokens
    servers = serve(dict.fromkeys(demo_connections(), 0), tmp_path / "state")
    try:
        apps = {}
        for (system, conn_id), server in zip(demo_connections().items(), servers, strict=True):
            monkeypatch.setenv(
                f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection(system, server.url, timeout=20))
            )
            apps[system] = server.app
        yield {**apps, "home": tmp_path}
    finally:
        for server in servers:
            server.stop()


def _post_every_day() -> tuple[list[Any], dict[str, list[dt.date]]]:
    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import load_vendors
    from kassebro.core.errors import InputError
    from kassebro.posting import pipeline
    from kassebro.posting.journal import Journal

    journal = Journal()
    vendors = list(load_vendors().vendors)
    posted: dict[str, list[dt.date]] = {}
    for vendor in vendors:
        t = vendor.ledger
        with ledger_for(t.system, t.connection, t.company, t.client_org_number) as ledger:
            day = vendor.enabled_since
            while day < TODAY:
                try:
                    state = pipeline.prepare(vendor, day, journal)["state"]
                except InputError:
                    state = "failed"  # held back by validation: nothing posted, nothing to reconcile
                if state == "built":
                    assert pipeline.post(vendor, day, ledger, journal)["state"] in ("posted", "parked")
                    posted.setdefault(vendor.id, []).append(day)
                day += dt.timedelta(days=1)
    return vendors, posted


def _read_back_every_company(vendors: list[Any]) -> list[Any]:
    """What the read-back DAG does each morning: one `read_company` per company of each connection."""
    from kassebro.airflow.readback_dags import companies, read_company
    from kassebro.config.readback import ReadBackSettings
    from kassebro.readback.findings import Findings

    settings = ReadBackSettings()
    for connection in sorted({v.ledger.connection for v in vendors}):
        mine = [v for v in vendors if v.ledger.connection == connection]
        for item in companies(connection, mine, settings):
            summary = read_company(item, TODAY - dt.timedelta(days=1), DAYS + 2)
            assert summary["vendor_days"] > 0 and summary["vouchers_read"] > 0, summary
    return Findings().read()


def _export_every_company(vendors: list[Any], out: Path) -> None:
    """The demo year's SAF-T Financial export of every connection validates against the XSD, and
    each account's closing balance in it is the ledger's own (`balances`)."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.readback.yearend import CompanyInfo, export_year, read_csv, validate_file

    for connection in sorted({v.ledger.connection for v in vendors}):
        vendor = next(v for v in vendors if v.ledger.connection == connection)
        t = vendor.ledger
        company = CompanyInfo(vendor.org_number or "", vendor.name, "Kari", "Nordmann")
        with ledger_for(t.system, t.connection, t.company, t.client_org_number) as ledger:
            result = export_year(ledger, TODAY.year, out / connection, company)
            balances = {
                b.account: b.closing for b in ledger.balances(dt.date(TODAY.year, 1, 1), dt.date(TODAY.year + 1, 1, 1))
            }
        assert validate_file(result.saft_file) == [], connection
        assert result.entries > 0 and result.total_debit > 0, connection
        exported = {r["account"]: int(r["closing"] * 100) for r in read_csv(result.trial_balance_csv)}
        assert {a: n for a, n in exported.items() if n} == {a: n for a, n in balances.items() if n}, connection


def test_the_reconciliation_finds_exactly_what_a_person_changed_in_three_ledgers(demo: dict[str, Any]) -> None:
    from kassebro.posting.journal import Journal

    vendors, posted = _post_every_day()
    by_system = {v.ledger.system: v for v in vendors if posted.get(v.id)}
    assert set(by_system) == {"tripletex", "fiken", "poweroffice", "xledger", "duett"}
    assert sum(len(days) for days in posted.values()) >= 60
    first = _read_back_every_company(vendors)
    assert first == [], [(f.kind, f.vendor_id, f.business_day, f.message, f.evidence) for f in first[:3]]

    _export_every_company(vendors, demo["home"] / "exports")

    journal = Journal()
    # Tripletex: a person moves 1.00 between two lines of a voucher in the ledger's UI
    cafe = by_system["tripletex"]
    edited = posted[cafe.id][3]
    stored = demo["tripletex"].state.store.voucher(int(journal.get(cafe.id, edited).ledger_id))
    rows = [p for p in stored.postings if not p.system_generated]
    rows[0].gross += 100
    rows[1].gross -= 100
    # Fiken: a person deletes a day's transaction (Fiken books a reverse transaction beside it)
    kiosk = by_system["fiken"]
    deleted = posted[kiosk.id][5]
    fiken = demo["fiken"].state.store
    entry = fiken.entry(kiosk.ledger.company, int(journal.get(kiosk.id, deleted).ledger_id))
    fiken.delete_transaction(kiosk.ledger.company, entry.transaction_id, "Slettet ved en feil")
    # PowerOffice: a person copies a day's voucher in Go, reference and all (Go's API refuses a
    # second ExternalImportReference, so the copy is made in the sandbox's books, as the UI would)
    bakery = by_system["poweroffice"]
    doubled = posted[bakery.id][7]
    go = demo["poweroffice"].state.store
    original = go.vouchers[journal.get(bakery.id, doubled).ledger_id]
    with go.lock:
        lines = [
            {k: v for k, v in line.items() if k not in ("Id", "CreatedDateTimeOffset")}
            for line in original["VoucherLines"]
        ]
        go._book(str(uuid.uuid4()), original["VoucherDate"], original, original["ExternalImportReference"], lines)

    found = sorted((f.kind, f.vendor_id, f.business_day) for f in _read_back_every_company(vendors))
    assert found == sorted(
        [
            ("changed", cafe.id, edited),
            ("missing", kiosk.id, deleted),
            ("duplicated", bakery.id, doubled),
        ]
    )
