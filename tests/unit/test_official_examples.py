"""Proof on Skatteetaten's two official examples, read each as it is written (tests/data/saft).

Every expected figure below is a literal summed by hand from the XML, so a reader bug cannot hide
behind a figure the code computed itself.

2016 (`..._20161125210734.xml`): one register 11.222-33.44.567, business day 2016-01-01, three cash
sales nr 1000-1002, one Z report (reportID 1) whose cashSaleAmnt are gross:
  1000 (DEBCARD 86.40):  32.80 (group 100, vatCode 2 = std 31, 15 %), 25.80 (100, 2), 27.80 (100, 2)
  1001 (CASH 295.40):   116.00 (200, vatCode 3 = std 3, 25 %), 179.40 (300, 3)
  1002 (DEBCARD 148.80): 116.00 (200, 3), 32.80 (100, 2)
  Z: cashSaleAmnt 119.20 (code 2) + 411.40 (code 3) = 530.60 = totalCashSaleAmnt.

2021 (`..._20210330104000.xml`): the same register, business day 2020-01-01, nr 1000-1003, the Z
report's cashSaleAmnt net of VAT:
  1000 (DEBCARD 86.40):  32.80 + 25.80 + 27.80 (group 100, 15 %)
  1001 (CASH 295.00, rounding -0.40): 116.00 (200, 25 %) + 179.40 (300, 25 %) = 295.40
  1002 (DEBCARD 148.80): 116.00 (200, 25 %) + 32.80 (100, 15 %)
  1003 (return, DEBCARD -16.40): -16.40 (100, 15 %)
  Z: cashSaleAmnt 89.38 + vatAmnt 13.42 (code 2) + 329.12 + 82.28 (code 3) = 514.20 = totalCashSaleAmnt.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kassebro.booking.verdict import DayVerdict, evaluate_day
from kassebro.config import load_vendor
from kassebro.sources.saft import read_day
from tests.official import DAY_2016, DAY_2021, EXAMPLE_2016, EXAMPLE_2021, REGISTER, corrected_2016, write_config


def by_key(frame: pd.DataFrame, key: str, value: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby(key)[value].sum().items()}


def verdict(tmp_path: Path, source: Path, day) -> DayVerdict:
    config = write_config(tmp_path, {"selskapet": source})
    return evaluate_day(load_vendor("selskapet", config), day)


def failed(v: DayVerdict) -> set[str]:
    return {check.rule for check in v.report.failed}


# --- 2016: cashSaleAmnt gross ------------------------------------------------------------------


def test_2016_totals_per_vat_code_equal_the_z_report() -> None:
    day = read_day(EXAMPLE_2016, "example", DAY_2016)
    sales = day.lines[day.lines["line_type"].isin(["sale", "return"])]
    # Gross per standard VAT code, summed by hand:
    #   31 (15 %): 32.80 + 25.80 + 27.80 (nr 1000) + 32.80 (nr 1002)  = 119.20
    #    3 (25 %): 116.00 + 179.40 (nr 1001) + 116.00 (nr 1002)       = 411.40
    assert by_key(sales, "std_vat_code", "gross") == {"31": 11920, "3": 41140}
    # reportCashSaleVat: vatCode 0 and 1 with 0.00, vatCode 2 (15 %) 119.20, vatCode 3 (25 %) 411.40,
    # read as written (gross: they sum to totalCashSaleAmnt 530.60); VAT 0.00, 0.00, 17.88, 102.85.
    assert by_key(day.z_vat, "std_vat_code", "gross") == {"0": 0, "33": 0, "31": 11920, "3": 41140}
    assert by_key(day.z_vat, "std_vat_code", "amount") == {"0": 0, "33": 0, "31": 11920, "3": 41140}
    assert by_key(day.z_vat, "std_vat_code", "vat") == {"0": 0, "33": 0, "31": 1788, "3": 10285}
    (report,) = day.z_reports.itertuples()
    assert (report.register_id, report.report_id, report.company_ident) == (REGISTER, "1", "999999999")
    assert (report.total_sales, report.amounts, report.return_amount) == (53060, "gross", 0)
    assert report.amounts_basis == "cashSaleAmnt sum to totalCashSaleAmnt 530.60"
    assert pd.isna(report.tip_amount)  # the example has no reportTip
    # The lines' own VAT adds up to the Z report's: 4.92 + 3.87 + 4.17 + 4.92 = 17.88 (15 %);
    # 29.00 + 44.85 + 29.00 = 102.85 (25 %).
    assert by_key(sales, "std_vat_code", "vat") == {"31": 1788, "3": 10285}
    assert set(day.receipts["bill_discount"]) == {0} and set(day.lines["discount"]) == {0}
    assert int(sales["gross"].sum()) == 53060 == int(day.z_vat["gross"].sum())


def test_2016_payments_groups_company_and_numbers() -> None:
    day = read_day(EXAMPLE_2016, "example", DAY_2016)
    # Payments: CASH 295.40 (nr 1001); DEBCARD 86.40 (nr 1000) + 148.80 (nr 1002) = 235.20 = reportPayments.
    assert by_key(day.payments, "payment_type", "amount") == {"CASH": 29540, "DEBCARD": 23520}
    assert by_key(day.z_payments, "payment_type", "amount") == {"CASH": 29540, "DEBCARD": 23520}
    assert by_key(day.payments, "payment_code", "amount") == {"12001": 29540, "12002": 23520}
    # Article groups: 100: 32.80 + 25.80 + 27.80 + 32.80 = 119.20; 200: 116.00 + 116.00 = 232.00; 300: 179.40.
    assert by_key(day.lines, "art_group_id", "gross") == {"100": 11920, "200": 23200, "300": 17940}
    assert by_key(day.z_art_groups, "art_group_id", "amount") == {"100": 11920, "200": 23200, "300": 17940}
    assert sorted(day.receipts["nr"]) == [1000, 1001, 1002] and day.skipped.empty
    assert list(day.numbers.itertuples(index=False)) == [(REGISTER, "run", 1000, 1002, 1)]
    assert list(day.headers[["company_ident", "currency"]].itertuples(index=False)) == [("999999999", "NOK")]
    # It writes lineType CASHSAL: declared, but as a transaction type (basic 11), not a line type (05).
    assert set(day.lines["line_type_id"]) == {"CASHSAL"}
    assert ("11", "CASHSAL", "11001") in set(day.codes.itertuples(index=False, name=None))


def test_2016_is_held_back_for_exactly_its_own_two_placeholders(tmp_path: Path) -> None:
    """Read as written, the day holds two defects of the file itself, and nothing else fails:
    every receipt carries <roundingAmnt>1234.560</roundingAmnt> (lines already equal payments: each
    off by exactly 1234.56, 3,703.68 in all), and every line's VAT is rate x gross (32.80 at 15 %
    holds 4.28, the file says 4.92), so its POS VAT is 22.90 above what its gross holds."""
    v = verdict(tmp_path, EXAMPLE_2016, DAY_2016)
    assert v.held_back
    assert failed(v) == {"receipt_balances", "rounding_limit", "line_vat_matches_rate", "vat_difference"}
    checks = {check.rule: check for check in v.report.checks}
    assert {row["trans_id"]: row["difference"] for row in checks["receipt_balances"].offending} == {
        "1000": 123456,
        "1001": 123456,
        "1002": 123456,
    }
    assert "cash rounding 3703.68 exceeds the maximum 50.00" in checks["rounding_limit"].message
    vat = checks["line_vat_matches_rate"]
    assert vat.offending_count == 7
    first = vat.offending[0]
    assert (first["trans_id"], first["gross"], first["vat"], first["expected_vat"]) == ("1000", 3280, 492, 428)
    # 17.88 POS VAT at 15 % against 15.55 recomputed from 119.20; 102.85 at 25 % against 82.28 from 411.40.
    assert "VAT code 31: POS 17.88, recomputed from gross 15.55, difference 2.33" in checks["vat_difference"].message
    assert "VAT code 3: POS 102.85, recomputed from gross 82.28, difference 20.57" in checks["vat_difference"].message
    # Its Z report is read gross and every total it gives matches; it is the company's own file.
    for rule in ("z_report_amounts", "z_grand_total", "z_vat_totals", "z_vat_amounts", "z_payment_totals"):
        assert checks[rule].success, rule
    for rule in ("z_art_group_totals", "z_return_total", "file_belongs_to_vendor", "codes_declared", "receipt_amount"):
        assert checks[rule].success, rule
    assert checks["z_report_amounts"].details == [
        {
            "register_id": REGISTER,
            "report_id": "1",
            "amounts": "gross",
            "basis": "cashSaleAmnt sum to totalCashSaleAmnt 530.60",
        }
    ]


def test_2016_with_its_placeholders_corrected_books_to_its_z_report(tmp_path: Path) -> None:
    """Voucher totals per VAT code and payment type equal the example's Z report, default settings.

    - revenue, std code 31 (15 %, article group 100 "Food" -> 04006 -> 3030): 119.20
    - revenue, std code 3 (25 %, groups 200 tobacco and 300 beer -> 3000): 411.40
    - payments: CASH (12001 -> 1900) 295.40; DEBCARD (12002 -> 1940) 86.40 + 148.80 = 235.20
    """
    fixed = corrected_2016(tmp_path / "fixed" / EXAMPLE_2016.name)
    v = verdict(tmp_path, fixed, DAY_2016)
    assert not v.held_back, v.issues()
    assert v.voucher is not None
    totals = {(line.account, line.vat_code): line.amount for line in v.voucher.lines}
    assert totals == {("3030", "31"): -11920, ("3000", "3"): -41140, ("1900", None): 29540, ("1940", None): 23520}


# --- 2021: cashSaleAmnt net of VAT -------------------------------------------------------------


def test_2021_z_report_is_read_net_from_its_own_totals() -> None:
    day = read_day(EXAMPLE_2021, "example", DAY_2021)
    # cashSaleAmnt as written: 0.00, 0.00, 89.38 (code 2), 329.12 (code 3); + vatAmnt 13.42 and 82.28.
    assert by_key(day.z_vat, "vat_code", "amount") == {"0": 0, "1": 0, "2": 8938, "3": 32912}
    assert by_key(day.z_vat, "vat_code", "vat") == {"0": 0, "1": 0, "2": 1342, "3": 8228}
    # gross: 89.38 + 13.42 = 102.80 = 32.80 + 25.80 + 27.80 + 32.80 - 16.40; 329.12 + 82.28 = 411.40.
    assert by_key(day.z_vat, "vat_code", "gross") == {"0": 0, "1": 0, "2": 10280, "3": 41140}
    (report,) = day.z_reports.itertuples()
    assert (report.total_sales, report.amounts, report.return_amount) == (51420, "net", 1640)
    assert report.amounts_basis == "cashSaleAmnt + vatAmnt sum to totalCashSaleAmnt 514.20"
    sales = day.lines[day.lines["line_type"].isin(["sale", "return"])]
    assert by_key(sales, "std_vat_code", "gross") == {"31": 10280, "3": 41140}
    # the return: its own transaction, amntTp D with -16.40 written signed; a return line
    returned = day.lines[day.lines["line_type"] == "return"]
    assert list(returned["gross"]) == [-1640] and list(returned["line_type_id"]) == ["RET"]
    assert by_key(day.receipts, "trans_id", "rounding") == {"1000": 0, "1001": -40, "1002": 0, "1003": 0}
    assert by_key(day.payments, "payment_type", "amount") == {"CASH": 29500, "DEBCARD": 21880}
    assert by_key(day.z_payments, "payment_type", "amount") == {"CASH": 29500, "DEBCARD": 21880}
    assert by_key(day.z_art_groups, "art_group_id", "amount") == {"100": 10280, "200": 23200, "300": 17940}


def test_2021_books_with_default_settings(tmp_path: Path) -> None:
    """The day the issue found held back ("sales lines 411.40 != Z report 329.12") now books:
    - 3030 (food, 15 %): sales -119.20 and a return line +16.40
    - 3000 (25 %): -411.40
    - 1900 cash 295.00, 1940 debit card 86.40 + 148.80 - 16.40 = 218.80, 7798 rounding +0.40
    """
    v = verdict(tmp_path, EXAMPLE_2021, DAY_2021)
    assert not v.held_back, v.issues()
    assert not v.report.not_checked
    assert v.voucher is not None
    lines = sorted((line.account, line.vat_code, line.amount) for line in v.voucher.lines)
    assert lines == [
        ("1900", None, 29500),
        ("1940", None, 21880),
        ("3000", "3", -41140),
        ("3030", "31", -11920),
        ("3030", "31", 1640),
        ("7798", None, 40),
    ]
    amounts = {check.rule: check for check in v.report.checks}["z_report_amounts"]
    assert amounts.success and "net (cashSaleAmnt + vatAmnt sum to totalCashSaleAmnt 514.20)" in amounts.message


def test_a_pinned_setting_wins_and_a_wrong_pin_is_caught_by_the_totals(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"selskapet": EXAMPLE_2021})
    path = config / "vendors" / "selskapet.yaml"
    path.write_text(path.read_text().replace("kind: saft,", "kind: saft, z_report_amounts: gross,"))
    v = evaluate_day(load_vendor("selskapet", config), DAY_2021)
    checks = {check.rule: check for check in v.report.checks}
    assert "pinned by the vendor setting z_report_amounts: gross" in checks["z_report_amounts"].message
    assert failed(v) == {"z_vat_totals"}  # the grand total is gross either way: it still matches
    assert (
        "VAT code 3 (25 %): sales lines 411.40 != Z report 329.12 (difference 82.28)" in checks["z_vat_totals"].message
    )
