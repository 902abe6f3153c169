"""Reading the books back from Xledger: postings (`transactions`, Relay paging) and the balances
computed from them, the chart (`accounts`) and the tax rules as standard VAT codes, against the
sandbox over HTTP. The sandbox posts its own GL transactions from the imports (its own VAT rule,
`item_vat`), so a figure here is what the sandbox computed, not what kassebro sent."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal

import pytest
import requests

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.xledger import XledgerClient
from kassebro.sandbox.server import running
from kassebro.sandbox.xledger import ACCOUNTS, DEMO_TOKEN, TAX_RULES, create_app

from .test_readback import _day

DAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture
def client(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    with XledgerClient(sandbox[1].url, DEMO_TOKEN, timeout=5, retry_backoff=0) as c:
        yield c


def _book(client: XledgerClient) -> None:
    client.post(_day(dt.date(2025, 12, 30), 500_00, 100_00))  # last year: result accounts start again
    client.post(_day(DAY - dt.timedelta(days=1), 1_000_00, 250_50))
    client.post(_day(DAY, 1_250_00, 333_33))
    client.post(_day(DAY + dt.timedelta(days=1), 99_99, 1_00))  # after the period


def test_balances_are_what_the_postings_add_up_to(client: XledgerClient) -> None:
    _book(client)
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)  # two days, end exclusive
    balances = {b.account: b for b in client.balances(start, end)}
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
    assert balances["1920"].name == ACCOUNTS["1920"]
    last_year = client.postings(dt.date(2025, 1, 1), dt.date(2026, 1, 1))
    last_result = sum(p.amount for p in last_year if int(p.account) >= 3000)
    assert last_result == -(600_00 - 96_00 - 15_65)  # 2025-12-30's sales less VAT (25 % of 480, 15 % of 120)
    assert sum(b.closing for b in balances.values()) == -last_result  # last year's result is not closed
    only_bank = client.balances(start, end, accounts=(1900, 1999))
    assert {b.account for b in only_bank} == {"1920", "1940"}


def test_postings_carry_the_voucher_its_reference_vat_and_xledgers_vat_transactions(client: XledgerClient) -> None:
    _book(client)
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    assert {p.external_ref for p in rows} == {external_ref("shop12", DAY)}
    assert {p.date for p in rows} == {DAY}
    assert len({p.voucher_id for p in rows}) == 1 and all(p.voucher_number.isdigit() for p in rows)
    assert sum(p.amount for p in rows) == 0
    by_account = {p.account: p for p in rows}
    sale = by_account["3000"]  # gross 1266.66 at 25 %: VAT 253.332 -> 253.33
    assert (sale.vat_code, sale.gross, sale.amount) == ("3", -126_666, -101_333)
    middle = by_account["3030"]  # gross 316.67 at 15 %: VAT 41.3047... -> 41.30
    assert (middle.vat_code, middle.gross, middle.amount) == ("31", -31_667, -27_537)
    assert (by_account["2700"].amount, by_account["2701"].amount) == (-25_333, -4_130)
    assert by_account["2700"].vat_code is None and by_account["2700"].gross == -25_333
    assert by_account["1920"].gross == by_account["1920"].amount == 1_250_00
    assert by_account["1920"].description == "Bankkort"
    only_bank = client.postings(DAY, DAY + dt.timedelta(days=1), accounts=(1900, 1999))
    assert {p.account for p in only_bank} == {"1920", "1940"}
    assert client.postings(DAY, DAY) == []


def test_a_12_percent_line_has_its_vat_rounded_half_up_to_the_ore(client: XledgerClient) -> None:
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


def test_paging_follows_the_cursor_across_pages(sandbox, client: XledgerClient) -> None:
    _book(client)
    everything = client.postings(dt.date(2025, 1, 1), dt.date(2027, 1, 1))
    held = sandbox[0].state.store.transactions({})
    assert len(everything) == len(held) == 4 * 6  # 4 lines and 2 VAT transactions a day
    whole = client.balances(DAY, DAY + dt.timedelta(days=1))
    client.page_size = 5
    client.calls.clear()
    assert client.postings(dt.date(2025, 1, 1), dt.date(2027, 1, 1)) == everything
    assert client.calls["query transactions"] == math.ceil(len(held) / 5)
    client.calls.clear()
    assert client.balances(DAY, DAY + dt.timedelta(days=1)) == whole
    until_day = [t for t in held if t["header"]["postedDate"] <= DAY.isoformat()]  # no lower bound
    assert client.calls["query transactions"] == math.ceil(len(until_day) / 5) == 4


def test_a_reversal_reads_back_as_the_negated_postings_under_its_own_reference(client: XledgerClient) -> None:
    original = client.post(_day(DAY, 1_250_00, 333_33))
    client.reverse(original.ledger_id, DAY + dt.timedelta(days=1))
    day = {(p.account, p.vat_code): p.amount for p in client.postings(DAY, DAY + dt.timedelta(days=1))}
    rows = client.postings(DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2))
    assert {p.external_ref for p in rows} == {external_ref("shop12", DAY) + ":reversal"}
    assert {(p.account, p.vat_code): p.amount for p in rows} == {key: -amount for key, amount in day.items()}
    assert client.balances(DAY, DAY + dt.timedelta(days=1))
    assert client.balances(DAY, DAY + dt.timedelta(days=2)) == []  # every account nets to zero


def test_the_chart_and_the_tax_rules_as_standard_codes(client: XledgerClient) -> None:
    accounts = client.accounts()
    assert [(a.number, a.name) for a in accounts] == sorted(ACCOUNTS.items())
    assert all(a.active and a.vat_code is None and not a.vat_locked for a in accounts)
    codes = {(v.code, v.own_id, v.rate) for v in client.vat_codes()}
    assert codes == {
        ("3", "2", Decimal(25)),
        ("31", "21", Decimal(15)),
        ("33", "22", Decimal(12)),
        ("5", "5", Decimal(0)),
        ("6", "6", Decimal(0)),
    }  # the tax rule "0" (no VAT) is mapped from no standard code, so it is left out
    assert {v.own_id: v.name for v in client.vat_codes()}["22"] == TAX_RULES["22"]


def test_a_company_with_its_own_tax_rule_codes_reads_back_through_the_same_mapping() -> None:
    rules = {"0": "Ingen", "HIGH": "Utgående høy", "LOW": "Utgående lav"}
    app = create_app(tax_rules=rules, tax_rule_vat={"HIGH": ("25", "2700"), "LOW": ("12", "2702")})
    with running(app) as server, XledgerClient(server.url, DEMO_TOKEN, tax_rules={"3": "HIGH", "33": "LOW"}) as c:
        c.post(
            Voucher(
                vendor_id="shop12",
                business_day=DAY,
                external_ref=external_ref("shop12", DAY),
                description="Salg",
                lines=(
                    VoucherLine("1920", 250_00, None),
                    VoucherLine("3000", -125_00, "3"),
                    VoucherLine("3040", -125_00, "33"),
                ),
            )
        )
        rows = {p.account: p for p in c.postings(DAY, DAY + dt.timedelta(days=1))}
        assert (rows["3000"].vat_code, rows["3000"].amount, rows["2700"].amount) == ("3", -100_00, -25_00)
        assert (rows["3040"].vat_code, rows["3040"].amount, rows["2702"].amount) == ("33", -111_61, -13_39)
        assert {(v.code, v.own_id) for v in c.vat_codes()} == {("3", "HIGH"), ("33", "LOW")}


def test_the_sandbox_refuses_a_filter_field_it_does_not_define(sandbox) -> None:
    query = 'query { transactions(first: 5, filter: {accountCode_gte: "3000"}) { edges { node { dbId } } } }'
    answer = requests.post(
        sandbox[1].url + "/graphql", json={"query": query}, headers={"Authorization": f"token {DEMO_TOKEN}"}, timeout=5
    )
    assert answer.status_code == 200
    assert answer.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
