"""Reading the books back from Tripletex: balances (`GET /balanceSheet`) and postings
(`GET /ledger/posting`), against the sandbox, whose figures are computed from what it holds and
whose answers are checked against the vendored spec."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
import requests

from kassebro.booking.voucher import external_ref
from kassebro.ledgers.tripletex import TripletexClient
from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, create_app

from .test_readback import _day
from .test_tripletex_sandbox import assert_schema, response_schema

DAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def sandbox():
    app = create_app()
    with running(app) as server:
        yield app, server


@pytest.fixture
def client(sandbox):
    requests.post(sandbox[1].url + "/_sandbox/reset", timeout=5).raise_for_status()
    with TripletexClient(sandbox[1].url, DEMO_CONSUMER_TOKEN, DEMO_EMPLOYEE_TOKEN, retry_backoff=0) as c:
        yield c


def _book(client: TripletexClient) -> None:
    client.post(_day(dt.date(2025, 12, 30), 500_00, 100_00))  # last year: result accounts start again
    client.post(_day(DAY - dt.timedelta(days=1), 1_000_00, 250_50))
    client.post(_day(DAY, 1_250_00, 333_33))
    client.post(_day(DAY + dt.timedelta(days=1), 99_99, 1_00))  # after the period


def test_balances_are_what_the_postings_add_up_to(client: TripletexClient) -> None:
    _book(client)
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)  # two days, end exclusive
    balances = {b.account: b for b in client.balances(start, end)}
    moved: dict[str, int] = defaultdict(int)
    for p in client.postings(start, end):
        moved[p.account] += p.amount
    assert {a: b.movement for a, b in balances.items() if b.movement} == {a: m for a, m in moved.items() if m}
    for b in balances.values():
        assert b.closing == b.opening + b.movement
    before = defaultdict(int)
    for p in client.postings(dt.date(2025, 1, 1), start):
        if int(p.account) < 3000 or p.date.year == start.year:
            before[p.account] += p.amount
    assert {a: b.opening for a, b in balances.items() if b.opening} == {a: o for a, o in before.items() if o}
    assert balances["1920"].opening == 500_00  # a balance account carries over the new year
    assert balances["3000"].opening == 0  # a result account does not (INFERRED, sandbox docstring)
    last_result = sum(
        p.amount for p in client.postings(dt.date(2025, 1, 1), start) if p.date.year == 2025 and int(p.account) >= 3000
    )
    assert last_result != 0
    # every voucher balances; what is missing is last year's result, not yet closed to equity
    assert sum(b.closing for b in balances.values()) == -last_result


def test_postings_carry_voucher_reference_vat_and_the_ledgers_own_vat_rows(client: TripletexClient) -> None:
    _book(client)
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    assert {p.external_ref for p in rows} == {external_ref("shop12", DAY)}
    assert sum(p.amount for p in rows) == 0 and sum(p.gross for p in rows if not p.system_generated) == 0
    (sale,) = [p for p in rows if p.account == "3000"]
    assert (
        sale.vat_code == "3" and sale.gross == -(1_583_33 * 4 // 5) and sale.amount == -101_333
    )  # net: gross less 25 % VAT in it (1266.66 / 1.25), to the øre
    assert [p for p in rows if p.system_generated], "Tripletex books the VAT on rows of its own"
    only_bank = client.postings(DAY, DAY + dt.timedelta(days=1), accounts=(1900, 1999))
    assert {p.account for p in only_bank} == {"1920", "1940"}


def test_paging_goes_on_until_a_short_page(client: TripletexClient) -> None:
    _book(client)
    client.page_size = 3
    client.calls.clear()
    rows = client.postings(dt.date(2025, 1, 1), dt.date(2027, 1, 1))
    assert len(rows) > 3 * 3
    assert client.calls["GET /ledger/posting"] == len(rows) // 3 + 1


def test_the_sandbox_answers_in_the_specs_shape(sandbox, client: TripletexClient) -> None:
    _book(client)
    url = sandbox[1].url + "/v2/balanceSheet"
    headers = {"Authorization": client._authorization()}
    answer = requests.get(url, params={"dateFrom": "2026-01-01", "dateTo": "2026-12-31"}, headers=headers, timeout=5)
    assert answer.status_code == 200
    assert_schema(answer.json(), response_schema("/balanceSheet", "get", "200"))
    missing = requests.get(url, params={"dateFrom": "2026-01-01"}, headers=headers, timeout=5)
    assert missing.status_code == 422
