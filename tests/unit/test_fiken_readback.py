"""Reading the books back from Fiken: balances (`GET /accountBalances?date=`), postings
(`GET /journalEntries`, each line split into net and VAT), the chart (`GET /accounts`) and the
documented VAT codes, against the sandbox over HTTP. The sandbox computes its balances and its VAT
from what it holds, with its own arithmetic (`kassebro.sandbox.amounts`), and its answers are
checked against the vendored spec."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from kassebro.booking.voucher import external_ref
from kassebro.ledgers.base import LedgerAccount, LedgerPosting, LedgerValidationError
from kassebro.ledgers.fiken import VAT_ACCOUNTS, VAT_CODES, FikenClient
from kassebro.sandbox.fiken import (
    ACCOUNTS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_COMPANY,
    DEMO_REFRESH_TOKEN,
    create_app,
)
from kassebro.sandbox.server import running

from .test_fiken_sandbox import response_schema, validator
from .test_readback import _day

DAY = dt.date(2026, 3, 2)
SLUG = DEMO_COMPANY.slug
CARD, VIPPS = "1901:10002", "1901:10011"
# customer sub-accounts, so the chart (48 accounts) has more than a page of 100
CUSTOMERS = {f"1500:{20000 + i}": f"Kunde {i}" for i in range(80)}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Any, Any]]:
    app = create_app(extra_accounts=CUSTOMERS)
    with running(app) as server:
        yield app, server


@pytest.fixture
def client(sandbox) -> Iterator[FikenClient]:
    requests.post(sandbox[1].url + "/_sandbox/reset", json={"tokens": True}, timeout=5).raise_for_status()
    with FikenClient(
        sandbox[1].url,
        SLUG,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        refresh_token=DEMO_REFRESH_TOKEN,
        retry_backoff=0,
        read_back_after_post=False,
    ) as c:
        yield c


def _post(client: FikenClient, day: dt.date, card: int, vipps: int) -> None:
    client.post(_day(day, card, vipps, (CARD, VIPPS)))


def _raw(client: FikenClient, entries: list[dict[str, Any]]) -> None:
    """One generalJournalEntries request as another program would send it (not through `render`)."""
    body = {"description": "Fra et annet program", "open": False, "journalEntries": entries}
    client._request("POST", f"{client.company_path}/generalJournalEntries", body=body, raw=True)


def _entry(day: dt.date, lines: list[dict[str, Any]], description: str = "Fri postering") -> dict[str, Any]:
    return {"description": description, "date": day.isoformat(), "lines": lines}


def _sums(postings: Iterable[LedgerPosting], keep: Any = lambda p: True) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        if keep(p):
            sums[p.account] += p.amount
    return {account: amount for account, amount in sums.items() if amount}


def _is_result(account: str) -> bool:
    return 3000 <= int(account[:4]) <= 8999


# ---- balances against postings ---------------------------------------------------------------


def test_balances_are_what_the_postings_add_up_to(client: FikenClient) -> None:
    _post(client, dt.date(2025, 12, 30), 500_00, 100_00)  # last year: result accounts start again
    _post(client, DAY - dt.timedelta(days=1), 1_000_00, 250_50)
    _post(client, DAY, 1_250_00, 333_33)
    _post(client, DAY + dt.timedelta(days=1), 99_99, 1_00)  # after the period
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)  # two days, end exclusive
    balances = {b.account: b for b in client.balances(start, end)}
    postings = client.postings(start, end)
    assert {b.account: b.movement for b in balances.values() if b.movement} == _sums(postings)
    assert all(b.closing == b.opening + b.movement for b in balances.values())
    before = client.postings(dt.date(2025, 1, 1), start)
    opening = _sums(before, lambda p: not _is_result(p.account) or p.date.year == start.year)
    assert {b.account: b.opening for b in balances.values() if b.opening} == opening
    assert balances[CARD].opening == 500_00 and balances[CARD].closing == 500_00 + 1_000_00 + 1_250_00
    assert "3000" not in opening and balances["3000"].opening == 0  # last year's sales do not carry over
    assert balances["2700"].opening != 0  # the VAT account is a balance account: it does
    assert balances[CARD].name == "Kasse: bankkort" and balances["2700"].name == ACCOUNTS["2700"]
    last_result = sum(p.amount for p in before if _is_result(p.account))
    assert last_result != 0
    # every entry balances; what is missing is last year's result, not yet closed to equity
    assert sum(b.closing for b in balances.values()) == -last_result
    assert client.calls["GET /companies/{slug}/accountBalances"] == 2 * 2  # two dates, two pages each


def test_a_period_from_new_year_and_one_across_it(client: FikenClient) -> None:
    for day, card in ((dt.date(2025, 6, 2), 200_00), (dt.date(2025, 12, 30), 500_00), (dt.date(2026, 1, 2), 700_00)):
        _post(client, day, card, 10_00)
    _post(client, DAY, 1_250_00, 333_33)
    books = client.postings(dt.date(2025, 1, 1), dt.date(2027, 1, 1))

    def between(first: dt.date, end: dt.date) -> list[LedgerPosting]:
        return [p for p in books if first <= p.date < end]

    # from 1 January: the result accounts open at zero although Fiken's 31 December balance is not
    new_year = {b.account: b for b in client.balances(dt.date(2026, 1, 1), dt.date(2026, 3, 1))}
    assert (
        new_year["3000"].opening == 0 and new_year["3000"].movement == _sums(between(dt.date(2026, 1, 1), DAY))["3000"]
    )
    assert new_year[CARD].opening == 200_00 + 500_00 and new_year[CARD].closing == 200_00 + 500_00 + 700_00
    # across New Year: the movement is the period's postings, the opening this period's year so far
    client.calls.clear()
    across = {b.account: b for b in client.balances(dt.date(2025, 12, 1), dt.date(2026, 3, 1))}
    period = between(dt.date(2025, 12, 1), dt.date(2026, 3, 1))
    assert {b.account: b.movement for b in across.values() if b.movement} == _sums(period)
    assert across["3000"].opening == _sums(between(dt.date(2025, 1, 1), dt.date(2025, 12, 1)))["3000"]
    assert all(b.closing == b.opening + b.movement for b in across.values())
    assert across[CARD].closing == 200_00 + 500_00 + 700_00
    # 30 November, 31 December and 28 February, two pages each
    assert client.calls["GET /companies/{slug}/accountBalances"] == 3 * 2


def test_a_range_of_accounts_and_an_empty_period(client: FikenClient) -> None:
    _post(client, DAY, 1_250_00, 333_33)
    end = DAY + dt.timedelta(days=1)
    only_sales = client.balances(DAY, end, accounts=(3000, 3999))
    assert {b.account for b in only_sales} == {"3000", "3030"}
    assert {p.account for p in client.postings(DAY, end, accounts=(1900, 1999))} == {CARD, VIPPS}
    assert {p.account for p in client.postings(DAY, end, accounts=(2700, 2799))} == {"2700", "2701"}
    assert client.balances(DAY, DAY) == [] and client.postings(DAY, DAY) == []


# ---- postings: net, gross, VAT rows, references ----------------------------------------------


def test_postings_carry_the_entry_its_reference_and_fikens_vat(client: FikenClient) -> None:
    _post(client, DAY, 1_250_00, 333_33)
    _raw(client, [_entry(DAY, [{"amount": 100_00, "debitAccount": "7770", "creditAccount": "1920:10001"}])])
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    ours = [p for p in rows if p.external_ref]
    assert {p.external_ref for p in ours} == {external_ref("shop12", DAY)}
    assert {(p.voucher_id, p.voucher_number) for p in ours} == {("1", "1")}
    assert all(p.description.endswith(f"[{external_ref('shop12', DAY)}]") for p in ours)
    # the card pays 1250.00 of the 1266.66 sold at 25 %, Vipps the rest: two lines on 3000
    sales = [p for p in rows if p.account == "3000"]
    assert [(p.vat_code, p.gross, p.amount) for p in sales] == [("3", -1_250_00, -1_000_00), ("3", -16_66, -13_33)]
    vat = [p for p in rows if p.account == "2700"]  # 16.66 x 0.2 = 3.332 -> 3.33
    assert [(p.amount, p.gross, p.vat_code, p.system_generated) for p in vat] == [
        (-250_00, -250_00, None, True),
        (-3_33, -3_33, None, True),
    ]
    assert sum(p.amount for p in sales) == -101_333  # 1266.66 / 1.25, to the øre
    assert sum(p.amount for p in rows) == 0 and sum(p.gross for p in rows if not p.system_generated) == 0
    (fee,) = [p for p in rows if p.account == "7770"]
    assert (fee.amount, fee.gross, fee.vat_code, fee.external_ref) == (100_00, 100_00, None, "")


def test_the_one_ore_of_vat_at_12_percent(client: FikenClient) -> None:
    """12 % is where the VAT in a whole-øre gross can end in exactly half an øre (gross x 3/28):
    Fiken's split and kassebro's must round it the same way, and a net debit must come back as
    the net that was sent, VAT added by Fiken (the sandbox's own `vat_added`)."""
    credits = [14, 100_002, 1, 28, 999_99]  # 1.5 -> 2, 10714.5 -> 10715, 0.107 -> 0, 3 -> 3, 10714.18 -> 10714
    debits = list(range(1, 60)) + [9_990, 1_000_002]  # nets sent for refunds
    lines = [{"amount": g, "debitAccount": "1901:10001", "creditAccount": "3040", "creditVatCode": 33} for g in credits]
    lines += [{"amount": n, "debitAccount": "3040", "debitVatCode": 33, "creditAccount": "1901:10001"} for n in debits]
    _raw(client, [_entry(DAY, lines)])
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    sales = [p for p in rows if p.account == "3040"]
    vat = [p for p in rows if p.account == "2702"]
    assert [(p.gross, p.amount) for p in sales[: len(credits)]] == [
        (-14, -12),
        (-100_002, -89_287),
        (-1, -1),
        (-28, -25),
        (-999_99, -892_85),
    ]
    assert [p.amount for p in sales[len(credits) :]] == debits  # the net sent, to the øre
    assert all(p.gross > p.amount for p in sales[len(credits) :] if p.amount >= 5)  # Fiken added VAT
    assert [p.amount for p in vat[:2]] == [-2, -10_715]
    balances = {b.account: b for b in client.balances(DAY, DAY + dt.timedelta(days=1))}
    assert balances["2702"].movement == sum(p.amount for p in vat) != 0  # the sandbox's VAT is ours
    assert balances["3040"].movement == sum(p.amount for p in sales)


def test_a_deleted_transaction_and_its_reverse_cancel_out(client: FikenClient) -> None:
    _post(client, DAY, 1_250_00, 333_33)
    posted = client.find(external_ref("shop12", DAY), DAY)
    assert posted is not None
    reversal = client.reverse(posted.ledger_id, DAY)  # Fiken's own: PATCH transactions/{id}/delete
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    assert {p.voucher_id for p in rows} == {posted.ledger_id, reversal.ledger_id}
    assert _sums(rows) == {}
    assert [b for b in client.balances(DAY, DAY + dt.timedelta(days=1)) if b.movement or b.closing] == []


def test_a_vat_code_without_a_known_vat_account_is_refused_not_guessed(client: FikenClient) -> None:
    _raw(
        client,
        [_entry(DAY, [{"amount": 111_00, "debitAccount": "1901:10001", "creditAccount": "3000", "creditVatCode": 32}])],
    )
    with pytest.raises(LedgerValidationError, match="code 32"):
        client.postings(DAY, DAY + dt.timedelta(days=1))


# ---- paging ----------------------------------------------------------------------------------


def test_paging_past_100_entries_and_accounts(client: FikenClient) -> None:
    entries = [
        _entry(DAY, [{"amount": 100 + i, "debitAccount": "1901:10001", "creditAccount": "3000", "creditVatCode": 3}])
        for i in range(105)
    ]
    _raw(client, entries)
    client.calls.clear()
    rows = client.postings(DAY, DAY + dt.timedelta(days=1))
    assert client.calls["GET /companies/{slug}/journalEntries"] == 2
    assert len({p.voucher_id for p in rows}) == 105 and len(rows) == 105 * 3  # payment, net sale, VAT
    balances = {b.account: b for b in client.balances(DAY, DAY + dt.timedelta(days=1))}
    assert client.calls["GET /companies/{slug}/accountBalances"] == 2 * 2
    # 3000 is past the first 100 accounts of the chart (the customers' sub-accounts come before it)
    assert list(sorted({**ACCOUNTS, **CUSTOMERS})).index("3000") >= 100
    assert balances["3000"].movement == _sums(rows)["3000"] and balances["1901:10001"].movement == sum(range(100, 205))
    chart = client.accounts()
    assert client.calls["GET /companies/{slug}/accounts"] == 2
    assert len(chart) == len(ACCOUNTS) + len(CUSTOMERS) > 100
    assert LedgerAccount("1500:20079", "Kunde 79") in chart and all(a.active and a.vat_code is None for a in chart)


# ---- the chart and the VAT codes -------------------------------------------------------------


def test_the_chart_refreshes_the_cached_one(client: FikenClient) -> None:
    chart = {a.number: a.name for a in client.accounts()}
    assert chart == {**ACCOUNTS, **CUSTOMERS}
    client.calls.clear()
    assert client.account_codes() == set(chart)  # render's check needs no call now
    assert client.calls["GET /companies/{slug}/accounts"] == 0


def test_vat_codes_are_the_documented_list_as_standard_codes(client: FikenClient) -> None:
    codes = {v.code: v for v in client.vat_codes()}
    assert set(codes) == set(VAT_CODES)
    assert client.call_count == 0  # no endpoint: Fiken documents its codes
    assert (codes["3"].own_id, codes["3"].rate) == ("3", Decimal("25"))
    assert (codes["31"].rate, codes["33"].rate, codes["11"].rate, codes["0"].rate) == (
        Decimal("15"),
        Decimal("12"),
        Decimal("15"),
        Decimal("0"),
    )
    assert codes["33"].name.startswith("LOW") and codes["1"].name.startswith("HIGH")
    # every code with a rate has the account its VAT is split to, and that account is in the chart
    assert {c for c, v in codes.items() if v.rate} == set(VAT_ACCOUNTS)
    assert set(VAT_ACCOUNTS.values()) <= set(ACCOUNTS)


# ---- the sandbox's answers against the spec --------------------------------------------------


def test_the_sandbox_answers_read_back_in_the_specs_shape(sandbox, client: FikenClient) -> None:
    _post(client, DAY, 1_250_00, 333_33)
    base = sandbox[1].url + f"/api/v2/companies/{SLUG}"
    headers = {"Authorization": client._authorization()}

    def get(path: str, **params: Any) -> requests.Response:
        return requests.get(base + path, params=params, headers=headers, timeout=5)

    balances = get("/accountBalances", date=DAY.isoformat(), page=1, pageSize=100)
    assert balances.status_code == 200
    validator(response_schema("/companies/{companySlug}/accountBalances", "get")).validate(balances.json())
    assert all(isinstance(row["balance"], int) for row in balances.json())
    assert balances.headers["Fiken-Api-Page"] == "1" and balances.headers["Fiken-Api-Page-Count"] == "2"
    assert balances.headers["Fiken-Api-Result-Count"] == str(len(ACCOUNTS) + len(CUSTOMERS))
    default = get("/accountBalances", date=DAY.isoformat())
    assert len(default.json()) == 25  # the spec's default page size
    some = get("/accountBalances", date=DAY.isoformat(), fromAccount=1500, toAccount=1500, pageSize=100).json()
    assert {row["code"][:4] for row in some} == {"1500"} and len(some) == 1 + len(CUSTOMERS)
    entries = get("/journalEntries", dateGe=DAY.isoformat(), dateLt=(DAY + dt.timedelta(days=1)).isoformat())
    validator(response_schema("/companies/{companySlug}/journalEntries", "get")).validate(entries.json())
    accounts = get("/accounts")
    validator(response_schema("/companies/{companySlug}/accounts", "get")).validate(accounts.json())
    assert len(accounts.json()) == len(ACCOUNTS) + len(CUSTOMERS)  # not paged unless asked
    paged = get("/accounts", page=0, pageSize=100)
    assert len(paged.json()) == 100 and paged.headers["Fiken-Api-Page-Count"] == "2"
    for bad in ({}, {"date": "2026-3-2"}, {"date": DAY.isoformat(), "fromAccount": "1500:10001"}):
        refused = get("/accountBalances", **bad)
        assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
    assert get("/accountBalances", date=DAY.isoformat(), pageSize=101).status_code == 400
