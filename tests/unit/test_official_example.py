"""Proof on Skatteetaten's official example (2016): the frames of its day equal its Z report.

Every expected figure below is a literal summed by hand from the XML
(`ExampleFile SAF-T Cash Register_999999999_20161125210734.xml`, one register 11.222-33.44.567,
business day 2016-01-01, three cash sales nr 1000-1002 and one Z report, reportID 1), so a
reader bug cannot hide behind a figure the reader computed itself. The voucher-level
assertions are added by the lead.

The example's transactions (lineAmntIn per ctLine, vatCode -> standardVatCode via vatCodeDetails):
  1000 (DEBCARD 86.40):  32.80 (art group 100, vatCode 2 = std 31, 15 %), 25.80 (100, 2), 27.80 (100, 2)
  1001 (CASH 295.40):   116.00 (200, vatCode 3 = std 3, 25 %), 179.40 (300, 3)
  1002 (DEBCARD 148.80): 116.00 (200, 3), 32.80 (100, 2)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kassebro.sources.saft import read_day
from kassebro.validation import ValidationReport, validate_day

SHARED = Path(__file__).resolve().parents[3] / "shared"
EXAMPLE = SHARED / "data" / "saft" / "ExampleFile SAF-T Cash Register_999999999_20161125210734.xml"
DAY = dt.date(2016, 1, 1)

pytestmark = pytest.mark.skipif(not EXAMPLE.is_file(), reason="../shared (official example) is missing")


def by_key(frame: pd.DataFrame, key: str, value: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby(key)[value].sum().items()}


@pytest.fixture(scope="module")
def report() -> ValidationReport:
    return validate_day(read_day(EXAMPLE, "example", DAY))


def test_totals_per_vat_code_equal_the_z_report() -> None:
    day = read_day(EXAMPLE, "example", DAY)
    sales = day.lines[day.lines["line_type"].isin(["sale", "return"])]
    # Gross per standard VAT code, summed by hand:
    #   31 (15 %): 32.80 + 25.80 + 27.80 (nr 1000) + 32.80 (nr 1002)  = 119.20
    #    3 (25 %): 116.00 + 179.40 (nr 1001) + 116.00 (nr 1002)       = 411.40
    assert by_key(sales, "std_vat_code", "gross") == {"31": 11920, "3": 41140}
    # The Z report's reportCashSaleVat rows: vatCode 0 and 1 with 0.00, vatCode 2 (15 %) 119.20,
    # vatCode 3 (25 %) 411.40; VAT 0.00, 0.00, 17.88, 102.85.
    assert by_key(day.z_vat, "std_vat_code", "gross") == {"0": 0, "33": 0, "31": 11920, "3": 41140}
    assert by_key(day.z_vat, "std_vat_code", "vat") == {"0": 0, "33": 0, "31": 1788, "3": 10285}
    # The lines' own VAT adds up to the Z report's: 4.92 + 3.87 + 4.17 + 4.92 = 17.88 (15 %);
    # 29.00 + 44.85 + 29.00 = 102.85 (25 %).
    assert by_key(sales, "std_vat_code", "vat") == {"31": 1788, "3": 10285}
    # No discounts in the example: gross after bill discounts is the lines' gross.
    assert set(day.receipts["bill_discount"]) == {0} and set(day.lines["discount"]) == {0}
    # Total: 119.20 + 411.40 = 530.60 = reportTotalCashSales/totalCashSaleAmnt.
    assert int(sales["gross"].sum()) == 53060 == int(day.z_vat["gross"].sum())


def test_totals_per_payment_type_and_article_group_equal_the_z_report() -> None:
    day = read_day(EXAMPLE, "example", DAY)
    # Payments: CASH 295.40 (nr 1001); DEBCARD 86.40 (nr 1000) + 148.80 (nr 1002) = 235.20.
    assert by_key(day.payments, "payment_type", "amount") == {"CASH": 29540, "DEBCARD": 23520}
    # reportPayments: CASH 295.40, DEBCARD 235.20.
    assert by_key(day.z_payments, "payment_type", "amount") == {"CASH": 29540, "DEBCARD": 23520}
    assert by_key(day.payments, "payment_code", "amount") == {"12001": 29540, "12002": 23520}
    # Article groups: 100: 32.80 + 25.80 + 27.80 + 32.80 = 119.20; 200: 116.00 + 116.00 = 232.00;
    # 300: 179.40. reportArtGroups says the same.
    assert by_key(day.lines, "art_group_id", "gross") == {"100": 11920, "200": 23200, "300": 17940}
    assert by_key(day.z_art_groups, "art_group_id", "amount") == {"100": 11920, "200": 23200, "300": 17940}
    assert set(day.z_art_groups["report_id"]) == {"1"}
    # Transaction numbers 1000, 1001, 1002: no gap, nothing void or training.
    assert sorted(day.receipts["nr"]) == [1000, 1001, 1002] and day.skipped.empty
    assert set(day.receipts["trans_code"]) == {"11001"} and set(day.receipts["customer_id"]) == {""}


def test_validation_fails_exactly_the_two_rules_the_example_breaks(report: ValidationReport) -> None:
    failed = {check.rule: check for check in report.failed}
    assert set(failed) == {"receipt_balances", "line_vat_matches_rate"}
    # 1. Every transaction carries the placeholder <roundingAmnt>1234.560</roundingAmnt>: lines =
    #    payments already (86.40, 295.40, 148.80), so each is off by exactly 1234.56.
    balances = failed["receipt_balances"]
    assert balances.offending_count == 3
    assert {row["trans_id"]: row["difference"] for row in balances.offending} == {
        "1000": 123456,
        "1001": 123456,
        "1002": 123456,
    }
    # 2. Its VAT is rate x gross, not the VAT a gross amount holds: 32.80 at 15 % holds
    #    32.80 * 15 / 115 = 4.28, the file says 32.80 * 0.15 = 4.92. All 7 lines are off.
    vat = failed["line_vat_matches_rate"]
    assert vat.offending_count == 7
    first = vat.offending[0]
    assert (first["trans_id"], first["gross"], first["vat"], first["expected_vat"]) == ("1000", 3280, 492, 428)
    # 116.00 at 25 %: holds 23.20, the file says 29.00.
    assert {(r["gross"], r["vat"], r["expected_vat"]) for r in vat.offending} >= {(11600, 2900, 2320)}
    # The Z totals, numbering, business day window and currency pass.
    passed = {check.rule for check in report.checks if check.success}
    assert passed == {
        "unique_transactions",
        "no_gaps_in_numbering",
        "z_report_present",
        "z_vat_totals",
        "z_payment_totals",
        "sales_inside_business_day",
        "currency_known",
    }


def test_without_the_placeholder_rounding_only_the_vat_rule_fails(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8-sig").replace("1234.560", "0.00")
    path = tmp_path / EXAMPLE.name
    path.write_text(text, encoding="utf-8")
    report = validate_day(read_day(path, "example", DAY))
    assert {check.rule for check in report.failed} == {"line_vat_matches_rate"}


def test_official_example_books_to_its_z_report(shared_dir) -> None:
    """Voucher totals per VAT code and payment type equal the example's Z report.

    Expected figures summed by hand from the XML (not by the code):
    - revenue, std code 31 (15 %, article group 100 "Food" -> 04006 -> 3030):
      32.80 + 25.80 + 27.80 (trans 1000) + 32.80 (trans 1002) = 119.20 = Z reportCashSaleVat code 2
    - revenue, std code 3 (25 %, groups 200 tobacco and 300 beer -> 3000):
      116.00 + 179.40 (trans 1001) + 116.00 (trans 1002) = 411.40 = Z reportCashSaleVat code 3
    - payments: CASH (12001 -> 1900) 295.40 (trans 1001); DEBCARD (12002 -> 1940) 86.40 + 148.80 = 235.20
    The example's rounding is a placeholder (1234.560 on every receipt) and its line VAT is rate x
    gross, so the day as written is held back; the figures are checked with the placeholder set to
    0 and the VAT tolerance lifted.
    """
    import datetime as dt

    from kassebro.config import load_vendor
    from kassebro.errors import ValidationFailed
    from kassebro.sources.saft import read_day
    from kassebro.vouchers import build_voucher

    path = shared_dir / "data" / "saft" / "ExampleFile SAF-T Cash Register_999999999_20161125210734.xml"
    day = read_day(path, "example", dt.date(2016, 1, 1))
    vendor = load_vendor("cafe_solsiden", Path(__file__).resolve().parents[2] / "config")
    with pytest.raises(ValidationFailed, match="receipt_balances"):
        build_voucher(day, vendor)

    receipts = day.receipts.assign(rounding=0)
    fixed = type(day)(day.vendor_id, day.business_day, day.lines, receipts, day.payments, day.z_vat, day.z_payments)
    with pytest.raises(ValidationFailed, match="vat_difference"):
        build_voucher(fixed, vendor)  # 17.88 POS VAT at 15 % vs 15.55 recomputed from 119.20 gross
    lifted = vendor.model_copy(update={"mapping": vendor.mapping.model_copy(update={"vat_tolerance_ore": 10_000})})
    voucher = build_voucher(fixed, lifted)
    totals = {(ln.account, ln.vat_code): ln.amount for ln in voucher.lines}
    assert totals == {("3030", "31"): -11920, ("3000", "3"): -41140, ("1900", None): 29540, ("1940", None): 23520}
