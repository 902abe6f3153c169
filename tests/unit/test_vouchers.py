"""The voucher builder: gross per (account, VAT code), alternative accounts, tips, payments, rounding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kassebro.booking.voucher import Voucher, VoucherLine
from kassebro.config import load_vendor
from kassebro.core.errors import ValidationFailed
from kassebro.core.frames import SalesDay, conform, empty_frame

DAY = dt.date(2026, 11, 10)
TS = pd.Timestamp("2026-11-10T10:00:00Z")


def line(trans: str, group: str, gross: int, rate: int, kind: str = "sale", code: str = "") -> dict:
    std = {2500: "3", 1500: "31", 1200: "33", 0: "6"}[rate]
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
    lines: list[dict],
    payments: list[tuple[str, str, str, int]],
    rounding: dict[str, int] | None = None,
    heads: dict[str, dict] | None = None,
) -> SalesDay:
    """`heads` overrides receipt fields per trans id (bill_discount, trans_code, customer_id)."""
    trans = sorted({r["trans_id"] for r in lines} | {p[0] for p in payments} | set(heads or {}))
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
            "bill_discount": 0,
            "customer_id": "",
        }
        | (heads or {}).get(t, {})
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
        conform("lines", pd.DataFrame(lines)) if lines else empty_frame("lines"),
        conform("receipts", pd.DataFrame(receipts)),
        conform("payments", pd.DataFrame(pays)) if pays else empty_frame("payments"),
        empty_frame("z_vat"),
        empty_frame("z_payments"),
    )


@pytest.fixture
def cafe(project_dir: Path):
    return load_vendor("cafe_solsiden", project_dir / "config")


def by_account(voucher: Voucher) -> dict[tuple[str, str | None], int]:
    return {(ln.account, ln.vat_code): ln.amount for ln in voucher.lines}


def test_eat_in_and_take_away_coffee_split_by_vat_rate(cafe) -> None:
    from kassebro.booking.rules import build_voucher

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
    from kassebro.booking.rules import build_voucher

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
    from kassebro.booking.rules import build_voucher

    sales = day([line("1", "MYSTERY", 1000, 2500)], [("1", "BITCOIN", "", 1000)])
    with pytest.raises(ValidationFailed) as err:
        build_voucher(sales, cafe)
    text = str(err.value)
    assert "cafe_solsiden" in text and "2026-11-10" in text
    assert "MYSTERY" in text and "vare MYSTERY" in text and "BITCOIN" in text


def test_rounding_above_the_maximum_is_held_back(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day([line("1", "KAFFE", 10000, 2500)], [("1", "CASH", "12001", 20000)], rounding={"1": 10000})
    with pytest.raises(ValidationFailed, match="rounding"):
        build_voucher(sales, cafe)


def test_empty_day_gives_an_empty_voucher(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    empty = SalesDay(
        "cafe_solsiden",
        DAY,
        *(empty_frame(n) for n in ("lines", "receipts", "payments", "z_vat", "z_payments")),
    )
    voucher = build_voucher(empty, cafe)
    assert voucher.lines == ()


def test_building_twice_gives_the_same_voucher(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day([line("1", "KAFFE", 4500, 2500)], [("1", "CARD", "12002", 4500)])
    assert build_voucher(sales, cafe).digest() == build_voucher(sales, cafe).digest()


def test_voucher_refuses_to_be_unbalanced() -> None:
    with pytest.raises(ValueError, match="does not balance"):
        Voucher("v", DAY, "ref", "x", (VoucherLine("1900", 100), VoucherLine("3000", -99, "3")))


def test_voucher_json_round_trip() -> None:
    v = Voucher("v", DAY, "ref", "x", (VoucherLine("1900", 100), VoucherLine("3000", -100, "3", department="1")))
    assert Voucher.from_json(v.to_json()) == v


# ------------------------------------------------------------------------------------------------
# Issue 3: bill discounts, returns, dimensions, credit sales, cash differences, VAT difference


def with_mapping(vendor, **changes):
    return vendor.model_copy(update={"mapping": vendor.mapping.model_copy(update=changes)})


def test_bill_discount_is_spread_over_the_rates_by_largest_remainder(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    # 100.00 at 25 % and 50.00 at 15 %, 10.00 off the bill: 6.666.. and 3.333.. -> 6.67 and 3.33
    sales = day(
        [line("1", "KAFFE", 10000, 2500), line("1", "KAFFE", 5000, 1500)],
        [("1", "CARD", "12002", 14000)],
        heads={"1": {"bill_discount": 1000}},
    )
    voucher = build_voucher(sales, cafe)
    assert by_account(voucher) == {("3000", "3"): -9333, ("3030", "31"): -4667, ("1940", None): 14000}
    # POS VAT 2000 + 652, less the discount's VAT (133 + 43), against VAT of 93.33 and 46.67
    assert voucher.vat_difference == (2000 - 133 - vat(9333, 2500)) + (652 - 43 - vat(4667, 1500))


def vat(gross: int, rate: int) -> int:
    from kassebro.core.money import vat_from_gross

    return vat_from_gross(gross, rate)


def test_a_return_receipts_bill_discount_goes_on_its_return_lines(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [line("1", "KAFFE", 10000, 2500), line("2", "KAFFE", -4000, 2500, kind="return")],
        [("1", "CARD", "12002", 10000), ("2", "CARD", "12002", -3600)],
        heads={"2": {"bill_discount": -400, "trans_code": "11006"}},
    )
    voucher = build_voucher(sales, cafe)
    lines = {ln.description: ln.amount for ln in voucher.lines}
    assert lines == {"Salg 25 % mva (3000)": -10000, "Retur 25 % mva (3000)": 3600, "Betaling CARD": 6400}


def test_returns_are_own_lines_unless_the_mapping_nets_them(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [line("1", "KAFFE", 4500, 2500), line("2", "KAFFE", -2000, 2500, kind="return")],
        [("1", "CARD", "12002", 4500), ("2", "CARD", "12002", -2000)],
    )
    apart = build_voucher(sales, cafe)
    assert [(ln.account, ln.amount, ln.description) for ln in apart.lines if ln.vat_code] == [
        ("3000", -4500, "Salg 25 % mva (3000)"),
        ("3000", 2000, "Retur 25 % mva (3000)"),
    ]
    netted = build_voucher(sales, with_mapping(cafe, net_returns=True))
    assert [(ln.account, ln.amount) for ln in netted.lines if ln.vat_code] == [("3000", -2500)]


def test_line_projects_and_cost_centres_are_used_only_when_the_mapping_says_so(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    tagged = line("1", "KAFFE", 4500, 2500) | {"project": "P7", "cost_centre": "9"}
    sales = day([tagged, line("1", "KAFFE", 1000, 2500)], [("1", "CARD", "12002", 5500)])
    plain = build_voucher(sales, cafe)
    assert {(ln.department, ln.project) for ln in plain.lines} == {("1", None)}
    own = build_voucher(sales, with_mapping(cafe, use_line_projects=True))
    revenue = {(ln.department, ln.project): ln.amount for ln in own.lines if ln.vat_code}
    assert revenue == {("9", "P7"): -4500, ("1", None): -1000}


def test_gift_cards_and_credit_notes_redeemed_are_payments_to_their_liabilities(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [line("1", "KAFFE", 10000, 2500)],
        [("1", "GAVEKORT", "12005", 6000), ("1", "TILGODE", "12010", 3000), ("1", "CASH", "12001", 1000)],
    )
    assert by_account(build_voucher(sales, cafe)) == {
        ("3000", "3"): -10000,
        ("2900", None): 6000,
        ("2901", None): 3000,
        ("1900", None): 1000,
    }


def test_gift_cards_sold_are_a_liability_without_vat(project_dir: Path) -> None:
    from kassebro.booking.rules import build_voucher

    shop = load_vendor("butikk_fjord", project_dir / "config")
    sales = day([line("1", "GAVEKORT", 50000, 0)], [("1", "CARD", "12002", 50000)])
    voucher = build_voucher(sales, shop)
    assert [(ln.account, ln.amount, ln.vat_code, ln.description) for ln in voucher.lines] == [
        ("1940", 50000, None, "Betaling CARD"),
        ("2900", -50000, None, "Salg Gavekort solgt (2900)"),
    ]


def test_a_credit_sale_without_payment_goes_to_the_receivable_per_customer(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [line("1", "KAFFE", 20000, 2500), line("2", "KAFFE", 8000, 2500)],
        [("2", "CARD", "12002", 3000)],  # receipt 2: 30.00 paid down, 50.00 on account
        heads={
            "1": {"trans_code": "11002", "customer_id": "K100"},
            "2": {"trans_code": "11002", "customer_id": "K200"},
        },
    )
    voucher = build_voucher(sales, cafe)
    assert [(ln.account, ln.amount, ln.description) for ln in voucher.lines if ln.account == "1570"] == [
        ("1570", 20000, "Kredittsalg kunde K100"),
        ("1570", 5000, "Kredittsalg kunde K200"),
    ]


def test_a_credit_sale_without_a_customer_and_an_unbalanced_receipt_stop_the_day(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [line("1", "KAFFE", 20000, 2500), line("2", "KAFFE", 1000, 2500)],
        [("2", "CARD", "12002", 900)],
        heads={"1": {"trans_code": "11002"}},
    )
    with pytest.raises(ValidationFailed) as err:
        build_voucher(sales, cafe)
    rules = {issue.rule: issue.message for issue in err.value.issues}
    assert "receipt 1 on register R1 (200.00 unpaid)" in rules["credit_sale_customer"]
    assert "receipt 2 on register R1" in rules["receipt_balances"] and "difference -1.00" in rules["receipt_balances"]


def test_a_cash_count_books_the_difference_and_is_held_back_above_the_maximum(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [line("1", "KAFFE", 4500, 2500)],
        [("1", "CASH", "12001", 4500), ("9", "CASH", "12001", -2000)],  # counted 20.00 less than expected
        heads={"9": {"trans_code": "11008", "trans_type": "CASHDIFF"}},
    )
    voucher = build_voucher(sales, cafe)
    assert by_account(voucher) == {("3000", "3"): -4500, ("1900", None): 2500, ("7799", None): 2000}
    with pytest.raises(
        ValidationFailed, match=r"cash_difference_limit.*maximum 10\.00: receipt 9 on register R1: -20\.00"
    ):
        build_voucher(sales, with_mapping(cafe, max_cash_difference_ore=1000))


def test_limits_grow_with_the_day_but_each_receipt_and_count_is_held_to_its_own(cafe) -> None:
    """Rounding: at most 0.50 a receipt, and the day that times the receipts rounded (never less than
    the floor, 50.00). A right day of many cash receipts passes; one receipt rounding 0.60 does not."""
    from kassebro.booking.rules import build_voucher

    count = 300  # 300 cash receipts of 0.60 over whole kroner, each rounded down: -0.40 each, -120.00 in all
    lines = [line(str(n), "KAFFE", 4460, 2500) for n in range(count)]
    pays = [(str(n), "CASH", "12001", 4500) for n in range(count)]
    heads = {str(n): {"rounding": 40} for n in range(count)}
    voucher = build_voucher(day(lines, pays, heads=heads), cafe)
    assert by_account(voucher)[("7798", None)] == -40 * count  # 120.00: above the 50.00 floor, within 300 x 0.50
    heads["7"] = {"rounding": 60}
    pays[7] = ("7", "CASH", "12001", 4520)
    with pytest.raises(ValidationFailed, match=r"rounding_limit.*1 receipt\(s\) round by more than 0.50: receipt 7"):
        build_voucher(day(lines, pays, heads=heads), cafe)


def test_vat_difference_above_the_tolerance_stops_the_day_naming_each_code(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    wrong = line("1", "KAFFE", 10000, 2500) | {"vat": 2500, "net": 7500}  # POS says 25.00, gross holds 20.00
    sales = day([wrong, line("1", "KAFFE", 3900, 1500)], [("1", "CARD", "12002", 13900)])
    with pytest.raises(ValidationFailed) as err:
        build_voucher(sales, cafe)
    (issue,) = err.value.issues
    assert issue.rule == "vat_difference"
    assert "code(s) 3:" in issue.message and "POS 25.00, recomputed from gross 20.00, difference 5.00" in issue.message
    assert "VAT code 31: POS 5.09, recomputed from gross 5.09, difference 0.00" in issue.message
    assert build_voucher(sales, with_mapping(cafe, vat_tolerance_ore=500)).vat_difference == 500


def test_zero_lines_are_dropped_and_lines_sorted_by_account(cafe) -> None:
    from kassebro.booking.rules import build_voucher

    sales = day(
        [
            line("1", "KAFFE", 4500, 2500),
            line("2", "KAFFE", 3900, 1500),
            line("3", "KAFFE", -3900, 1500, kind="return"),
        ],
        [("1", "VIPPS", "12011", 4500), ("2", "CARD", "12002", 3900), ("3", "CARD", "12002", -3900)],
    )
    voucher = build_voucher(sales, with_mapping(cafe, net_returns=True))
    assert [ln.account for ln in voucher.lines] == ["1945", "3000"]
    assert all(ln.amount for ln in voucher.lines)


def test_fiken_needs_every_payment_account_to_be_1901(cafe) -> None:
    assert cafe.mapping.check_for_system("tripletex") == []
    problems = cafe.mapping.check_for_system("fiken")
    assert any("'12001' is mapped to 1900" in p for p in problems)
    fiken = with_mapping(cafe, payment_types={"12001": "1901", "12002": "1901:10001"})
    assert fiken.mapping.check_for_system("fiken") == []


def _code_list(project_dir: Path, number: str) -> list[str]:
    folder = project_dir / "include" / "kassebro" / "data" / "saft" / "code-lists"
    (path,) = folder.glob(f"*PredefinedBasicID-{number}.csv")
    rows = path.read_text(encoding="latin-1").splitlines()[1:]
    return [row.split(";")[0] for row in rows if row.strip()]


def test_the_default_ledger_maps_every_predefined_code_to_a_sandbox_account(project_dir: Path) -> None:
    from kassebro.config import LedgerMap, _read_yaml
    from kassebro.sandbox.tripletex import CHART

    default = LedgerMap.model_validate(_read_yaml(project_dir / "config" / "ledgers" / "default.yaml"))
    chart = {str(a.number): a for a in CHART}
    groups, payments = _code_list(project_dir, "04"), _code_list(project_dir, "12")
    assert len(groups) == 22 and len(payments) == 12
    for code in groups:
        key = default.accounting_keys[code]
        for rate, account in [(None, key.account), *key.alternative_accounts.items(), *key.vat_code_accounts.items()]:
            assert account in chart, (code, rate, account)
            assert account.startswith("3"), (code, account)  # revenue
    for code in payments:
        assert default.payment_types[code] in chart, code
    special = [default.tips_account, default.rounding_account, default.receivable_account]
    assert all(a in chart for a in [*special, default.cash_difference_account])


def test_zero_rate_lines_outside_the_vat_act_go_to_their_own_account(project_dir: Path) -> None:
    from kassebro.booking.rules import build_voucher

    cafe = load_vendor("cafe_solsiden", project_dir / "config")
    outside = line("1", "X", 20000, 0, code="04999")  # standard code 6: outside the VAT Act -> 3200
    exempt = line("1", "X", 1000, 0, code="04999") | {"std_vat_code": "5", "vat_code": "5"}  # exempt -> 3100
    voucher = build_voucher(day([outside, exempt], [("1", "CARD", "12002", 21000)]), cafe)
    assert by_account(voucher) == {("3200", "6"): -20000, ("3100", "5"): -1000, ("1940", None): 21000}
