"""Tests of kassebro.checks: each rule catches its own fault and only that one.

Importing great_expectations takes seconds, so a module-scoped fixture pays it once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kassebro.checks import CheckResult, DayContext, Rule, ValidationReport, validate_day
from kassebro.core.allocation import bill_discount_parts, split_over_codes
from kassebro.core.errors import ValidationFailed
from kassebro.core.frames import SalesDay, conform, empty_frame

DAY = dt.date(2024, 5, 1)
REGISTER = "11.222-33.44.567"
TS = pd.Timestamp("2024-05-01T10:00", tz="UTC")
ALL_RULES = {  # a day from frames alone (no file header, master data or number series: not SAF-T)
    "file_belongs_to_vendor",  # not checked: the source names no company
    "currency_known",
    "receipt_balances",
    "receipt_amount",
    "unique_transactions",
    "receipt_numbering",
    "line_vat_matches_rate",
    "sales_inside_business_day",
    "z_report_present",
    "z_vat_totals",
    "z_vat_amounts",
    "z_payment_totals",
}


def line(trans_id: str, gross: int, *, code: str = "3", rate: int = 2500, line_type: str = "sale") -> dict:
    return dict(
        register_id=REGISTER,
        trans_id=trans_id,
        line_id=f"{trans_id}-{gross}",
        line_type=line_type,
        art_group_id="10",
        art_group_code="04003",
        article_id="A1",
        description="coffee",
        quantity="1",
        gross=gross,
        net=gross * 10000 // (10000 + rate),
        vat=gross - gross * 10000 // (10000 + rate),
        vat_code=code,
        std_vat_code=code,
        vat_rate_bp=rate,
        timestamp=TS,
    )


def receipt(trans_id: str, nr: int, amount: int, rounding: int = 0) -> dict:
    return dict(
        register_id=REGISTER,
        trans_id=trans_id,
        nr=nr,
        trans_type="SALE",
        trans_code="11001",
        amount=amount,
        rounding=rounding,
        timestamp=TS,
    )


def payment(trans_id: str, amount: int, payment_type: str = "CARD") -> dict:
    return dict(
        register_id=REGISTER,
        trans_id=trans_id,
        payment_type=payment_type,
        payment_code={"CASH": "12001", "CARD": "12002"}[payment_type],
        amount=amount,
        currency="NOK",
        exchange_rate="1",
    )


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    return conform(name, pd.DataFrame(rows)) if rows else empty_frame(name)


def make_day(
    lines: list[dict], receipts: list[dict], payments: list[dict], z_vat: list[dict], z_payments: list[dict]
) -> SalesDay:
    return SalesDay(
        "kiosk",
        DAY,
        frame("lines", lines),
        frame("receipts", receipts),
        frame("payments", payments),
        frame("z_vat", z_vat),
        frame("z_payments", z_payments),
        source="test",
    )


def z_vat_rows(totals: dict[tuple[str, int], int], vat: dict[tuple[str, int], int] | None = None) -> list[dict]:
    return [
        dict(
            register_id=REGISTER,
            report_id="Z1",
            vat_code=code,
            std_vat_code=code,
            vat_rate_bp=rate,
            gross=gross,
            vat=(vat or {}).get((code, rate), 0),
        )
        for (code, rate), gross in totals.items()
    ]


CLEAN_VAT = {("3", 2500): 900 + 2976, ("31", 1500): 1169}  # what the clean lines' gross holds


def z_payment_rows(totals: dict[str, int]) -> list[dict]:
    codes = {"CASH": "12001", "CARD": "12002"}
    return [
        dict(register_id=REGISTER, report_id="Z1", payment_type=kind, payment_code=codes[kind], amount=amount)
        for kind, amount in totals.items()
    ]


def clean_parts() -> dict[str, list[dict]]:
    """Three receipts: coffee in (25 %), food out (15 %) paid cash with rounding, card."""
    return {
        "lines": [line("1001", 4500), line("1002", 14880), line("1003", 8960, code="31", rate=1500)],
        "receipts": [
            receipt("1001", 1, 4500),
            receipt("1002", 2, 14880),
            receipt("1003", 3, 8960, rounding=-60),
        ],
        "payments": [payment("1001", 4500), payment("1002", 14880), payment("1003", 8900, "CASH")],
        "z_vat": z_vat_rows({("3", 2500): 19380, ("31", 1500): 8960}, CLEAN_VAT),
        "z_payments": z_payment_rows({"CARD": 19380, "CASH": 8900}),
    }


def by_rule(report: ValidationReport) -> dict[str, CheckResult]:
    return {check.rule: check for check in report.checks}


def failed_rules(report: ValidationReport) -> set[str]:
    return {check.rule for check in report.failed}


@pytest.fixture(scope="module")
def clean_report() -> ValidationReport:
    """Validating the clean day first also pays the GX import once for the whole module."""
    return validate_day(make_day(**clean_parts()))


def test_clean_day_passes_every_rule(clean_report: ValidationReport) -> None:
    assert clean_report.success
    assert set(by_rule(clean_report)) == ALL_RULES
    assert all(check.success and not check.offending for check in clean_report.checks)
    assert clean_report.issues() == []
    clean_report.raise_if_failed()
    (unchecked,) = clean_report.not_checked  # said, not passed silently
    assert unchecked.rule == "file_belongs_to_vendor" and unchecked.status == "not checked"
    assert clean_report.headline.endswith("all 12 rules passed (1 not checked)")


def test_unbalanced_receipt_fails_only_receipt_balances(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["payments"][1] = payment("1002", 15000)  # paid 150.00 for 148.80
    parts["z_payments"] = z_payment_rows({"CARD": 19500, "CASH": 8900})
    report = validate_day(make_day(**parts))

    assert failed_rules(report) == {"receipt_balances"}
    check = by_rule(report)["receipt_balances"]
    assert check.offending_count == 1
    assert check.offending == [
        {
            "register_id": REGISTER,
            "trans_id": "1002",
            "lines": 14880,
            "bill_discount": 0,
            "rounding": 0,
            "cash_difference": 0,
            "payments": 15000,
            "on_account": 0,
            "difference": -120,
            "lines_kr": "148.80",
            "bill_discount_kr": "0.00",
            "rounding_kr": "0.00",
            "cash_difference_kr": "0.00",
            "payments_kr": "150.00",
            "on_account_kr": "0.00",
            "difference_kr": "-1.20",
        }
    ]
    assert (
        f"receipt 1002 on register {REGISTER} does not balance: "
        "lines 148.80 - bill discount 0.00 + rounding 0.00 != payments 150.00 (difference -1.20)"
    ) in check.message


def test_z_vat_mismatch_by_one_ore(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["z_vat"] = z_vat_rows({("3", 2500): 19381, ("31", 1500): 8960}, CLEAN_VAT)
    report = validate_day(make_day(**parts))

    assert failed_rules(report) == {"z_vat_totals"}
    check = by_rule(report)["z_vat_totals"]
    assert [
        (r["std_vat_code"], r["vat_rate_bp"], r["lines"], r["z_report"], r["difference"]) for r in check.offending
    ] == [("3", 2500, 19380, 19381, -1)]
    assert "VAT code 3 (25 %): sales lines 193.80 != Z report 193.81 (difference -0.01)" in check.message


def test_z_payment_mismatch(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["z_payments"] = z_payment_rows({"CARD": 19380, "CASH": 9000})
    report = validate_day(make_day(**parts))

    assert failed_rules(report) == {"z_payment_totals"}
    check = by_rule(report)["z_payment_totals"]
    assert [(r["payment_type"], r["payments"], r["z_report"], r["difference"]) for r in check.offending] == [
        ("CASH", 8900, 9000, -100)
    ]
    assert "payment type CASH: payments 89.00 != Z report 90.00 (difference -1.00)" in check.message


def test_duplicate_transaction(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"].append(receipt("1001", 4, 0))  # same trans_id again, nothing on it
    report = validate_day(make_day(**parts))

    assert failed_rules(report) == {"unique_transactions"}
    check = by_rule(report)["unique_transactions"]
    assert check.offending_count == 1
    assert check.offending[0]["trans_id"] == "1001"
    assert check.offending[0]["count"] == 2
    assert f"transaction 1001 on register {REGISTER} appears 2 times (nr 1, 4" in check.message


def test_transactions_without_z_report(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["z_vat"] = parts["z_payments"] = []
    report = validate_day(make_day(**parts))

    assert not report.success
    assert failed_rules(report) == {"z_report_present"}
    # the Z totals cannot be compared and are not reported as passed
    assert set(by_rule(report)) == ALL_RULES - {"z_vat_totals", "z_vat_amounts", "z_payment_totals"}
    check = by_rule(report)["z_report_present"]
    assert check.offending == [{"register_id": REGISTER, "transactions": 3, "z_reports": 0}]
    assert f"register {REGISTER} has 3 transactions but no Z report" in check.message


def test_z_report_without_transactions_fails_the_totals(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    report = validate_day(make_day([], [], [], parts["z_vat"], parts["z_payments"]))

    assert failed_rules(report) == {"z_vat_totals", "z_vat_amounts", "z_payment_totals"}
    assert by_rule(report)["z_report_present"].success


def test_empty_day_passes_with_one_check() -> None:
    report = validate_day(make_day([], [], [], [], []))

    assert report.success
    assert [check.rule for check in report.checks] == ["file_belongs_to_vendor", "empty_day"]
    report.raise_if_failed()


def test_tips_balance_the_receipt_but_stay_out_of_vat_totals(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["lines"].append(line("1002", 2000, code="6", rate=0, line_type="tip"))
    parts["receipts"][1] = receipt("1002", 2, 16880)
    parts["payments"][1] = payment("1002", 16880)
    parts["z_payments"] = z_payment_rows({"CARD": 21380, "CASH": 8900})
    report = validate_day(make_day(**parts))  # z_vat unchanged: the Z VAT block has no tips

    assert report.success, report.issues()


def test_many_offending_rows_are_capped(clean_report: ValidationReport) -> None:
    n = 25
    ids = [str(2000 + i) for i in range(n)]
    report = validate_day(
        make_day(
            [line(t, 1000) for t in ids],
            [receipt(t, i, 1000) for i, t in enumerate(ids)],
            [payment(t, 999) for t in ids],
            z_vat_rows({("3", 2500): 1000 * n}, {("3", 2500): 200 * n}),
            z_payment_rows({"CARD": 999 * n}),
        )
    )
    check = by_rule(report)["receipt_balances"]
    assert check.offending_count == n
    assert len(check.offending) == 20
    assert "... and 5 more" in check.message
    assert check.message.startswith(f"25 of {n} receipts do not balance")


def test_broken_expectation_fails_the_check(clean_report: ValidationReport) -> None:
    rule = Rule(
        name="broken",
        build=lambda day, context: pd.DataFrame({"difference": [0, 0]}),
        expectations=lambda gxe: [gxe.ExpectColumnValuesToBeBetween(column="no_such_column", min_value=0, max_value=0)],
        describe=lambda row: "never",
        passed=lambda f: "passed",
        failed=lambda n, total: "failed",
    )
    report = validate_day(make_day(**clean_parts()), rules=[rule])

    assert not report.success
    (check,) = report.checks
    assert not check.success
    assert "could not be checked" in check.message
    assert "no_such_column" in check.message


def test_rule_that_raises_fails_the_check() -> None:
    def explode(day: SalesDay, context: DayContext) -> pd.DataFrame:
        raise KeyError("oops")

    rule = Rule("exploding", explode, lambda gxe: [], lambda r: "", lambda f: "", lambda n, t: "")
    report = validate_day(make_day(**clean_parts()), rules=[rule])
    assert not report.success
    assert "KeyError" in report.checks[0].message


def test_raise_if_failed_names_vendor_day_rule_and_receipt(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["payments"][1] = payment("1002", 15000)
    report = validate_day(make_day(**parts))

    with pytest.raises(ValidationFailed) as raised:
        report.raise_if_failed()
    text = str(raised.value)
    assert text.startswith("vendor kiosk, business day 2024-05-01: 2 of 12 rules failed")
    assert "kiosk/2024-05-01: [receipt_balances]" in text
    assert "[z_payment_totals]" in text
    assert "receipt 1002" in text
    assert {issue.rule for issue in raised.value.issues} == {"receipt_balances", "z_payment_totals"}


def test_report_files(tmp_path: Path, clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["z_vat"] = z_vat_rows({("3", 2500): 19381, ("31", 1500): 8960}, CLEAN_VAT)
    report = validate_day(make_day(**parts)).write(tmp_path / "out")

    json_path, html_path = report.report_paths
    assert json_path == tmp_path / "out" / "validation.json"
    data: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    assert data == report.to_json()
    assert data["success"] is False
    assert data["business_day"] == "2024-05-01"
    assert [c["rule"] for c in data["checks"] if not c["success"]] == ["z_vat_totals"]

    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for rule in ALL_RULES:
        assert rule in page
    assert "193.81" in page  # the offending Z total is shown
    assert "<script" not in page and "http" not in page  # self-contained


def test_import_does_not_load_great_expectations() -> None:
    code = "import sys, kassebro.checks, kassebro.booking.verdict; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the rules added for domain §6 ------------------------------------------------------------


def test_bill_discount_balances_the_receipt_and_is_spread_over_vat_codes(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    # Receipt 1003 becomes a mixed bill: 89.60 food (15 %) + 45.00 goods (25 %) = 134.60, 10.01 off.
    parts["lines"].append(line("1003", 4500))
    parts["receipts"] = [dict(r, bill_discount=0) for r in parts["receipts"]]
    parts["receipts"][2] = dict(receipt("1003", 3, 12459, rounding=-59), bill_discount=1001)
    parts["payments"][2] = payment("1003", 12400, "CASH")
    # Largest remainder: 10.01 * 8960 / 13460 = 6.6634 -> 6.66 and 10.01 * 4500 / 13460 = 3.3466 -> 3.35.
    # VAT: the lines' own less what the discount parts hold: 3.35 at 25 % holds 0.67, 6.66 at 15 % 0.87.
    vat = {("3", 2500): 900 + 2976 + 900 - 67, ("31", 1500): 1169 - 87}
    parts["z_vat"] = z_vat_rows({("3", 2500): 19380 + 4500 - 335, ("31", 1500): 8960 - 666}, vat)
    parts["z_payments"] = z_payment_rows({"CARD": 19380, "CASH": 12400})
    report = validate_day(make_day(**parts))
    assert report.success, report.issues()

    parts["z_vat"] = z_vat_rows({("3", 2500): 19380 + 4500 - 334, ("31", 1500): 8960 - 667}, vat)
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"z_vat_totals"}
    assert "sales lines 238.80 - bill discounts 3.35 != Z report 235.46" in by_rule(report)["z_vat_totals"].message

    vat[("31", 1500)] -= 10  # the Z report's VAT 0.10 off the lines' (1 øre per line is allowed)
    parts["z_vat"] = z_vat_rows({("3", 2500): 19380 + 4500 - 335, ("31", 1500): 8960 - 666}, vat)
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"z_vat_amounts"}
    assert "VAT code 31 (15 %): VAT of the lines 11.69 - of bill discounts 0.87 != Z report VAT 10.72" in (
        by_rule(report)["z_vat_amounts"].message
    )


def test_one_allocator_splits_a_bill_discount_exactly() -> None:
    assert split_over_codes(1001, {("1",): 4500, ("2",): 8960}) == {("1",): 335, ("2",): 666}
    assert split_over_codes(100, {("a",): 1, ("b",): 1, ("c",): 1}) == {("a",): 34, ("b",): 33, ("c",): 33}
    assert split_over_codes(-100, {("a",): 1, ("b",): 1, ("c",): 1}) == {("a",): -34, ("b",): -33, ("c",): -33}
    for amount in (1, 99, 12345, -777):
        assert sum(split_over_codes(amount, {("x",): 333, ("y",): 667, ("z",): 1}).values()) == amount


def test_a_gift_card_on_a_discounted_bill_keeps_its_value_and_returns_take_a_returns_discount() -> None:
    gift = dict(line("1", 50000, code="6", rate=0), art_group_id="GAVEKORT")
    rows = [line("1", 10000), gift, line("2", -4000, line_type="return"), line("2", 1000)]
    receipts = [
        dict(receipt("1", 1, 59000), bill_discount=1000),
        dict(receipt("2", 2, -2700), bill_discount=-300),
    ]
    parts = bill_discount_parts(frame("lines", rows), frame("receipts", receipts))
    got = {(r.trans_id, r.vat_code): (r.discount, r.lines) for r in parts.itertuples()}
    # the whole 10.00 off the goods at 25 %, none off the gift card; the return's -3.00 off its return line
    assert got == {("1", "3"): (1000, 1), ("2", "3"): (-300, 1)}


def test_line_vat_must_match_its_rate_within_one_ore(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["lines"][0] = dict(line("1001", 4500), vat=901, net=3599)  # 1 øre off: tolerated
    parts["z_vat"] = z_vat_rows({("3", 2500): 19380, ("31", 1500): 8960}, {**CLEAN_VAT, ("3", 2500): 3877})
    assert validate_day(make_day(**parts)).success
    parts["lines"][0] = dict(line("1001", 4500), vat=1125, net=3375)  # 25 % of gross, not of net
    parts["z_vat"] = z_vat_rows({("3", 2500): 19380, ("31", 1500): 8960}, {**CLEAN_VAT, ("3", 2500): 3876 + 225})
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"line_vat_matches_rate"}
    assert "VAT 11.25 but gross 45.00 at 25 % holds 9.00" in by_rule(report)["line_vat_matches_rate"].message


def test_vat_column_agrees_with_money() -> None:
    from kassebro.checks.receipts import vat_from_gross_column
    from kassebro.core.money import vat_from_gross

    gross = [0, 1, 5, 62, 63, 125, 4500, 8960, -8960, -62, -63, 123457, -999999]
    for rate in (0, 1111, 1200, 1500, 2500):
        got = vat_from_gross_column(pd.Series(gross), pd.Series([rate] * len(gross)))
        assert list(got) == [vat_from_gross(g, rate) for g in gross], rate


def test_gaps_in_numbering_count_void_and_training_as_present(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"][2] = receipt("1003", 6, 8960, rounding=-60)  # numbers 1, 2, 6: 3-5 missing
    day = make_day(**parts)
    report = validate_day(day)
    assert failed_rules(report) == {"receipt_numbering"}
    check = by_rule(report)["receipt_numbering"]
    assert check.offending[0]["missing"] == 3 and check.offending[0]["missing_nrs"] == "3-5"
    assert f"register {REGISTER}, nr 1-6: 3 numbers missing (nr 3-5): receipts are missing" in check.message
    skipped = frame("skipped", [dict(register_id=REGISTER, trans_id=f"v{n}", nr=n, reason="void") for n in (3, 4, 5)])
    assert validate_day(dataclasses.replace(day, skipped=skipped)).success


def test_a_number_used_twice_and_a_gap_at_the_edge_of_the_day(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"][2] = receipt("1003", 2, 8960, rounding=-60)  # two receipts numbered 2
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"receipt_numbering"}
    assert "1 number used twice (nr 2)" in by_rule(report)["receipt_numbering"].message
    # The source's series around the day: 1-3 today, then 5 on the next day: 4 is missing at the edge.
    series = [
        dict(register_id=REGISTER, kind="run", first_nr=1, last_nr=3, count=1),
        dict(register_id=REGISTER, kind="run", first_nr=5, last_nr=9, count=1),
    ]
    day = dataclasses.replace(make_day(**clean_parts()), numbers=frame("numbers", series))
    report = validate_day(day)
    assert failed_rules(report) == {"receipt_numbering"}
    assert "nr 1-3: 1 number missing (nr 4)" in by_rule(report)["receipt_numbering"].message


def test_transaction_amount_must_be_its_lines(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"][0] = receipt("1001", 1, 4600)  # says 46.00, its line is 45.00 and it was paid 45.00
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"receipt_amount"}
    assert "receipt 1001 (nr 1) on register 11.222-33.44.567: transAmntIn 46.00 but its lines 45.00 make 45.00" in (
        by_rule(report)["receipt_amount"].message
    )
    # written after cash rounding (the amount paid) is read as written, too
    parts = clean_parts()
    parts["receipts"][2] = receipt("1003", 3, 8900, rounding=-60)
    assert validate_day(make_day(**parts)).success


def test_sales_outside_the_business_day(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    # 2024-05-02 05:30 in Oslo (03:30 UTC): 5.5 h after the day's end at midnight: inside the grace.
    parts["receipts"][0] = dict(receipt("1001", 1, 4500), timestamp=pd.Timestamp("2024-05-02T03:30", tz="UTC"))
    assert validate_day(make_day(**parts)).success
    # 2024-05-02 06:30 in Oslo: 6.5 h late for a day starting at midnight, inside one starting at 05:00.
    parts["receipts"][0] = dict(receipt("1001", 1, 4500), timestamp=pd.Timestamp("2024-05-02T04:30", tz="UTC"))
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"sales_inside_business_day"}
    message = by_rule(report)["sales_inside_business_day"].message
    assert "receipt 1001 (nr 1) on register 11.222-33.44.567 at 2024-05-02 06:30:00 lies 6 h 30 min" in message
    assert "(2024-05-01 00:00 to 2024-05-02 00:00 Europe/Oslo)" in message
    assert validate_day(make_day(**parts), DayContext(day_start_hour=5)).success
    # The vendor's zone sets the window: in Kiritimati (UTC+14) that instant is 2024-05-02 18:30.
    assert not validate_day(make_day(**parts), DayContext(tz="Pacific/Kiritimati")).success


def test_foreign_currency_needs_an_exchange_rate(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["payments"][0] = dict(payment("1001", 4500), currency="EUR", exchange_rate="11.50")
    assert validate_day(make_day(**parts)).success
    parts["payments"][0] = dict(payment("1001", 4500), currency="EUR", exchange_rate="")
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"currency_known"}
    assert "payment CARD of receipt 1001 on register 11.222-33.44.567: 45.00 in EUR without" in report.failed[0].message


def test_a_credit_sales_unpaid_part_is_owed_by_its_customer(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"][1] = dict(receipt("1002", 2, 14880), trans_code="11002", customer_id="K1")
    parts["payments"][1] = payment("1002", 4880)  # 100.00 left on the customer's account
    parts["z_payments"] = z_payment_rows({"CARD": 4500 + 4880, "CASH": 8900})
    report = validate_day(make_day(**parts))
    assert report.success, report.issues()
    parts["receipts"][1] = dict(receipt("1002", 2, 14880), trans_code="11002", customer_id="")  # owed by no one
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"receipt_balances"}


def test_cash_difference_balances_by_its_amount(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"].append(dict(receipt("1004", 4, -5000), trans_code="11008", trans_type="CASHDIFF"))
    parts["payments"].append(payment("1004", -5000, "CASH"))
    parts["z_payments"] = z_payment_rows({"CARD": 19380, "CASH": 8900 - 5000})
    assert validate_day(make_day(**parts)).success
