"""Property tests of the booking rules: random days of receipts, a consistent Z report, one voucher.

The generator writes what a POS would: sales at 25/15/12/0 %, returns, line discounts (already off
gross), bill discounts (not in the lines' gross), tips, gift cards and deposits sold (keys without
VAT), gift cards and credit notes redeemed, cash with rounding and change, card and Vipps,
credit sales to a customer (trans code 11002, partly or not paid) and cash counts (11008). The Z
report (sales and VAT per code, payments, article groups, grand total, tips, returns), the file's
company and its master data are computed from the same receipts, with the bill discounts spread
by an independent reference (exact fractions), so "every rule passes and the voucher equals the
Z report" is a real check. Each generated day goes through `verdict.judge`, the DAG's own
validation and booking, with the vendor's default limits.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kassebro.booking.voucher import Voucher
from kassebro.config import AccountingKey, Vendor, load_vendor
from kassebro.core.allocation import largest_remainder
from kassebro.core.frames import SalesDay, conform
from kassebro.core.money import vat_from_gross

PROJECT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 10)
TS = pd.Timestamp("2026-11-10T12:00:00Z")
STD = {2500: "3", 1500: "31", 1200: "33", 0: "5"}  # a 0 % sale here is exempt (code 5, account 3100)
# (group id, predefined code, allowed rates); GAVEKORT and PANT are keys with vat: false
GROUPS = (("VARER", "04003", (2500, 1500, 1200, 0)), ("MAT", "04006", (1500, 2500)))
NOT_REVENUE = {"GAVEKORT": "2900", "PANT": "2990"}
PAYMENT_CODES = {"CASH": "12001", "BANK": "12002", "VIPPS": "12011", "GAVEKORT": "12005", "TILGODE": "12010"}
QUICK = settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
"""`make test`'s share of the random days: each goes through GX, about 1 s; `make test-soak` runs 200."""
SOAK = settings(QUICK, max_examples=200)


def _vendor() -> Vendor:
    """The shop with a deposit key added; its limits as configured (they grow with the day)."""
    vendor = load_vendor("butikk_fjord", PROJECT / "config")
    keys = dict(vendor.mapping.accounting_keys)
    keys["PANT"] = AccountingKey(account="2990", vat=False, description="Pant")
    return vendor.model_copy(update={"mapping": vendor.mapping.model_copy(update={"accounting_keys": keys})})


VENDOR = _vendor()


def _round_krone(ore: int) -> int:
    return -_round_krone(-ore) if ore < 0 else (ore + 50) // 100 * 100


def _line(trans: str, n: int, group: str, code: str, gross: int, rate: int, std: str, kind: str, disc: int) -> dict:
    vat = vat_from_gross(gross, rate)
    return {
        "register_id": "R1",
        "trans_id": trans,
        "line_id": str(n),
        "line_type": kind,
        "art_group_id": group,
        "art_group_code": code,
        "article_id": f"A-{group}",
        "description": group.lower(),
        "quantity": "1",
        "gross": gross,
        "net": gross - vat,
        "vat": vat,
        "vat_code": std,
        "std_vat_code": std,
        "vat_rate_bp": rate,
        "timestamp": TS,
        "discount": disc,
        "project": "",
        "cost_centre": "",
    }


@st.composite
def receipts(draw: st.DrawFn, trans: str) -> dict:
    """One receipt: {"head": receipts row, "lines": [...], "payments": [(type, amount)]}."""
    kind = draw(st.sampled_from(["sale"] * 6 + ["return", "mixed", "credit", "count"]))
    head = {"trans_code": "11001", "customer_id": "", "bill_discount": 0, "rounding": 0}
    lines: list[dict] = []
    if kind == "count":  # a cash count: its payment is the difference counted - expected
        head["trans_code"] = "11008"
        diff = draw(st.integers(-5000, 5000).filter(bool))
        return {"head": head, "lines": [], "payments": [("CASH", diff)]}
    for n in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 9)) == 0:
            group = draw(st.sampled_from(sorted(NOT_REVENUE)))
            code, rate, std = "", 0, "6"
        else:
            group, code, rates = draw(st.sampled_from(GROUPS))
            rate = draw(st.sampled_from(rates))
            std = STD[rate]
        unit = draw(st.integers(1, 150_000))
        qty = draw(st.integers(1, 3))
        disc = draw(st.integers(0, unit * qty - 1)) if draw(st.booleans()) else 0
        gross = unit * qty - disc
        is_return = kind == "return" or (kind == "mixed" and draw(st.booleans()))
        sign = -1 if is_return else 1
        lines.append(
            _line(trans, n, group, code, sign * gross, rate, std, "return" if is_return else "sale", sign * disc)
        )
    if kind != "return" and draw(st.integers(0, 4)) == 0:
        lines.append(_line(trans, 9, "", "", draw(st.integers(100, 20_000)), 0, "", "tip", 0))
        lines[-1].update(vat=0, net=lines[-1]["gross"], vat_code="", std_vat_code="")
    revenue = sum(ln["gross"] for ln in lines if ln["line_type"] != "tip")
    if revenue > 0 and draw(st.integers(0, 2)) == 0:
        head["bill_discount"] = draw(st.integers(1, max(1, revenue // 3)))
    due = sum(ln["gross"] for ln in lines) - head["bill_discount"]
    payments: list[tuple[str, int]] = []
    if kind == "credit":
        head["trans_code"] = "11002"
        head["customer_id"] = draw(st.sampled_from(["K100", "K200"]))
        if due > 0 and draw(st.booleans()):
            payments.append(("BANK", draw(st.integers(0, due))))  # a down payment; the rest is owed
        return {"head": head, "lines": lines, "payments": payments}
    if due > 0:
        for voucher_type in ("GAVEKORT", "TILGODE"):
            if due > 0 and draw(st.integers(0, 5)) == 0:
                used = draw(st.integers(1, due))
                payments.append((voucher_type, used))
                due -= used
    if due:
        method = draw(st.sampled_from(["CASH", "CASH", "BANK", "VIPPS"]))
        if method == "CASH":
            cash = _round_krone(due)
            head["rounding"] = cash - due
            tendered = cash + (draw(st.integers(0, 5)) * 10_000 if cash > 0 else 0)
            payments.append(("CASH", tendered))
            if tendered != cash:
                payments.append(("CASH", cash - tendered))  # change given back
        else:
            payments.append((method, due))
    return {"head": head, "lines": lines, "payments": payments}


@st.composite
def days(draw: st.DrawFn) -> list[dict]:
    count = draw(st.integers(0, 12))
    return [draw(receipts(f"T{i:03d}")) for i in range(count)]


# ------------------------------------------------------------------------------------------------
# The reference: what the POS's Z report says, computed independently of kassebro.booking.rules


def _reference_split(total: int, weights: list[Fraction | int]) -> list[int]:
    """Largest remainder with exact fractions (ties to the first), signed like `total`."""
    whole = sum(weights)
    shares = [Fraction(abs(total)) * w / whole for w in weights]
    parts = [int(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in order[: abs(total) - sum(parts)]:
        parts[i] += 1
    return [p if total > 0 else -p for p in parts]


def _z_vat(receipt_list: list[dict]) -> dict[tuple[str, int], list[int]]:
    """(gross, VAT) per (standard VAT code, rate) after bill discounts, as the POS's Z report would
    total them: a discounted receipt's VAT is its lines' less what each code's part holds."""
    totals: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for receipt in receipt_list:
        sales = [ln for ln in receipt["lines"] if ln["line_type"] != "tip"]
        for ln in sales:
            totals[(ln["std_vat_code"], ln["vat_rate_bp"])][0] += ln["gross"]
            totals[(ln["std_vat_code"], ln["vat_rate_bp"])][1] += ln["vat"]
        discount = receipt["head"]["bill_discount"]
        if not discount:
            continue
        revenue = sum(ln["gross"] for ln in sales)
        sign = 1 if revenue > 0 else -1
        matching = [ln for ln in sales if ln["gross"] * sign > 0]
        with_vat = [ln for ln in matching if ln["art_group_id"] not in NOT_REVENUE]
        chosen = with_vat or matching
        per_code: dict[tuple[str, int], int] = defaultdict(int)
        for ln in chosen:
            per_code[(ln["std_vat_code"], ln["vat_rate_bp"])] += abs(ln["gross"])
        codes = sorted(per_code)
        for (code, rate), part in zip(codes, _reference_split(discount, [per_code[c] for c in codes]), strict=True):
            totals[(code, rate)][0] -= part
            totals[(code, rate)][1] -= vat_from_gross(part, rate)
    return dict(totals)


def _frames(receipt_list: list[dict]) -> SalesDay:
    lines, heads, pays = [], [], []
    for i, receipt in enumerate(receipt_list):
        trans = f"T{i:03d}"
        lines.extend(receipt["lines"])
        amount = sum(ln["gross"] for ln in receipt["lines"]) - receipt["head"]["bill_discount"]
        if receipt["head"]["trans_code"] == "11008":  # a cash count states the difference it found
            amount = sum(paid for _type, paid in receipt["payments"])
        heads.append(
            {"register_id": "R1", "trans_id": trans, "nr": i + 1, "trans_type": "X", "amount": amount}
            | {"timestamp": TS}
            | receipt["head"]
        )
        for ptype, paid in receipt["payments"]:
            pays.append(
                {"register_id": "R1", "trans_id": trans, "payment_type": ptype, "payment_code": PAYMENT_CODES[ptype]}
                | {"amount": paid, "currency": "NOK", "exchange_rate": "1"}
            )
    z_vat = [
        {"register_id": "R1", "report_id": "Z1", "vat_code": c, "std_vat_code": c, "vat_rate_bp": rate, "gross": g}
        | {"vat": v, "amount": g}
        for (c, rate), (g, v) in sorted(_z_vat(receipt_list).items())
    ]
    all_lines = [ln for r in receipt_list for ln in r["lines"]]
    sales = [ln for ln in all_lines if ln["line_type"] != "tip"]
    discounts = sum(r["head"]["bill_discount"] for r in receipt_list)
    z_reports = [
        {"register_id": "R1", "report_id": "Z1", "company_ident": VENDOR.org_number, "amounts": "gross"}
        | {"amounts_basis": "generated", "total_sales": sum(ln["gross"] for ln in sales) - discounts}
        | {"tip_amount": sum(ln["gross"] for ln in all_lines if ln["line_type"] == "tip")}
        | {"return_amount": -sum(ln["gross"] for ln in sales if ln["line_type"] == "return")}
    ]
    groups: dict[str, int] = defaultdict(int)
    for ln in sales:
        groups[ln["art_group_id"]] += ln["gross"]
    z_groups = [
        {"register_id": "R1", "report_id": "Z1", "art_group_id": g, "amount": a} for g, a in sorted(groups.items())
    ]
    declared = [("vat", code, code) for code in sorted({ln["std_vat_code"] for ln in sales})]
    declared += [("11", "X", "")] + [("12", t, code) for t, code in PAYMENT_CODES.items()]
    declared += [("04", g, "") for g in ("VARER", "MAT", *NOT_REVENUE)]
    z_pay: dict[str, int] = defaultdict(int)
    for ptype, paid in (p for r in receipt_list for p in r["payments"]):
        z_pay[ptype] += paid
    z_payments = [
        {"register_id": "R1", "report_id": "Z1", "payment_type": t, "payment_code": PAYMENT_CODES[t], "amount": a}
        for t, a in sorted(z_pay.items())
    ]

    def frame(name: str, rows: list[dict]) -> pd.DataFrame:
        from kassebro.core.frames import FRAME_COLUMNS

        return conform(name, pd.DataFrame(rows, columns=list(FRAME_COLUMNS[name]) if not rows else None))

    return SalesDay(
        "butikk_fjord",
        DAY,
        frame("lines", lines),
        frame("receipts", heads),
        frame("payments", pays),
        frame("z_vat", z_vat),
        frame("z_payments", z_payments),
        source="generated",
        z_art_groups=frame("z_art_groups", z_groups),
        z_reports=frame("z_reports", z_reports if receipt_list else []),
        codes=frame("codes", [{"kind": k, "code": c, "standard": s} for k, c, s in declared]),
        headers=frame("headers", [{"source": "generated", "company_ident": VENDOR.org_number, "currency": "NOK"}]),
    )


def _shuffled(day: SalesDay, seed: int) -> SalesDay:
    """The same day with the rows of every frame in another order."""

    def shuffle(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sample(frac=1, random_state=seed).reset_index(drop=True)

    return replace(day, lines=shuffle(day.lines), receipts=shuffle(day.receipts), payments=shuffle(day.payments))


def _sum_by(voucher: Voucher, pick) -> dict:
    out: dict = defaultdict(int)
    for ln in voucher.lines:
        key = pick(ln)
        if key is not None:
            out[key] += ln.amount
    return {k: v for k, v in out.items() if v}


# ------------------------------------------------------------------------------------------------


@QUICK
@given(days(), st.integers(0, 2**32 - 1))
def test_a_random_day_passes_every_rule_and_books_to_the_z_report(receipt_list: list[dict], seed: int) -> None:
    a_day_passes_every_rule_and_books_to_its_z_report(receipt_list, seed)


@pytest.mark.soak
@SOAK
@given(days(), st.integers(0, 2**32 - 1))
def test_many_random_days_pass_every_rule_and_book_to_the_z_report(receipt_list: list[dict], seed: int) -> None:
    a_day_passes_every_rule_and_books_to_its_z_report(receipt_list, seed)


def a_day_passes_every_rule_and_books_to_its_z_report(receipt_list: list[dict], seed: int) -> None:
    from kassebro.booking.rules import build_voucher
    from kassebro.booking.verdict import judge

    day = _frames(receipt_list)
    verdict = judge(VENDOR, day)  # the DAG's validation and booking, default limits
    if day.is_empty():  # no transactions, no Z report: waiting for data, never an empty voucher
        assert verdict.waiting and verdict.voucher is None and not verdict.held_back
        return
    assert not verdict.held_back, [str(i) for i in verdict.issues()]
    assert not verdict.report.not_checked
    voucher = verdict.voucher
    assert voucher is not None

    # balanced, no zero lines
    assert sum(ln.amount for ln in voucher.lines) == 0
    assert all(ln.amount != 0 for ln in voucher.lines)

    # revenue per VAT code (after bill discounts) = the Z report per code; code 6 = not revenue
    z: dict[str, int] = defaultdict(int)
    for c, g in zip(day.z_vat["std_vat_code"], day.z_vat["gross"], strict=True):
        z[c] += int(g)
    z = {c: g for c, g in z.items() if g}
    booked = _sum_by(voucher, lambda ln: ln.vat_code)
    not_revenue = _sum_by(
        voucher, lambda ln: "6" if ln.vat_code is None and ln.description.startswith(("Salg", "Retur")) else None
    )
    assert {c: -g for c, g in (booked | not_revenue).items()} == z

    # payments per payment account = the payment totals mapped to that account
    expected: dict[str, int] = defaultdict(int)
    for ptype, amount in zip(day.payments["payment_type"], day.payments["amount"], strict=True):
        expected[VENDOR.mapping.payment_account(ptype, PAYMENT_CODES[ptype])] += int(amount)
    assert _sum_by(voucher, lambda ln: ln.account if ln.description.startswith("Betaling") else None) == {
        a: v for a, v in expected.items() if v
    }

    # tips, rounding, receivables and cash differences each on their own account
    lines = day.lines
    tips = int(lines.loc[lines["line_type"] == "tip", "gross"].sum())
    assert _sum_by(voucher, lambda ln: ln.account if ln.account == "2910" else None).get("2910", 0) == -tips
    rounding = int(day.receipts["rounding"].sum())
    assert _sum_by(voucher, lambda ln: ln.account if ln.account == "7798" else None).get("7798", 0) == -rounding
    owed: dict[str, int] = defaultdict(int)
    counted = 0
    for receipt in receipt_list:
        head = receipt["head"]
        paid = sum(a for _, a in receipt["payments"])
        if head["trans_code"] == "11002":
            total = sum(ln["gross"] for ln in receipt["lines"]) - head["bill_discount"]
            owed[f"Kredittsalg kunde {head['customer_id']}"] += total - paid
        elif head["trans_code"] == "11008":
            counted += paid
    assert _sum_by(voucher, lambda ln: ln.description if ln.account == "1570" else None) == {
        k: v for k, v in owed.items() if v
    }
    assert _sum_by(voucher, lambda ln: ln.account if ln.account == "7799" else None).get("7799", 0) == -counted

    # |VAT difference| <= 1/2 øre per POS line VAT, per bill-discount part and per voucher line
    vat_lines = lines[(lines["line_type"] != "tip") & ~lines["art_group_id"].isin(list(NOT_REVENUE))]
    discounted = {f"T{i:03d}" for i, r in enumerate(receipt_list) if r["head"]["bill_discount"]}
    parts = vat_lines[vat_lines["trans_id"].isin(discounted)][["trans_id", "std_vat_code", "line_type"]]
    bound = len(vat_lines) + len(parts.drop_duplicates()) + sum(1 for ln in voucher.lines if ln.vat_code)
    assert 2 * abs(voucher.vat_difference) <= bound

    # deterministic: the same day, rows shuffled, gives the same voucher
    again = build_voucher(_shuffled(day, seed), VENDOR)
    assert again.digest() == voucher.digest()
    assert again.lines == voucher.lines


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=8).filter(any))
def test_largest_remainder_parts_sum_exactly_and_stay_within_one_ore(total: int, weights: list[int]) -> None:
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, whole)) < 1
    assert parts == _reference_split(total, weights) if total else parts == [0] * len(weights)


def test_largest_remainder_refuses_zero_weights() -> None:
    with pytest.raises(ValueError, match="sum to 0"):
        largest_remainder(5, [0, 0])
    assert largest_remainder(0, [0, 0]) == [0, 0]
    assert largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    assert largest_remainder(-100, [1, 1, 1]) == [-34, -33, -33]
