"""Reading the books back from Duett: postings (the voucher report of the general ledger, one call
per year) and the balances computed from them, the account register and the VAT register as
standard codes, against the sandbox over HTTP. The sandbox's report carries its own net amounts
and VAT lines (its own rule, `line_vat`), so a figure here is what the sandbox computed."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import LedgerValidationError
from kassebro.ledgers.duett import REPORT_PATH, DuettClient
from kassebro.sandbox.duett import (
    ACCOUNTS,
    DEMO_CLIENT_KEY,
    DEMO_INTEGRATION_KEY,
    VAT_CODES,
    DuettAccount,
    create_app,
)
from kassebro.sandbox.server import running

from .test_readback import _day

DAY = dt.date(2026, 3, 2)
REPORT = f"GET {REPORT_PATH}"


def _client(url: str) -> DuettClient:
    return DuettClient(
        url, integration_key=DEMO_INTEGRATION_KEY, client_key=DEMO_CLIENT_KEY, timeout=5, retry_backoff=0
    )


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture
def client(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    with _client(sandbox[1].url) as c:
        yield c


def _book(client: DuettClient) -> None:
    client.post(_day(dt.date(2025, 12, 30), 500_00, 100_00))  # last year: result accounts start again
    client.post(_day(DAY - dt.timedelta(days=1), 1_000_00, 250_50))
    client.post(_day(DAY, 1_250_00, 333_33))
    client.post(_day(DAY + dt.timedelta(days=1), 99_99, 1_00))  # after the period


def test_balances_are_what_the_postings_add_up_to(client: DuettClient) -> None:
    _book(client)
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)  # two days, end exclusive
    client.calls.clear()
    balances = {b.account: b for b in client.balances(start, end)}
    assert client.calls[REPORT] == 3  # 2026 up to the end; 2025, for the balance accounts; 2024, empty
    moved: dict[str, int] = defaultdict(int)
    for p in client.postings(start, end):
        moved[p.account] += p.amount
    assert {a: b.movement for a, b in balances.items() if b.movement} == {a: m for a, m in moved.items() if m}
    assert all(b.closing == b.opening + b.movement for b in balances.values())
    before: dict[str, int] = defaultdict(int)
    for p in client.postings(dt.date(2025, 1, 1), start):
        if int(p.account) < 3000 or p.date.year == start.year:
            before[p.account] += p.amount
    assert {a: b.opening for a, b in balances.items() if b.opening} == {a: o for a, o in before.items() if o}
    assert balances["1920"].opening == 500_00 and balances["1920"].closing == 500_00 + 1_000_00 + 1_250_00
    assert balances["3000"].opening == 0  # a result account starts the year at zero (INFERRED)
    assert balances["1940"].movement == 250_50 + 333_33
    assert balances["1920"].name == "Bankinnskudd"  # the report's accountName
    last_result = -(600_00 - 96_00 - 15_65)  # 2025-12-30's sales less VAT (25 % of 480, 15 % of 120)
    assert sum(b.closing for b in balances.values()) == -last_result  # last year's result is not closed
    only_bank = client.balances(start, end, accounts=(1900, 1999))
    assert {b.account for b in only_bank} == {"1920", "1940"}


def test_postings_carry_the_voucher_its_reference_and_duetts_vat_lines(client: DuettClient) -> None:
    _book(client)
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    ref = external_ref("shop12", DAY)
    assert {p.external_ref for p in rows} == {ref}
    assert {p.voucher_number for p in rows} == {str(client.voucher_number(ref, DAY))}
    assert len({p.voucher_id for p in rows}) == 1 and {p.date for p in rows} == {DAY}
    assert sum(p.amount for p in rows) == 0
    by_account = {p.account: p for p in rows}
    sale = by_account["3000"]  # gross 1266.66 at 25 %: VAT 253.332 -> 253.33
    assert (sale.vat_code, sale.gross, sale.amount, sale.description) == ("3", -126_666, -101_333, "Salg 25 %")
    middle = by_account["3030"]  # gross 316.67 at 15 %: VAT 41.3047... -> 41.30
    assert (middle.vat_code, middle.gross, middle.amount) == ("31", -31_667, -27_537)
    assert (by_account["2700"].amount, by_account["2701"].amount) == (-25_333, -4_130)
    assert by_account["2700"].gross == -25_333 and by_account["2700"].vat_code is None
    assert by_account["1920"].gross == by_account["1920"].amount == 1_250_00
    only_bank = client.postings(DAY, DAY + dt.timedelta(days=1), accounts=(1900, 1999))
    assert {p.account for p in only_bank} == {"1920", "1940"}
    assert client.postings(DAY, DAY) == []


def test_a_12_percent_line_has_its_vat_rounded_half_up_to_the_ore(client: DuettClient) -> None:
    voucher = Voucher(
        vendor_id="shop12",
        business_day=DAY,
        external_ref=external_ref("shop12", DAY),
        description="Mat",
        lines=(
            VoucherLine("1920", 1_000_11, None, "Bankkort"),
            VoucherLine("3040", -1_000_02, "33", "Mat 12 %"),  # VAT 107.145: half an øre decides
            VoucherLine("3040", -9, "33", "Pose"),  # VAT 0.96 øre: one øre
        ),
    )
    client.post(voucher)
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    food = sorted((p for p in rows if p.account == "3040"), key=lambda p: p.gross)
    assert [(p.gross, p.amount, p.vat_code) for p in food] == [(-1_000_02, -892_87, "33"), (-9, -8, "33")]
    assert sorted(p.amount for p in rows if p.account == "2702") == [-107_15, -1]
    assert sum(p.amount for p in rows) == 0 and sum(p.gross for p in rows if p.account != "2702") == 0
    (vat,) = [b for b in client.balances(DAY, DAY + dt.timedelta(days=1)) if b.account == "2702"]
    assert vat.movement == vat.closing == -107_16


def test_a_range_over_new_year_reads_one_report_a_year_and_misses_nothing(sandbox, client: DuettClient) -> None:
    """Duett documents no paging of the report (one JSON array per year, the year filter required),
    so the unit the client pages by is the year."""
    _book(client)
    client.post(_day(dt.date(2024, 6, 1), 10_00, 5_00))
    client.calls.clear()
    rows = client.postings(dt.date(2024, 1, 1), dt.date(2027, 1, 1))
    assert client.calls[REPORT] == 3  # 2024, 2025, 2026
    assert len(rows) == 5 * 6  # 4 lines and 2 VAT lines a voucher
    held = sandbox[0].state.store.report_rows()
    assert sorted((p.voucher_id, p.account, p.amount) for p in rows) == sorted(
        (r["voucherId"], r["accountNumber"], int(r["amountNetto"] * 100)) for r in held
    )
    client.calls.clear()
    opening = {b.account: b.opening for b in client.balances(DAY, DAY + dt.timedelta(days=1))}
    assert client.calls[REPORT] == 4  # 2026; then 2025, 2024 and the empty 2023 for the balance accounts
    assert opening["1920"] == 10_00 + 500_00 + 1_000_00  # every earlier year of a balance account
    assert opening["3000"] == -800_32  # this year's only: 2026-03-01's 1000.40 less 25 % VAT in it


def test_the_report_wants_the_year_and_a_documented_ledger_filter(sandbox, client: DuettClient) -> None:
    def report(**params: str) -> requests.Response:
        headers = {"X-Api-Integration-Key": DEMO_INTEGRATION_KEY, "X-Api-Client-Key": DEMO_CLIENT_KEY}
        return requests.get(sandbox[1].url + REPORT_PATH, params=params, headers=headers, timeout=5)

    _book(client)
    assert "filter[voucherYear][EQ]" in report(**{"ledgerFilter[EQ]": "generalLedger"}).json()["errors"]
    wrong = report(**{"filter[voucherYear][EQ]": "2026", "ledgerFilter[EQ]": "everything"})
    assert wrong.status_code == 400 and "ledgerFilter[EQ]" in wrong.json()["errors"]
    customers = report(**{"filter[voucherYear][EQ]": "2026", "ledgerFilter[EQ]": "customerLedger"})
    assert customers.status_code == 200 and customers.json() == []  # only general-ledger lines here
    with pytest.raises(LedgerValidationError, match="expected a JSON array"):
        DuettClient._report(_Envelope(), 2026, {})  # type: ignore[arg-type]


class _Envelope:
    """A client whose report answer is a paged envelope (paging is not documented): refused."""

    def _request(self, method: str, path: str, **_: object) -> object:
        return {"values": [], "nextPage": 2}


def test_the_account_register_and_the_vat_register_as_standard_codes() -> None:
    accounts = (*ACCOUNTS, DuettAccount("3990", "Gammel inntekt", "3", show=False))
    with running(create_app(accounts=accounts)) as server, _client(server.url) as client:
        chart = {a.number: a for a in client.accounts()}
        assert set(chart) == {a.number for a in accounts}
        assert (chart["3000"].name, chart["3000"].vat_code, chart["3000"].active) == (
            "Salgsinntekt, avgiftspliktig, høy sats",
            "3",
            True,
        )
        assert chart["1920"].vat_code is None  # no VAT code on the account
        assert not chart["3990"].active  # deleted (show: false) but listed
        codes = {v.code: v for v in client.vat_codes()}
        assert {c: (v.own_id, v.rate) for c, v in codes.items()} == {
            v.code: (v.code, Decimal(v.rate)) for v in VAT_CODES
        }
        assert codes["33"].rate == Decimal(12) and codes["33"].name == "Utgående mva, lav sats"
