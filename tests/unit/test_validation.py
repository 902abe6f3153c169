"""Tests of kassebro.validation: each rule catches its own fault and only that one.

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

from kassebro.errors import ValidationFailed
from kassebro.frames import SalesDay, conform, empty_frame
from kassebro.validation import CheckResult, Rule, ValidationReport, validate_day

DAY = dt.date(2024, 5, 1)
REGISTER = "11.222-33.44.567"
TS = pd.Timestamp("2024-05-01T10:00", tz="UTC")
ALL_RULES = {
    "receipt_balances",
    "unique_transactions",
    "z_report_present",
    "z_vat_totals",
    "z_payment_totals",
    "no_gaps_in_numbering",
    "line_vat_matches_rate",
    "sales_inside_business_day",
    "currency_known",
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


def z_vat_rows(totals: dict[tuple[str, int], int]) -> list[dict]:
    return [
        dict(
            register_id=REGISTER,
            report_id="Z1",
            vat_code=code,
            std_vat_code=code,
            vat_rate_bp=rate,
            gross=gross,
            vat=0,
        )
        for (code, rate), gross in totals.items()
    ]


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
        "z_vat": z_vat_rows({("3", 2500): 19380, ("31", 1500): 8960}),
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
            "difference": -120,
            "lines_kr": "148.80",
            "bill_discount_kr": "0.00",
            "rounding_kr": "0.00",
            "cash_difference_kr": "0.00",
            "payments_kr": "150.00",
            "difference_kr": "-1.20",
        }
    ]
    assert (
        f"receipt 1002 on register {REGISTER} does not balance: "
        "lines 148.80 - bill discount 0.00 + rounding 0.00 != payments 150.00 (difference -1.20)"
    ) in check.message


def test_z_vat_mismatch_by_one_ore(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["z_vat"] = z_vat_rows({("3", 2500): 19381, ("31", 1500): 8960})
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
    assert set(by_rule(report)) == ALL_RULES - {"z_vat_totals", "z_payment_totals"}
    check = by_rule(report)["z_report_present"]
    assert check.offending == [{"register_id": REGISTER, "transactions": 3, "z_reports": 0}]
    assert f"register {REGISTER} has 3 transactions but no Z report" in check.message


def test_z_report_without_transactions_fails_the_totals(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    report = validate_day(make_day([], [], [], parts["z_vat"], parts["z_payments"]))

    assert failed_rules(report) == {"z_vat_totals", "z_payment_totals"}
    assert by_rule(report)["z_report_present"].success


def test_empty_day_passes_with_one_check() -> None:
    report = validate_day(make_day([], [], [], [], []))

    assert report.success
    assert [check.rule for check in report.checks] == ["empty_day"]
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
            z_vat_rows({("3", 2500): 1000 * n}),
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
        build=lambda day: pd.DataFrame({"difference": [0, 0]}),
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
    def explode(day: SalesDay) -> pd.DataFrame:
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
    assert text.startswith("vendor kiosk, business day 2024-05-01: 2 of 9 validation rules failed")
    assert "kiosk/2024-05-01: [receipt_balances]" in text
    assert "[z_payment_totals]" in text
    assert "receipt 1002" in text
    assert {issue.rule for issue in raised.value.issues} == {"receipt_balances", "z_payment_totals"}


def test_report_files(tmp_path: Path, clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["z_vat"] = z_vat_rows({("3", 2500): 19381, ("31", 1500): 8960})
    report = validate_day(make_day(**parts), report_dir=tmp_path / "out")

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
    code = "import sys, kassebro.validation; print('great_expectations' in sys.modules)"
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
    parts["z_vat"] = z_vat_rows({("3", 2500): 19380 + 4500 - 335, ("31", 1500): 8960 - 666})
    parts["z_payments"] = z_payment_rows({"CARD": 19380, "CASH": 12400})
    report = validate_day(make_day(**parts))
    assert report.success, report.issues()

    parts["z_vat"] = z_vat_rows({("3", 2500): 19380 + 4500 - 334, ("31", 1500): 8960 - 667})
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"z_vat_totals"}
    assert "sales lines 238.80 - bill discounts 3.35 != Z report 235.46" in by_rule(report)["z_vat_totals"].message


def test_split_pro_rata_is_exact() -> None:
    from kassebro.validation import split_pro_rata

    assert split_pro_rata(1001, {"1": 4500, "2": 8960}) == {"1": 335, "2": 666}
    assert split_pro_rata(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert split_pro_rata(-100, {"a": 1, "b": 1, "c": 1}) == {"a": -33, "b": -33, "c": -34}
    assert split_pro_rata(7, {"a": -2, "b": 5}) == {"a": -5, "b": 12}
    assert split_pro_rata(5, {"a": 0, "b": 0}) == {"a": 5, "b": 0}
    for amount in (1, 99, 12345, -777):
        assert sum(split_pro_rata(amount, {"x": 333, "y": 667, "z": 1}).values()) == amount


def test_line_vat_must_match_its_rate_within_one_ore(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["lines"][0] = dict(line("1001", 4500), vat=901, net=3599)  # 1 øre off: tolerated
    assert validate_day(make_day(**parts)).success
    parts["lines"][0] = dict(line("1001", 4500), vat=1125, net=3375)  # 25 % of gross, not of net
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"line_vat_matches_rate"}
    assert "VAT 11.25 but gross 45.00 at 25 % holds 9.00" in by_rule(report)["line_vat_matches_rate"].message


def test_vat_column_agrees_with_money() -> None:
    from kassebro.money import vat_from_gross
    from kassebro.validation import vat_from_gross_column

    gross = [0, 1, 5, 62, 63, 125, 4500, 8960, -8960, -62, -63, 123457, -999999]
    for rate in (0, 1111, 1200, 1500, 2500):
        got = vat_from_gross_column(pd.Series(gross), pd.Series([rate] * len(gross)))
        assert list(got) == [vat_from_gross(g, rate) for g in gross], rate


def test_gaps_in_numbering_count_void_and_training_as_present(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"][2] = receipt("1003", 6, 8960, rounding=-60)  # numbers 1, 2, 6: 3-5 missing
    day = make_day(**parts)
    report = validate_day(day)
    assert failed_rules(report) == {"no_gaps_in_numbering"}
    check = by_rule(report)["no_gaps_in_numbering"]
    assert check.offending[0]["missing"] == 3 and check.offending[0]["missing_nrs"] == "3-5"
    assert f"register {REGISTER}: 3 transaction numbers missing between 1 and 6 (nr 3-5)" in check.message
    skipped = frame("skipped", [dict(register_id=REGISTER, trans_id=f"v{n}", nr=n, reason="void") for n in (3, 4, 5)])
    assert validate_day(dataclasses.replace(day, skipped=skipped)).success


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
    assert validate_day(make_day(**parts), day_start_hour=5).success
    # The vendor's zone sets the window: in Kiritimati (UTC+14) that instant is 2024-05-02 18:30.
    assert not validate_day(make_day(**parts), tz="Pacific/Kiritimati").success


def test_foreign_currency_needs_an_exchange_rate(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["payments"][0] = dict(payment("1001", 4500), currency="EUR", exchange_rate="11.50")
    assert validate_day(make_day(**parts)).success
    parts["payments"][0] = dict(payment("1001", 4500), currency="EUR", exchange_rate="")
    report = validate_day(make_day(**parts))
    assert failed_rules(report) == {"currency_known"}
    assert "payment CARD of receipt 1001 on register 11.222-33.44.567: 45.00 in EUR without" in report.failed[0].message


def test_cash_difference_balances_by_its_amount(clean_report: ValidationReport) -> None:
    parts = clean_parts()
    parts["receipts"].append(dict(receipt("1004", 4, -5000), trans_code="11008", trans_type="CASHDIFF"))
    parts["payments"].append(payment("1004", -5000, "CASH"))
    parts["z_payments"] = z_payment_rows({"CARD": 19380, "CASH": 8900 - 5000})
    assert validate_day(make_day(**parts)).success


def test_report_path_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="kassebro.validation"):
        validate_day(make_day(**clean_parts()), report_dir=tmp_path)
    assert f"validation report: {tmp_path / 'validation.html'}" in caplog.text
