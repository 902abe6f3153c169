"""The Ledger protocol's read-back and reversal, the same test against every ledger sandbox."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.ledgers.base import PostedVoucher
from kassebro.sandbox.server import running

from .test_ledgers_exactly_once import duett, fiken, poweroffice, tripletex, xledger

DAY1, DAY2, DAY3 = dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)


def day_voucher(day: dt.date, cash: int) -> Voucher:
    lines = (
        VoucherLine("1900", cash, None, "Kontant"),
        VoucherLine("1940", 200_00, None, "Bankkort"),
        VoucherLine("3000", -(cash + 200_00 - 115_00), "3", "Salg 25 %"),
        VoucherLine("3030", -115_00, "31", "Salg 15 %"),
    )
    return Voucher("protocol", day, external_ref("protocol", day), f"Dagsoppgjør {day}", lines)


def per_account(postings) -> Counter:
    totals: Counter = Counter()
    for account, amount, _vat in postings:
        totals[account] += amount
    return totals


@pytest.mark.parametrize("system", [tripletex, fiken, poweroffice, xledger, duett], ids=lambda f: f.__name__)
def test_list_vouchers_of_a_range_and_reverse_one(system) -> None:
    app, make_client, _ = system()
    with running(app) as server:
        client = make_client(server.url)
        first, second, outside = (day_voucher(d, 500_00 + i * 100) for i, d in enumerate((DAY1, DAY2, DAY3)))
        posted = {v.external_ref: client.post(v) for v in (first, second, outside)}

        listed = client.list_vouchers(DAY1, DAY3)  # end exclusive: the third day is out
        assert all(isinstance(v, PostedVoucher) and DAY1 <= v.date < DAY3 for v in listed)
        ours = {v.external_ref: v for v in listed if v.external_ref}
        assert set(ours) == {first.external_ref, second.external_ref}
        for voucher in (first, second):
            got = ours[voucher.external_ref]
            assert got.ledger_id == posted[voucher.external_ref].ledger_id
            sent = [(line.account, line.amount, line.vat_code) for line in voucher.lines]
            assert per_account(got.postings) == per_account(sent)

        reversal = client.reverse(posted[first.external_ref].ledger_id, DAY2)
        assert reversal.date == DAY2 and reversal.ledger_id != posted[first.external_ref].ledger_id
        after = client.list_vouchers(DAY1, DAY3)
        both = [v for v in after if v.ledger_id in (posted[first.external_ref].ledger_id, reversal.ledger_id)]
        assert len(both) == 2
        net = per_account(p for v in both for p in v.postings)
        assert all(amount == 0 for amount in net.values()), net  # the first day is undone, account by account
        found = client.find(first.external_ref, DAY1)
        assert found is not None and found.ledger_id == posted[first.external_ref].ledger_id
