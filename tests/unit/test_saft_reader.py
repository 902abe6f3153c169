"""The SAF-T Cash Register reader: the official example by hand, safety, errors, business days."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from kassebro.core import saft_codes
from kassebro.core.errors import SourceError
from kassebro.core.frames import FRAME_COLUMNS
from kassebro.core.money import parse_ore
from kassebro.demo.data import write_day
from kassebro.sources import saft
from kassebro.sources.saft import list_business_days, read_day, validate_file
from tests.official import EXAMPLE_2016 as EXAMPLE

DAY = dt.date(2016, 1, 1)
REGISTER = "11.222-33.44.567"


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8-sig")


def write(tmp_path: Path, text: str, name: str = "file.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def by_key(frame: pd.DataFrame, key: str, value: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby(key)[value].sum().items()}


# --- the official example, figures summed by hand from the XML ------------------------------


def test_official_example_lines_and_receipts() -> None:
    day = read_day(EXAMPLE, "example", DAY)

    # 3 cashtransactions (nr 1000, 1001, 1002) with 3 + 2 + 2 ctLines, none void or training.
    assert list(day.receipts["nr"]) == [1000, 1001, 1002]
    assert len(day.lines) == 7
    assert set(day.lines["line_type"]) == {"sale"}
    # transAmntIn 86.40, 295.40, 148.80; every transTime is 2016-01-01 local (CET, UTC+1).
    assert list(day.receipts["amount"]) == [8640, 29540, 14880]
    assert list(day.receipts["timestamp"]) == [
        pd.Timestamp("2016-01-01 08:00", tz="UTC"),
        pd.Timestamp("2016-01-01 08:15", tz="UTC"),
        pd.Timestamp("2016-01-01 08:30", tz="UTC"),
    ]
    # The example's placeholder rounding 1234.560 is read as written; validation flags it.
    assert list(day.receipts["rounding"]) == [123456, 123456, 123456]
    assert set(day.receipts["trans_code"]) == {"11001"}  # CASHSAL -> 11001 via basics

    # Gross per standard VAT code (vatCode 2 -> 31 at 15 %, vatCode 3 -> 3 at 25 %):
    #   31: 32.80 + 25.80 + 27.80 (trans 1000) + 32.80 (trans 1002)          = 119.20
    #    3: 116.00 + 179.40 (trans 1001) + 116.00 (trans 1002)              = 411.40
    assert by_key(day.lines, "std_vat_code", "gross") == {"31": 11920, "3": 41140}
    #   VAT 31: 4.92 + 3.87 + 4.17 + 4.92 = 17.88;  VAT 3: 29.00 + 44.85 + 29.00 = 102.85
    assert by_key(day.lines, "std_vat_code", "vat") == {"31": 1788, "3": 10285}
    #   net 31: 27.88 + 21.93 + 23.63 + 27.88 = 101.32;  net 3: 87.00 + 134.55 + 87.00 = 308.55
    assert by_key(day.lines, "std_vat_code", "net") == {"31": 10132, "3": 30855}
    assert set(zip(day.lines["vat_code"], day.lines["vat_rate_bp"], strict=True)) == {("2", 1500), ("3", 2500)}
    # Article groups 100 -> 04006 food, 200 -> 04013 tobacco, 300 -> 04007 beer (basics type 04).
    assert by_key(day.lines, "art_group_code", "gross") == {"04006": 11920, "04013": 23200, "04007": 17940}
    assert day.lines.loc[0, "description"] == "TineMelk Lett 1 l"
    assert day.lines.loc[0, "quantity"] == "2"

    # Payments: DEBCARD 86.40 (1000) + 148.80 (1002) = 235.20; CASH 295.40 (1001).
    assert by_key(day.payments, "payment_code", "amount") == {"12002": 23520, "12001": 29540}
    assert set(day.payments["payment_type"]) == {"CASH", "DEBCARD"}
    assert set(day.payments["currency"]) == {"NOK"}
    assert set(day.payments["exchange_rate"]) == {"1.000000"}
    assert day.source == str(EXAMPLE)
    for name, frame in day.frames().items():
        assert list(frame.columns) == list(FRAME_COLUMNS[name])


def test_official_example_z_report() -> None:
    day = read_day(EXAMPLE, "example", DAY)
    # reportCashSaleVat rows as written (cashSaleAmnt read as gross), vatCode -> standardVatCode:
    z_vat = [tuple(row) for row in day.z_vat[["vat_code", "std_vat_code", "vat_rate_bp", "gross", "vat"]].values]
    assert z_vat == [
        ("0", "0", 0, 0, 0),
        ("1", "33", 1000, 0, 0),
        ("2", "31", 1500, 11920, 1788),
        ("3", "3", 2500, 41140, 10285),
    ]
    assert set(day.z_vat["report_id"]) == {"1"}
    assert set(day.z_vat["register_id"]) == {REGISTER}
    z_pay = [tuple(row) for row in day.z_payments[["payment_type", "payment_code", "amount"]].values]
    assert z_pay == [("CASH", "12001", 29540), ("DEBCARD", "12002", 23520)]
    # The Z report agrees with the lines per VAT code and with the payments per type.
    assert by_key(day.z_vat[day.z_vat["gross"] != 0], "vat_code", "gross") == by_key(day.lines, "vat_code", "gross")
    assert by_key(day.z_payments, "payment_type", "amount") == by_key(day.payments, "payment_type", "amount")


def test_z_report_amounts_pinned_net_adds_the_vat() -> None:
    day = read_day(EXAMPLE, "example", DAY, z_report_amounts="net")
    assert list(day.z_vat["gross"]) == [0, 0, 11920 + 1788, 41140 + 10285]
    assert list(day.z_vat["amount"]) == [0, 0, 11920, 41140]
    assert list(day.z_reports["amounts"]) == ["net"]
    with pytest.raises(ValueError, match="z_report_amounts"):
        read_day(EXAMPLE, "example", DAY, z_report_amounts="both")  # type: ignore[arg-type]


def test_official_example_is_schema_valid_and_other_days_are_empty() -> None:
    # True of the 2016 example: even `1234.560` fits fractionDigits=2 (the value is 1234.56).
    assert validate_file(EXAMPLE) is None
    assert list_business_days(EXAMPLE) == [DAY]
    empty = read_day(EXAMPLE, "example", DAY + dt.timedelta(days=1))
    assert empty.is_empty()
    assert list(empty.lines.columns) == list(FRAME_COLUMNS["lines"])
    assert empty.source == ""


# --- errors and safety ----------------------------------------------------------------------


def test_schema_errors_name_file_line_and_element(tmp_path: Path) -> None:
    text = example_text()
    text = text.replace("<n1:transAmntIn>86.40</n1:transAmntIn>", "<n1:transAmntIn>86.4x</n1:transAmntIn>")
    text = text.replace("<n1:signature>", "<n1:bogus/><n1:signature>")
    path = write(tmp_path, text)
    bogus_lines = [n for n, line in enumerate(text.splitlines(), start=1) if "<n1:bogus/>" in line]
    with pytest.raises(SourceError) as caught:
        validate_file(path)
    issues = caught.value.issues
    assert len(issues) >= 3  # collected, not just the first
    assert all(issue.source.startswith(f"{path}:") and issue.rule == "xsd" for issue in issues)
    assert {f"{path}:{n}" for n in bogus_lines} <= {issue.source for issue in issues}
    assert any("bogus" in issue.message and "cashtransaction" in issue.message for issue in issues)
    # read_day streams the validation and then reports every error with its line the same way.
    with pytest.raises(SourceError) as caught_read:
        read_day(path, "v", DAY)
    assert [i.source for i in caught_read.value.issues] == [i.source for i in issues]


@pytest.mark.parametrize("validate_schema", [True, False])
def test_malformed_and_truncated_xml(tmp_path: Path, validate_schema: bool) -> None:
    text = example_text()
    mismatched = write(tmp_path, text.replace("<n1:nr>1001</n1:nr>", "<n1:nr>1001</n1:nrx>", 1), "bad.xml")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "<n1:nr>1001</n1:nr>" in row)
    # lxml's iterparse with a schema ends silently on a truncated file: the reader must notice.
    truncated = write(tmp_path, text[:5000], "cut.xml")
    with pytest.raises(SourceError) as caught:
        read_day([mismatched, truncated], "v", DAY, validate_schema=validate_schema)
    sources = [issue.source for issue in caught.value.issues]
    assert sources[0] == f"{mismatched}:{line}"
    assert sources[1].startswith(f"{truncated}:")
    assert {issue.rule for issue in caught.value.issues} == {"xml_malformed"}
    with pytest.raises(SourceError, match=re.escape(f"{truncated}:")):
        validate_file(truncated)


def test_external_entities_are_never_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    body = example_text().split("\n", 1)[1]
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<!DOCTYPE auditfile [<!ENTITY e SYSTEM "file://{secret}">]>\n'
        + body.replace("<n1:artDesc>TineMelk Lett 1 l</n1:artDesc>", "<n1:artDesc>Melk &e;</n1:artDesc>")
    )
    path = write(tmp_path, text)
    for validate_schema in (True, False):
        with pytest.raises(SourceError) as caught:
            read_day(path, "v", DAY, validate_schema=validate_schema)
        assert [issue.rule for issue in caught.value.issues] == ["xml_entities"]
        assert "TOP-SECRET" not in str(caught.value)
    with pytest.raises(SourceError, match="xml_entities"):
        validate_file(path)
    # And the parser settings themselves never expand it.
    from lxml import etree

    tree = etree.parse(str(path), etree.XMLParser(**saft._SAFE))
    assert "TOP-SECRET" not in etree.tostring(tree, encoding="unicode")


def test_bad_values_are_all_collected(tmp_path: Path) -> None:
    text = example_text().replace("<n1:transAmntIn>86.40</n1:transAmntIn>", "<n1:transAmntIn>abc</n1:transAmntIn>")
    text = text.replace("<n1:lineAmntIn>179.40</n1:lineAmntIn>", "<n1:lineAmntIn>1,79</n1:lineAmntIn>")
    path = write(tmp_path, text)
    with pytest.raises(SourceError) as caught:
        read_day(path, "v", DAY, validate_schema=False)
    issues = caught.value.issues
    assert [issue.rule for issue in issues] == ["bad_value", "bad_value"]
    assert "abc" in issues[0].message and "1,79" in issues[1].message
    assert all(re.fullmatch(rf"{re.escape(str(path))}:\d+", issue.source) for issue in issues)


def test_missing_path_and_foreign_xml(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file_missing"):
        read_day(tmp_path / "nope.xml", "v", DAY)
    other = write(tmp_path, "<auditfile><header/></auditfile>")
    with pytest.raises(SourceError, match="not_saft"):
        read_day(other, "v", DAY, validate_schema=False)
    with pytest.raises(SourceError, match="xsd"):
        validate_file(other)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert read_day(empty_dir, "v", DAY).receipts.empty


# --- amounts, currencies, tips ----------------------------------------------------------------


def test_foreign_currency_payment_is_converted(tmp_path: Path) -> None:
    text = example_text().replace(
        "<n1:paidAmnt>86.40</n1:paidAmnt>\n\t\t\t\t\t\t<n1:empID>1001</n1:empID>\n"
        "\t\t\t\t\t\t<n1:curCode>NOK</n1:curCode>\n\t\t\t\t\t\t<n1:exchRt>1.000000</n1:exchRt>",
        "<n1:paidAmnt>10.00</n1:paidAmnt>\n<n1:curCode>EUR</n1:curCode>\n<n1:exchRt>11.734500</n1:exchRt>",
    )
    text = text.replace(
        "<n1:paidAmnt>148.80</n1:paidAmnt>\n\t\t\t\t\t\t<n1:empID>1000</n1:empID>\n"
        "\t\t\t\t\t\t<n1:curCode>NOK</n1:curCode>\n\t\t\t\t\t\t<n1:exchRt>1.000000</n1:exchRt>",
        "<n1:paidAmnt>20.00</n1:paidAmnt>\n<n1:curCode>SEK</n1:curCode>",
    )
    payments = read_day(write(tmp_path, text), "v", DAY).payments
    rows = {tuple(r) for r in payments[["trans_id", "amount", "currency", "exchange_rate"]].values}
    # 10.00 EUR * 11.7345 = 117.345 -> 117.35 (half up); SEK without a rate stays as written.
    assert rows == {("1000", 11735, "EUR", "11.734500"), ("1001", 29540, "NOK", "1.000000"), ("1002", 2000, "SEK", "")}


def test_tips_as_raises(tmp_path: Path) -> None:
    text = example_text().replace(
        "</n1:basics>",
        "<n1:basic><n1:basicType>10</n1:basicType><n1:basicID>TIPS</n1:basicID>"
        "<n1:predefinedBasicID>10001</n1:predefinedBasicID><n1:basicDesc>Tips</n1:basicDesc></n1:basic></n1:basics>",
    )
    # trans 1000 line 1 (32.80): a 5.00 tip raised on a sale line -> split into sale 27.80 + tip 5.00.
    first_line_end = text.index("</n1:ctLine>")
    text = (
        text[:first_line_end]
        + "<n1:raise><n1:raiseType>TIPS</n1:raiseType><n1:raiseAmnt>5.00</n1:raiseAmnt></n1:raise>"
        + text[first_line_end:]
    )
    # trans 1001: a 20.00 tip at transaction level (no line carries it) -> a synthetic tip line.
    second_rounding = [m.start() for m in re.finditer("<n1:rounding>", text)][1]
    text = (
        text[:second_rounding]
        + "<n1:raise><n1:raiseType>TIPS</n1:raiseType><n1:raiseAmnt>20.00</n1:raiseAmnt></n1:raise>"
        + text[second_rounding:]
    )
    lines = read_day(write(tmp_path, text), "v", DAY).lines
    tips = lines[lines["line_type"] == "tip"]
    assert [tuple(r) for r in tips[["trans_id", "line_id", "gross", "vat", "vat_code"]].values] == [
        ("1000", "1-tip", 500, 0, ""),
        ("1001", "tip-3", 2000, 0, ""),
    ]
    first = lines[(lines["trans_id"] == "1000") & (lines["line_id"] == "1")].iloc[0]
    assert (first["line_type"], first["gross"], first["net"], first["vat"]) == ("sale", 2780, 2288, 492)
    assert lines[lines["line_type"] == "sale"]["gross"].sum() == 53060 - 500


@pytest.mark.parametrize("text", ["0", "1", "-1", "86.40", "-16.4", ".5", "1234.560", "1e2", " 7.25 ", "+3.10"])
def test_fast_amount_parser_agrees_with_money(text: str) -> None:
    assert saft._ore(text, "x") == parse_ore(text)


def test_code_lists_load_latin1_and_utf8() -> None:
    assert saft_codes.PAYMENT_CODES["12005"] == "Gift token"
    assert saft_codes.PAYMENT_CODES["12011"] == "Mobile phone apps"
    assert saft_codes.code_list("04")["04007"].description_nob == "Øl"  # a Latin-1 file
    assert saft_codes.code_list("13")["13003"].description_nob == "Pålogging bruker/ansatt"  # UTF-8
    assert saft_codes.TRANSACTION_CODES["11006"] == "Return payment"
    assert saft_codes.TIP_CODES["10001"] == "Amount from gratuity/tip"
    assert saft_codes.standard_vat_codes()["31"].rate_bp == 1500
    assert saft_codes.STANDARD_VAT_CODES["6"].rate_bp is None
    assert saft_codes.BASIC_TYPES["12"] == "Payment codes"


# --- transactions left out, business days ------------------------------------------------------


def _set_flag(text: str, trans_id: str, flag: str) -> str:
    start = text.index(f"<transID>{trans_id}</transID>")
    end = text.index("</cashtransaction>", start)
    return text[:end] + f"<{flag}>true</{flag}>" + text[end:]


def test_void_and_training_transactions_are_left_out(tmp_path: Path) -> None:
    day = dt.date(2026, 3, 3)
    path = write_day("shop", "912345678", "Butikken AS", day, tmp_path)
    before = read_day(path, "v", day)
    void_id, training_id = before.receipts["trans_id"].iloc[[4, 7]]
    text = _set_flag(path.read_text(encoding="utf-8"), void_id, "voidTransaction")
    path.write_text(_set_flag(text, training_id, "trainingID"), encoding="utf-8")
    after = read_day(path, "v", day)
    assert len(after.receipts) == len(before.receipts) - 2
    for frame in (after.receipts, after.lines, after.payments):
        assert not frame["trans_id"].isin([void_id, training_id]).any()
    # ... but their numbers are reported, so the number series shows no gap for them.
    skipped = after.skipped.set_index("trans_id")
    assert dict(skipped["reason"]) == {void_id: "void", training_id: "training"}
    nrs = before.receipts.set_index("trans_id")["nr"]
    assert dict(skipped["nr"]) == {void_id: nrs[void_id], training_id: nrs[training_id]}


def _strip_z_reports(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"<event>.*?</event>", "", text), encoding="utf-8")


def test_bar_day_over_the_dst_change(tmp_path: Path) -> None:
    # Saturday 2026-10-24: the bar sells until about 02:30 on Sunday, when clocks go back at 03:00.
    saturday, sunday = dt.date(2026, 10, 24), dt.date(2026, 10, 25)
    path = write_day("bar", "987654321", "Baren AS", saturday, tmp_path)
    day = read_day(path, "bar", saturday, day_start_hour=5)
    local = day.receipts["timestamp"].dt.tz_convert("Europe/Oslo")
    after_midnight = local.dt.date == sunday
    assert after_midnight.any() and (~after_midnight).any()
    assert len(day.z_vat) == 2  # one Z report per register, both after midnight
    assert read_day(path, "bar", sunday, day_start_hour=5).receipts.empty
    assert list_business_days(path, day_start_hour=5) == [saturday]
    # Without Z reports the day-start hour alone gives the same business day...
    _strip_z_reports(path)
    fallback = read_day(path, "bar", saturday, day_start_hour=5)
    assert len(fallback.receipts) == len(day.receipts) and fallback.z_vat.empty
    # ...and with a midnight day start the after-midnight sales fall on Sunday.
    assert len(read_day(path, "bar", sunday, day_start_hour=0).receipts) == after_midnight.sum()


def test_ambiguous_and_offset_times(tmp_path: Path) -> None:
    day = dt.date(2026, 10, 24)
    path = write_day("bar", "987654321", "Baren AS", day, tmp_path, receipts=4)
    text = path.read_text(encoding="utf-8")
    times = re.findall(r"<transDate>[^<]+</transDate><transTime>[^<]+</transTime>", text)
    moved = {
        times[0]: "<transDate>2026-10-25</transDate><transTime>02:30:00</transTime>",  # twice that night
        times[1]: "<transDate>2026-10-25</transDate><transTime>02:30:00+01:00</transTime>",  # the 2nd
    }
    for old, new in moved.items():
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    stamps = set(read_day(path, "bar", day, day_start_hour=5).receipts["timestamp"])
    assert pd.Timestamp("2026-10-25 00:30", tz="UTC") in stamps  # fold=0: 02:30 CEST
    assert pd.Timestamp("2026-10-25 01:30", tz="UTC") in stamps  # explicit +01:00: 02:30 CET


def test_transactions_belong_to_the_next_z_report(tmp_path: Path) -> None:
    # Monday's Z report is missing: its sales belong to the first later Z report (Tuesday's).
    monday, tuesday = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    first = write_day("cafe", "912345678", "Kafeen AS", monday, tmp_path)
    second = write_day("cafe", "912345678", "Kafeen AS", tuesday, tmp_path)
    alone = {d: len(read_day(tmp_path, "cafe", d).receipts) for d in (monday, tuesday)}
    assert list_business_days(tmp_path) == [monday, tuesday]
    _strip_z_reports(first)
    assert read_day(tmp_path, "cafe", monday).receipts.empty
    merged = read_day(tmp_path, "cafe", tuesday)
    assert len(merged.receipts) == alone[monday] + alone[tuesday]
    assert merged.source == f"{first}; {second}"
    # Read alone, Monday's file falls back to the calendar day.
    assert len(read_day(first, "cafe", monday).receipts) == alone[monday]


# --- discounts, projects, cost centres, customers, cash differences ---------------------------


def _in_transaction(text: str, trans_id: str, after: str, insert: str) -> str:
    """Insert `insert` after the first `after` inside the transaction `trans_id` of the example."""
    start = text.index(f"<n1:nr>{trans_id}</n1:nr>")  # the transaction's (events hold no nr)
    at = text.index(after, start) + len(after)
    return text[:at] + insert + text[at:]


def test_discounts_project_cost_centre_and_customer(tmp_path: Path) -> None:
    text = example_text()
    # Transaction 1000: lines 32.80 + 25.80 + 27.80 = 86.40; a bill discount of 6.40 makes it 80.00.
    text = text.replace("<n1:transAmntIn>86.40</n1:transAmntIn>", "<n1:transAmntIn>80.00</n1:transAmntIn>", 1).replace(
        "<n1:paidAmnt>86.40</n1:paidAmnt>", "<n1:paidAmnt>80.00</n1:paidAmnt>", 1
    )
    text = _in_transaction(text, "1000", "<n1:empID>1001</n1:empID>", "<n1:custSupID>K1001</n1:custSupID>")
    # Its first line: cost centre, project and a line discount of 3.20 (already off its 32.80).
    text = _in_transaction(
        text,
        "1000",
        "<n1:lineAmntEx>27.88</n1:lineAmntEx>\n\t\t\t\t\t\t<n1:amntTp>C</n1:amntTp>",
        "<n1:costID>K1</n1:costID><n1:projID>P7</n1:projID>",
    )
    text = _in_transaction(
        text,
        "1000",
        "<n1:vatBasAmnt>27.88</n1:vatBasAmnt>\n\t\t\t\t\t\t</n1:vat>",
        "<n1:discount><n1:dscTp>LINE</n1:dscTp><n1:dscAmnt>3.20</n1:dscAmnt></n1:discount>",
    )
    bill = "<n1:discount><n1:dscTp>BILL</n1:dscTp><n1:dscAmnt>6.40</n1:dscAmnt></n1:discount>"
    text = _in_transaction(text, "1000", "<n1:vatBasAmnt>73.44</n1:vatBasAmnt>\n\t\t\t\t\t</n1:vat>", bill)
    # Transaction 1002 (148.80) carries a discount element but its lines already hold it.
    text = _in_transaction(text, "1002", "<n1:vatBasAmnt>87.00</n1:vatBasAmnt>\n\t\t\t\t\t</n1:vat>", bill)
    path = write(tmp_path, text)
    validate_file(path)
    day = read_day(path, "example", DAY)

    receipts = day.receipts.set_index("trans_id")
    assert dict(receipts["bill_discount"]) == {"1000": 640, "1001": 0, "1002": 0}
    assert dict(receipts["amount"]) == {"1000": 8000, "1001": 29540, "1002": 14880}
    assert dict(receipts["customer_id"]) == {"1000": "K1001", "1001": "", "1002": ""}
    first = day.lines.iloc[0]
    assert (first["trans_id"], first["gross"], first["discount"]) == ("1000", 3280, 320)
    assert (first["project"], first["cost_centre"]) == ("P7", "K1")
    assert set(day.lines["discount"].iloc[1:]) == {0} and set(day.lines["project"].iloc[1:]) == {""}
    # lines - bill discount = payments: 86.40 - 6.40 = 80.00
    assert int(day.payments[day.payments["trans_id"] == "1000"]["amount"].sum()) == 8000
    # The Z report's article-group totals (reportArtGroups): 100 -> 119.20, 200 -> 232.00, 300 -> 179.40.
    assert by_key(day.z_art_groups, "art_group_id", "amount") == {"100": 11920, "200": 23200, "300": 17940}


def test_cash_difference_keeps_payments_and_drops_lines(tmp_path: Path) -> None:
    text = example_text().replace(
        "<n1:basic>\n\t\t\t\t<n1:basicType>12</n1:basicType>",
        "<n1:basic><n1:basicType>11</n1:basicType><n1:basicID>DIFF</n1:basicID>"
        "<n1:predefinedBasicID>11008</n1:predefinedBasicID><n1:basicDesc>Cash difference</n1:basicDesc></n1:basic>"
        "<n1:basic>\n\t\t\t\t<n1:basicType>12</n1:basicType>",
        1,
    )
    text = text.replace(
        "<n1:transID>1001</n1:transID>\n\t\t\t\t\t<n1:transType>CASHSAL",
        "<n1:transID>1001</n1:transID>\n\t\t\t\t\t<n1:transType>DIFF",
        1,
    )
    path = write(tmp_path, text)
    validate_file(path)
    day = read_day(path, "example", DAY)
    receipt = day.receipts.set_index("trans_id").loc["1001"]
    assert (receipt["trans_code"], receipt["amount"]) == ("11008", 29540)
    assert "1001" not in set(day.lines["trans_id"])
    assert by_key(day.payments[day.payments["trans_id"] == "1001"], "payment_type", "amount") == {"CASH": 29540}


# --- streaming: memory bounded by the asked day -----------------------------------------------


def _split_period(period: Path, out: Path, drop_z: set[str] = frozenset()) -> list[Path]:
    """Rewrite a period file as two: its transactions first ('1-...'), then its Z reports ('2-...')
    in a file read after them; Z reports whose reportID is in `drop_z` are left out."""
    text = period.read_text(encoding="utf-8")
    events = re.findall(r"<event>.*?</event>", text)
    transactions = re.sub(r"<event>.*?</event>", "", text)
    kept = [e for e in events if not any(f"<reportID>{r}</reportID>" in e for r in drop_z)]
    z_only = re.sub(r"<cashtransaction>.*?</cashtransaction>\n?", "", text)
    for event in events:
        z_only = z_only.replace(event, event if event in kept else "", 1)
    out.mkdir()
    first, second = out / "1-transactions.xml", out / "2-z-reports.xml"
    first.write_text(transactions, encoding="utf-8")
    second.write_text(z_only, encoding="utf-8")
    return [first, second]


def _kept_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many transactions each read kept to the end (the reader's memory)."""
    kept: list[int] = []
    assemble = saft._assemble

    def spy(state, *args):  # noqa: ANN001, ANN202
        kept.append(sum(len(txns) for txns in state.txns.values()))
        return assemble(state, *args)

    monkeypatch.setattr(saft, "_assemble", spy)
    return kept


THU, FRI, SAT = dt.date(2026, 3, 5), dt.date(2026, 3, 6), dt.date(2026, 3, 7)


def test_period_with_z_reports_after_the_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kassebro.demo.data import write_period

    period = write_period("shop", "912345678", "Butikken AS", THU, SAT, tmp_path / "period.xml")
    files = _split_period(period, tmp_path / "split")
    kept = _kept_transactions(monkeypatch)
    for day in (THU, FRI, SAT):
        whole, split = read_day(period, "v", day), read_day(files, "v", day)
        for name, frame in whole.frames().items():
            if name == "headers":  # one row per file read
                continue
            pd.testing.assert_frame_equal(split.frames()[name], frame, obj=f"{day} {name}")
        # Only the asked day's transactions survive to the end, in both layouts.
        assert kept[-2:] == [len(whole.receipts)] * 2


def test_z_report_claiming_days_old_transactions_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kassebro.demo.data import write_period

    period = write_period("shop", "912345678", "Butikken AS", THU, SAT, tmp_path / "period.xml")
    # Register SHOP-01 took no Z report on Thursday and Friday: Saturday's claims all three days.
    files = _split_period(period, tmp_path / "split", drop_z={"SHOP-01-20260305", "SHOP-01-20260306"})
    expected = pd.concat([read_day(period, "v", day).receipts for day in (THU, FRI, SAT)])
    expected = expected[expected["register_id"] == "SHOP-01"]
    with caplog.at_level("WARNING", logger="kassebro.sources.saft"):
        sat = read_day(files, "v", SAT)
    assert "reading the files again" in caplog.text
    assert sorted(sat.receipts[sat.receipts["register_id"] == "SHOP-01"]["nr"]) == sorted(expected["nr"])
    assert read_day(files, "v", THU).receipts["register_id"].eq("SHOP-02").all()
