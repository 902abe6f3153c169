"""Read-back for every system that has it: what `balances` reports is what the postings the ledger
holds add up to, over real HTTP against each sandbox (whose figures are its own, computed from
what it holds, not from kassebro's code)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.demo.sandboxes import client as sandbox_client
from kassebro.demo.sandboxes import create_app
from kassebro.ledgers import registry
from kassebro.sandbox.server import running

DAY = dt.date(2026, 3, 2)
READ_BACK = tuple(s.name for s in registry.systems() if hasattr(s.client_class, "balances"))
# Where the day's card and Vipps money goes: Fiken books POS payments on 1901's sub-accounts
# (the registry's `payment_account`; its sandbox's chart has 1920 only as bank sub-accounts).
PAYMENT_ACCOUNTS = {"Fiken": ("1901:10002", "1901:10011")}  # by the client's `system`


def _client(system: str, url: str) -> Any:
    return sandbox_client(system, url)


@pytest.fixture(params=READ_BACK)
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    with running(create_app(request.param)) as server, _client(request.param, server.url) as client:
        yield client


def _day(day: dt.date, card: int, vipps: int, accounts: tuple[str, str] = ("1920", "1940")) -> Voucher:
    sales = card + vipps
    high = sales * 4 // 5
    return Voucher(
        vendor_id="shop12",
        business_day=day,
        external_ref=external_ref("shop12", day),
        description=f"POS dagsoppgjør {day}",
        lines=(
            VoucherLine(accounts[0], card, None, "Bankkort"),
            VoucherLine(accounts[1], vipps, None, "Vipps"),
            VoucherLine("3000", -high, "3", "Salg 25 %"),
            VoucherLine("3030", -(sales - high), "31", "Salg 15 %"),
        ),
    )


def test_balances_are_what_the_ledgers_postings_add_up_to(client: Any) -> None:
    bank, phone = PAYMENT_ACCOUNTS.get(client.system, ("1920", "1940"))
    for day, card, vipps in (
        (dt.date(2025, 12, 30), 500_00, 100_00),  # last year
        (DAY - dt.timedelta(days=1), 1_000_00, 250_50),
        (DAY, 1_250_00, 333_33),
        (DAY + dt.timedelta(days=1), 99_99, 1_00),  # after the period
    ):
        client.post(_day(day, card, vipps, (bank, phone)))
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)  # two days, end exclusive
    balances = {b.account: b for b in client.balances(start, end)}
    postings = client.postings(start, end)
    assert {p.external_ref for p in postings} == {external_ref("shop12", start), external_ref("shop12", DAY)}
    moved: dict[str, int] = defaultdict(int)
    for p in postings:
        moved[p.account] += p.amount
    assert {a: b.movement for a, b in balances.items() if b.movement} == {a: m for a, m in moved.items() if m}
    assert all(b.closing == b.opening + b.movement for b in balances.values())
    assert balances[bank].closing == 500_00 + 1_000_00 + 1_250_00  # a balance account carries over New Year
    assert balances[phone].movement == 250_50 + 333_33
    sales_net = -sum(p.amount for p in postings if p.account in ("3000", "3030"))
    vat = -sum(p.amount for p in postings if p.account.startswith("27"))
    assert sales_net + vat == 1_000_00 + 250_50 + 1_250_00 + 333_33  # the gross, to the øre
    assert sum(p.amount for p in postings) == 0
