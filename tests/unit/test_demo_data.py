"""The demo SAF-T generator: valid files whose Z reports agree with their receipts, every trap present."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from lxml import etree

from kassebro.checks import DayContext, validate_day
from kassebro.core.allocation import bill_discount_parts
from kassebro.core.frames import SalesDay
from kassebro.core.money import vat_from_gross
from kassebro.demo import data as demo_data
from kassebro.sources.saft import NAMESPACE, list_business_days, read_day, validate_file

ORGNR = "912345678"
# A Friday, Saturday and Sunday (the shop is closed on Sundays).
DAYS = (dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8))
NS = {"s": NAMESPACE}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("demo")
    return {
        name: demo_data.write_range(name, ORGNR, f"Demo {name} AS", DAYS[0], DAYS[-1], root / name)
        for name in demo_data.PROFILES
    }


def read(name: str, path: Path, day: dt.date) -> SalesDay:
    return read_day(path, name, day, day_start_hour=demo_data.PROFILES[name].day_start_hour)


def sums(frame: pd.DataFrame, key: str, value: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby(key)[value].sum().items() if v}


def test_every_file_is_schema_valid_and_named_by_convention(written: dict[str, list[Path]]) -> None:
    for name, paths in written.items():
        assert len(paths) == len(DAYS)
        for day, path in zip(DAYS, paths, strict=True):
            validate_file(path)
            next_morning = day + dt.timedelta(days=1)
            assert path.name == f"SAF-T Cash Register_{ORGNR}_{next_morning:%Y%m%d}060000.xml", name


def after_bill_discounts(sales: SalesDay) -> tuple[dict[str, int], dict[str, int]]:
    """Gross and VAT per own VAT code after each receipt's bill discount, as the demo POS reports
    them: the discount split pro rata (allocation.bill_discount_parts), VAT recomputed on the
    discounted gross of each code of a discounted receipt; the lines' own VAT elsewhere."""
    revenue = sales.lines[sales.lines["line_type"] != "tip"]
    per_code = revenue.groupby(["trans_id", "vat_code", "vat_rate_bp"])[["gross", "vat"]].sum().reset_index()
    shares = bill_discount_parts(sales.lines, sales.receipts)[["trans_id", "vat_code", "discount"]]
    per_code = per_code.merge(shares, on=["trans_id", "vat_code"], how="left")
    per_code["discount"] = per_code["discount"].fillna(0).astype("int64")
    gross: dict[str, int] = {}
    vat: dict[str, int] = {}
    for row in per_code.itertuples():
        after = int(row.gross) - int(row.discount)
        gross[row.vat_code] = gross.get(row.vat_code, 0) + after
        row_vat = vat_from_gross(after, int(row.vat_rate_bp)) if row.discount else int(row.vat)
        vat[row.vat_code] = vat.get(row.vat_code, 0) + row_vat
    return {k: v for k, v in gross.items() if v}, {k: v for k, v in vat.items() if v}


@pytest.mark.parametrize("name", sorted(demo_data.PROFILES))
def test_z_reports_equal_the_transactions(written: dict[str, list[Path]], name: str) -> None:
    for day, path in zip(DAYS[:2], written[name][:2], strict=True):
        sales = read(name, path, day)
        assert len(sales.receipts) > 50
        revenue = sales.lines[sales.lines["line_type"] != "tip"]
        gross, vat = after_bill_discounts(sales)
        assert gross == sums(sales.z_vat, "vat_code", "gross")
        assert vat == sums(sales.z_vat, "vat_code", "vat")
        assert sums(sales.payments, "payment_type", "amount") == sums(sales.z_payments, "payment_type", "amount")
        assert set(sales.z_vat["register_id"]) == set(sales.receipts["register_id"])
        # Per article group: the lines before bill discounts (those are in reportDiscountAmnt).
        assert sums(revenue, "art_group_id", "gross") == sums(sales.z_art_groups, "art_group_id", "amount")
        # Every receipt balances: lines - bill discount + rounding (+ a cash difference) = payments.
        per_receipt = sales.receipts.set_index("trans_id")
        lines = sales.lines.groupby("trans_id")["gross"].sum().reindex(per_receipt.index, fill_value=0)
        paid = sales.payments.groupby("trans_id")["amount"].sum().reindex(per_receipt.index, fill_value=0)
        difference = per_receipt["amount"].where(per_receipt["trans_code"] == "11008", 0)
        assert ((lines - per_receipt["bill_discount"] + per_receipt["rounding"] + difference - paid) == 0).all()
        assert (per_receipt["amount"] == lines - per_receipt["bill_discount"] + difference).all()
        expected_vat = (revenue["gross"] * revenue["vat_rate_bp"] / (10000 + revenue["vat_rate_bp"])).round()
        assert ((revenue["vat"] - expected_vat).abs() <= 1).all()
        assert (revenue["art_group_code"] != "").all() and (revenue["std_vat_code"] != "").all()


@pytest.mark.parametrize("name", sorted(demo_data.PROFILES))
def test_demo_days_pass_every_validation_rule(written: dict[str, list[Path]], name: str) -> None:
    profile = demo_data.PROFILES[name]
    context = DayContext(day_start_hour=profile.day_start_hour, organisation_number=ORGNR)
    for day, path in zip(DAYS, written[name], strict=True):
        report = validate_day(read(name, path, day), context)
        assert report.success, report.issues()
        assert not report.not_checked, [c.message for c in report.not_checked]
        if day.weekday() != 6 or name != "shop":
            assert {"file_belongs_to_vendor", "z_grand_total", "receipt_numbering", "codes_declared"} <= {
                c.rule for c in report.checks
            }


@pytest.mark.parametrize("name", sorted(demo_data.PROFILES))
def test_z_reports_written_net_the_2021_way_read_the_same(tmp_path: Path, name: str) -> None:
    """The same day written with cashSaleAmnt net of VAT (Skatteetaten's 2021 way) reads to the
    same frames: each Z report is read as it is written, decided from its own totals."""
    day = DAYS[0]
    gross_file = demo_data.write_day(name, ORGNR, "Demo AS", day, tmp_path / "gross")
    net_file = demo_data.write_day(name, ORGNR, "Demo AS", day, tmp_path / "net", z_amounts="net")
    assert gross_file.read_bytes() != net_file.read_bytes()
    as_gross, as_net = read(name, gross_file, day), read(name, net_file, day)
    assert set(as_gross.z_reports["amounts"]) == {"gross"} and set(as_net.z_reports["amounts"]) == {"net"}
    pd.testing.assert_frame_equal(as_gross.z_vat.drop(columns="amount"), as_net.z_vat.drop(columns="amount"))
    assert (as_net.z_vat["amount"] == as_net.z_vat["gross"] - as_net.z_vat["vat"]).all()
    context = DayContext(day_start_hour=demo_data.PROFILES[name].day_start_hour, organisation_number=ORGNR)
    assert validate_day(as_net, context).success


def test_new_features_are_exercised(written: dict[str, list[Path]]) -> None:
    shop = read("shop", written["shop"][0], DAYS[0])
    discounted = shop.receipts[shop.receipts["bill_discount"] > 0]
    assert len(discounted) > 0
    mixed = shop.lines[shop.lines["trans_id"].isin(discounted["trans_id"])].groupby("trans_id")["std_vat_code"]
    assert (mixed.nunique() == 2).all()  # goods 25 % and food 15 % on every discounted bill
    credit = shop.receipts[shop.receipts["trans_code"] == "11002"]
    assert len(credit) > 0 and (credit["customer_id"].isin(["K1001", "K1002"])).all()
    credit_paid = shop.payments[shop.payments["trans_id"].isin(credit["trans_id"])]
    assert set(credit_paid["payment_code"]) == {"12006"}  # on account: the receivable
    assert set(shop.receipts[shop.receipts["customer_id"] != ""]["trans_code"]) == {"11002"}
    cafe = read("cafe", written["cafe"][0], DAYS[0])
    assert set(cafe.lines["cost_centre"]) == {"SALONG", "DISK"}
    assert set(zip(cafe.lines["cost_centre"], cafe.lines["vat_code"], strict=True)) == {("SALONG", "1"), ("DISK", "2")}
    # A cash difference now and then: no lines, its amount paid (or taken) in cash, last of the day.
    differences = []
    for name, paths in written.items():
        for day, path in zip(DAYS, paths, strict=True):
            sales = read(name, path, day)
            diff = sales.receipts[sales.receipts["trans_code"] == "11008"]
            differences.append(len(diff))
            assert not sales.lines["trans_id"].isin(diff["trans_id"]).any()
            for row in diff.itertuples():
                paid = sales.payments[sales.payments["trans_id"] == row.trans_id]
                assert list(paid["payment_code"]) == ["12001"] and int(paid["amount"].sum()) == row.amount
                register = sales.receipts[sales.receipts["register_id"] == row.register_id]
                assert row.nr == register["nr"].max()
    assert 0 < sum(differences) < len(differences)


def test_period_file_holds_every_day(tmp_path: Path, written: dict[str, list[Path]]) -> None:
    path = demo_data.write_period("shop", ORGNR, "Demo shop AS", DAYS[0], DAYS[-1], tmp_path / "period.xml")
    validate_file(path)
    assert list_business_days(path) == [DAYS[0], DAYS[1]]  # Sunday: closed
    for day, single in zip(DAYS, written["shop"], strict=True):
        from_period, from_day = read("shop", path, day), read("shop", single, day)
        for frame_name, frame in from_day.frames().items():
            if frame_name in ("headers", "numbers"):  # the file's name and its series span other days
                continue
            pd.testing.assert_frame_equal(from_period.frames()[frame_name], frame, obj=f"{day} {frame_name}")


def test_transaction_numbers_are_gap_free_across_days(written: dict[str, list[Path]]) -> None:
    for name, paths in written.items():
        last: dict[str, int] = {}
        for day, path in zip(DAYS, paths, strict=True):
            sales = read(name, path, day)
            for register, group in sales.receipts.groupby("register_id"):
                numbers = sorted(group["nr"])
                assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), (name, day)
                assert group.sort_values("nr")["timestamp"].is_monotonic_increasing
                if register in last:
                    assert numbers[0] == last[register] + 1, (name, day, register)
                last[register] = numbers[-1]
            assert sales.receipts["trans_id"].is_unique


def test_cafe_sells_one_article_group_at_two_rates(written: dict[str, list[Path]]) -> None:
    sales = read("cafe", written["cafe"][0], DAYS[0])
    coffee = sales.lines[sales.lines["art_group_id"] == "KAFFE"]
    assert set(coffee["vat_rate_bp"]) == {1500, 2500}
    assert set(coffee["std_vat_code"]) == {"3", "31"}
    assert set(coffee["art_group_code"]) == {"04012"}
    assert {"12001", "12002", "12011"} <= set(sales.payments["payment_code"])


def test_bar_tips_are_not_revenue(written: dict[str, list[Path]]) -> None:
    sales = read("bar", written["bar"][1], DAYS[1])
    tips = sales.lines[sales.lines["line_type"] == "tip"]
    assert len(tips) > 0
    assert (tips["vat"] == 0).all() and set(tips["vat_code"]) == {""} and set(tips["art_group_id"]) == {""}
    assert "" not in set(sales.z_vat["vat_code"])  # Z VAT totals hold sales only
    # Tips ride on card payments: those receipts' card payment covers the sale plus the tip.
    tipped = sales.payments[sales.payments["trans_id"].isin(tips["trans_id"])]
    assert set(tipped["payment_code"]) <= {"12002", "12003"}
    z_tips = sum(
        int(t.replace(".", ""))
        for t in etree.parse(str(written["bar"][1])).xpath("//s:reportTip/s:tipAmnt/text()", namespaces=NS)
    )
    assert z_tips == tips["gross"].sum()
    # Sales run past midnight and the Z reports come after them.
    local = sales.receipts["timestamp"].dt.tz_convert("Europe/Oslo")
    assert (local.dt.date == DAYS[1] + dt.timedelta(days=1)).any()


def test_bar_spring_forward_night(tmp_path: Path) -> None:
    # Clocks jump from 02:00 to 03:00 on Sunday 2026-03-29: no sale may carry a time that never was.
    saturday = dt.date(2026, 3, 28)
    path = demo_data.write_day("bar", ORGNR, "Baren AS", saturday, tmp_path)
    validate_file(path)
    text = path.read_text(encoding="utf-8")
    assert "<transDate>2026-03-29</transDate><transTime>02:" not in text
    sales = read("bar", path, saturday)
    assert len(sales.receipts) > 0 and len(sales.z_vat) == 2
    oslo = ZoneInfo("Europe/Oslo")
    for event in etree.parse(str(path)).iterfind(".//s:event", NS):
        when = dt.datetime.fromisoformat(
            f"{event.findtext('s:eventDate', namespaces=NS)}T{event.findtext('s:eventTime', namespaces=NS)}"
        )
        register = event.findtext("s:eventReport/s:registerID", namespaces=NS)
        sold = sales.receipts[sales.receipts["register_id"] == register]["timestamp"]
        assert when.replace(tzinfo=oslo) > sold.max()  # the Z report comes after the last sale


def test_shop_returns_gift_cards_and_rounding(written: dict[str, list[Path]]) -> None:
    sales = read("shop", written["shop"][0], DAYS[0])
    returns = sales.lines[sales.lines["line_type"] == "return"]
    assert len(returns) > 0 and (returns["gross"] < 0).all() and (returns["vat"] <= 0).all()
    return_receipts = sales.receipts[sales.receipts["trans_id"].isin(returns["trans_id"])]
    assert set(return_receipts["trans_code"]) == {"11006"} and (return_receipts["amount"] < 0).all()
    assert (sales.payments[sales.payments["trans_id"].isin(returns["trans_id"])]["amount"] < 0).all()
    gift_sold = sales.lines[sales.lines["art_group_id"] == "GAVEKORT"]
    assert len(gift_sold) > 0
    assert set(zip(gift_sold["vat_code"], gift_sold["std_vat_code"], gift_sold["vat_rate_bp"], strict=True)) == {
        ("5", "6", 0)
    }
    assert (gift_sold["vat"] == 0).all() and (gift_sold["net"] == gift_sold["gross"]).all()
    assert "12005" in set(sales.payments["payment_code"])  # gift cards redeemed as payment
    cash = sales.payments[sales.payments["payment_code"] == "12001"]
    assert (cash["amount"] % 100 == 0).all()  # cash in whole kroner
    rounded = sales.receipts[sales.receipts["rounding"] != 0]
    assert len(rounded) > 0 and rounded["rounding"].abs().max() <= 50
    assert set(rounded["trans_id"]) <= set(cash["trans_id"])


def test_shop_is_closed_on_sunday(written: dict[str, list[Path]]) -> None:
    sunday = read("shop", written["shop"][2], DAYS[2])
    assert sunday.is_empty()
    assert sunday.headers is not None and list(sunday.headers["company_ident"]) == [ORGNR]  # the file is there


def test_same_day_gives_identical_bytes(tmp_path: Path) -> None:
    for name in demo_data.PROFILES:
        first = demo_data.write_day(name, ORGNR, "Demo AS", DAYS[1], tmp_path / "a", receipts=30)
        second = demo_data.write_day(name, ORGNR, "Demo AS", DAYS[1], tmp_path / "b", receipts=30)
        assert first.name == second.name
        assert first.read_bytes() == second.read_bytes()
        other = demo_data.write_day(name, "998877665", "Demo AS", DAYS[1], tmp_path / "c", receipts=30)
        assert other.read_bytes() != first.read_bytes()
    assert not list(tmp_path.rglob("*.partial"))


def test_large_day_streams_valid_xml(tmp_path: Path) -> None:
    path = demo_data.write_large_day(tmp_path / "large.xml", DAYS[0], receipts=1500)
    validate_file(path)
    sales = read_day(path, "large", DAYS[0])
    assert len(sales.receipts) == 1500
    assert len(sales.lines) >= 4 * len(sales.receipts)
    assert after_bill_discounts(sales)[0] == sums(sales.z_vat, "vat_code", "gross")


def test_unknown_profile() -> None:
    with pytest.raises(ValueError, match="unknown demo profile"):
        demo_data.write_day("spa", ORGNR, "Spa AS", DAYS[0], Path("/nonexistent"))
