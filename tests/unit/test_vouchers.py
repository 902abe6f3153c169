"""The voucher builder: gross per (account, VAT code), alternative accounts, tips, payments, rounding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kassebro.config import load_vendor
from kassebro.errors import ValidationFailed
from kassebro.frames import SalesDay, conform, empty_frame
from kassebro.voucher import Voucher, VoucherLine

DAY = dt.date(2026, 11, 10)
TS = pd.Timestamp("2026-11-10T10:00:00Z")


def line(trans: str, group: str, gross: int, rate: int, kind: str = "sale", code: str = "") -> dict:
    std = {2500: "3", 1500: "31", 0: "6"}[rate]
    vat = round(gross * rate / (10000 + rate))
    return {
        "register_id": "R1",
        "trans_id": trans,
        "line_id": "1",
        "line_type": kind,
        "art_group_id": group,
        "art_group_code": code,
        "article_id": f"A-{group}",
        "description": f"vare {group}",
        "quantity": "1",
        "gross": gross,
        "net": gross - vat,
        "vat": vat,
        "vat_code": std,
        "std_vat_code": std,
        "vat_rate_bp": rate,
        "timestamp": TS,
    }


def day(
    lines: list[dict], payments: list[tuple[str, str, str, int]], rounding: dict[str, int] | None = None
) -> SalesDay:
    trans = sorted({r["trans_id"] for r in lines} | {p[0] for p in payments})
    receipts = [
        {
            "register_id": "R1",
            "trans_id": t,
            "nr": i + 1,
            "trans_type": "CASHSAL",
            "trans_code": "11001",
            "amount": sum(r["gross"] for r in lines if r["trans_id"] == t),
            "rounding": (rounding or {}).get(t, 0),
            "timestamp": TS,
        }
        for i, t in enumerate(trans)
    ]
    pays = [
        {
            "register_id": "R1",
            "trans_id": t,
            "payment_type": pt,
            "payment_code": pc,
            "amount": a,
            "currency": "NOK",
            "exchange_rate": "1",
        }
        for t, pt, pc, a in payments
    ]
    return SalesDay(
        "cafe_solsiden",
        DAY,
        conform("lines", pd.DataFrame(lines)),
        conform("receipts", pd.DataFrame(receipts)),
        conform("payments", pd.DataFrame(pays)),
        empty_frame("z_vat"),
        empty_frame("z_payments"),
    )


@pytest.fixture
def cafe(project_dir: Path):
    return load_vendor("cafe_solsiden", project_dir / "config")


def by_account(voucher: Voucher) -> dict[tuple[str, str | None], int]:
    return {(ln.account, ln.vat_code): ln.amount for ln in voucher.lines}


def test_eat_in_and_take_away_coffee_split_by_vat_rate(cafe) -> None:
    from kassebro.vouchers import build_voucher

    sales = day(
        [line("1", "KAFFE", 4500, 2500), line("2", "KAFFE", 3900, 1500), line("2", "KAFFE", 3900, 1500)],
        [("1", "CARD", "12002", 4500), ("2", "VIPPS", "12011", 7800)],
    )
    voucher = build_voucher(sales, cafe)
    assert by_account(voucher) == {
        ("3000", "3"): -4500,
        ("3030", "31"): -7800,
        ("1940", None): 4500,
        ("1945", None): 7800,
    }
    assert sum(ln.amount for ln in voucher.lines) == 0
    assert voucher.external_ref == "kassebro:cafe_solsiden:2026-11-10"
    assert all(ln.department == "1" for ln in voucher.lines)
    # POS VAT per line (900 + 509 + 509) vs VAT on grouped gross (900 + 1017): 1 øre
    assert voucher.vat_difference == 1


def test_tips_are_a_liability_without_vat_and_rounding_its_own_line(cafe) -> None:
    from kassebro.vouchers import build_voucher

    sales = day(
        [line("1", "04007", 9940, 2500, code="04007"), line("1", "TIPS", 1000, 0, kind="tip")],
        [("1", "CASH", "12001", 10900)],
        rounding={"1": -40},  # 109.40 paid as 109.00
    )
    voucher = build_voucher(sales, cafe)
    assert by_account(voucher) == {
        ("3000", "3"): -9940,
        ("2910", None): -1000,
        ("1900", None): 10900,
        ("7798", None): 40,
    }


def test_unmapped_key_and_payment_stop_the_day_naming_them(cafe) -> None:
    from kassebro.vouchers import build_voucher

    sales = day([line("1", "MYSTERY", 1000, 2500)], [("1", "BITCOIN", "", 1000)])
    with pytest.raises(ValidationFailed) as err:
        build_voucher(sales, cafe)
    text = str(err.value)
    assert "cafe_solsiden" in text and "2026-11-10" in text
    assert "MYSTERY" in text and "vare MYSTERY" in text and "BITCOIN" in text


def test_rounding_above_the_maximum_is_held_back(cafe) -> None:
    from kassebro.vouchers import build_voucher

    sales = day([line("1", "KAFFE", 10000, 2500)], [("1", "CASH", "12001", 20000)], rounding={"1": 10000})
    with pytest.raises(ValidationFailed, match="rounding"):
        build_voucher(sales, cafe)


def test_empty_day_gives_an_empty_voucher(cafe) -> None:
    from kassebro.vouchers import build_voucher

    empty = SalesDay(
        "cafe_solsiden",
        DAY,
        *(empty_frame(n) for n in ("lines", "receipts", "payments", "z_vat", "z_payments")),
    )
    voucher = build_voucher(empty, cafe)
    assert voucher.lines == ()


def test_building_twice_gives_the_same_voucher(cafe) -> None:
    from kassebro.vouchers import build_voucher

    sales = day([line("1", "KAFFE", 4500, 2500)], [("1", "CARD", "12002", 4500)])
    assert build_voucher(sales, cafe).digest() == build_voucher(sales, cafe).digest()


def test_voucher_refuses_to_be_unbalanced() -> None:
    with pytest.raises(ValueError, match="does not balance"):
        Voucher("v", DAY, "ref", "x", (VoucherLine("1900", 100), VoucherLine("3000", -99, "3")))


def test_voucher_json_round_trip() -> None:
    v = Voucher("v", DAY, "ref", "x", (VoucherLine("1900", 100), VoucherLine("3000", -100, "3", department="1")))
    assert Voucher.from_json(v.to_json()) == v
