"""The POS database source (kassebro.sources.sql) on SQLite: the same sales as the SAF-T export,
business days across DST, voids and training, schema errors and password redaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from kassebro.core.errors import SourceError
from kassebro.core.frames import SalesDay
from kassebro.demo import data as demo_data
from kassebro.demo.pos import build_demo_pos, demo_identity
from kassebro.sources import pos_schema, saft, sql

OSLO = ZoneInfo("Europe/Oslo")
FRAMES = ("lines", "receipts", "payments", "z_vat", "z_payments", "z_art_groups", "skipped")
KEYS = {
    "lines": ["register_id", "trans_id", "line_id"],
    "receipts": ["register_id", "trans_id"],
    "payments": ["register_id", "trans_id", "payment_type", "amount"],
    "z_vat": ["register_id", "report_id", "vat_code"],
    "z_payments": ["register_id", "report_id", "payment_type"],
    "z_art_groups": ["register_id", "report_id", "art_group_id"],
    "skipped": ["register_id", "trans_id"],
}


def assert_same_day(got: SalesDay, expected: SalesDay) -> None:
    """The two readings hold the same rows (order aside) and so the same totals."""
    assert got.business_day == expected.business_day
    for name in FRAMES:
        assert getattr(expected, name) is not None, name
        a = getattr(got, name).sort_values(KEYS[name]).reset_index(drop=True)
        b = getattr(expected, name).sort_values(KEYS[name]).reset_index(drop=True)
        if name == "lines":  # the POS database has no POS-own line type id, only the canonical type
            a, b = a.drop(columns="line_type_id"), b.drop(columns="line_type_id")
        pd.testing.assert_frame_equal(a, b, obj=name)
    # the totals the booking uses, spelled out
    sales = got.lines[got.lines["line_type"] != "tip"]
    ref_sales = expected.lines[expected.lines["line_type"] != "tip"]
    assert (
        sales.groupby("std_vat_code")[["gross", "vat"]]
        .sum()
        .equals(ref_sales.groupby("std_vat_code")[["gross", "vat"]].sum())
    )
    assert (
        got.payments.groupby("payment_code")["amount"]
        .sum()
        .equals(expected.payments.groupby("payment_code")["amount"].sum())
    )
    assert len(got.receipts) == len(expected.receipts)
    assert got.z_vat["gross"].sum() == expected.z_vat["gross"].sum()
    assert got.z_payments["amount"].sum() == expected.z_payments["amount"].sum()


def _saft_dir(tmp_path: Path, profile: str, vendor_id: str, first: dt.date, last: dt.date) -> Path:
    orgnr, company = demo_identity(vendor_id)
    out = tmp_path / f"saft-{profile}"
    demo_data.write_range(profile, orgnr, company, first, last, out)
    return out


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    while first <= last:
        yield first
        first += dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# The demo POS database equals the SAF-T export


def test_demo_pos_database_reads_like_the_saft_export(tmp_path: Path) -> None:
    first, last = dt.date(2026, 11, 2), dt.date(2026, 11, 4)
    url = f"sqlite:///{tmp_path / 'pos.db'}"
    build_demo_pos(url, "cafe_solsiden", first, last, "cafe")
    files = _saft_dir(tmp_path, "cafe", "cafe_solsiden", first, last)
    for day in _days(first, last):
        got = sql.read_day(url, "cafe_solsiden", day)
        expected = saft.read_day(files, "cafe_solsiden", day)
        assert len(got.receipts) > 50
        assert_same_day(got, expected)
        assert got.source == url
        # the Z report's article-group totals are the lines' gross per group (the café gives no bill discounts)
        per_group = got.lines.groupby("art_group_id")["gross"].sum()
        assert got.z_art_groups.set_index("art_group_id")["amount"].sort_index().equals(per_group.sort_index())
        assert set(got.lines["art_group_code"]) <= {"04012", "04006", "04011"}


def test_a_pos_database_day_passes_the_dags_path_with_the_company_not_checked(tmp_path: Path) -> None:
    """The database names no company, has no master data or number series beyond the day: those
    rules say so (or do not apply) instead of failing or passing in silence."""
    from kassebro.booking.verdict import evaluate_day
    from kassebro.config import load_vendor

    day = dt.date(2026, 11, 3)
    url = f"sqlite:///{tmp_path / 'pos.db'}"
    build_demo_pos(url, "bar_nattugla", day, day, "bar")
    vendor = load_vendor("bar_nattugla", Path(__file__).resolve().parents[2] / "config")
    verdict = evaluate_day(vendor, day, url)
    assert not verdict.held_back, verdict.issues()
    (unchecked,) = verdict.report.not_checked
    assert unchecked.rule == "file_belongs_to_vendor" and "names no company" in unchecked.message
    assert "codes_declared" not in {check.rule for check in verdict.report.checks}


def test_bar_across_dst_by_z_report_and_by_time_stamp(tmp_path: Path) -> None:
    """A bar open past midnight (day start 05:00) on both DST nights of 2026: first with Z reports
    holding the receipts, then with no Z links and no business_day (times decide): both equal SAF-T."""
    url = f"sqlite:///{tmp_path / 'pos.db'}"
    ranges = [(dt.date(2026, 10, 24), dt.date(2026, 10, 25)), (dt.date(2026, 3, 28), dt.date(2026, 3, 29))]
    expected: dict[dt.date, SalesDay] = {}
    for index, (first, last) in enumerate(ranges):
        build_demo_pos(url, "bar_nattugla", first, last, "bar")
        files = _saft_dir(tmp_path / str(index), "bar", "bar_nattugla", first, last)
        for day in _days(first, last):
            expected[day] = saft.read_day(files, "bar_nattugla", day, day_start_hour=5)
    # some receipts of each Saturday are after midnight, in the other UTC offset on the DST night
    for day in (dt.date(2026, 10, 24), dt.date(2026, 3, 28)):
        local = expected[day].receipts["timestamp"].dt.tz_convert(OSLO)
        assert (local.dt.date > day).any()
    for day, reference in expected.items():
        assert_same_day(sql.read_day(url, "bar_nattugla", day, day_start_hour=5), reference)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE receipts SET z_report_id = NULL"))
        conn.execute(sa.text("UPDATE z_reports SET business_day = NULL"))
    engine.dispose()
    for day, reference in expected.items():
        assert_same_day(sql.read_day(url, "bar_nattugla", day, day_start_hour=5), reference)


def test_building_twice_gives_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pos.db'}"
    day = dt.date(2026, 11, 3)
    build_demo_pos(url, "butikk_fjord", day, day, "shop")
    once = sql.read_day(url, "butikk_fjord", day)
    build_demo_pos(url, "butikk_fjord", day, day, "shop")
    twice = sql.read_day(url, "butikk_fjord", day)
    files = _saft_dir(tmp_path, "shop", "butikk_fjord", day, day)
    assert_same_day(twice, saft.read_day(files, "butikk_fjord", day))
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(once, name), getattr(twice, name))
    assert (once.lines["line_type"] == "return").any()  # the shop's returns come through
    assert (once.receipts["bill_discount"] > 0).any() and (once.receipts["customer_id"] != "").any()


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo profile"):
        build_demo_pos(f"sqlite:///{tmp_path / 'pos.db'}", "x", dt.date(2026, 1, 1), dt.date(2026, 1, 1), "spa")


# ---------------------------------------------------------------------------------------------
# Hand-made databases


@pytest.fixture
def pos(tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    url = f"sqlite:///{tmp_path / 'pos.db'}"
    engine = sa.create_engine(url)
    md = pos_schema.create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            md.tables["articles"].insert(),
            [
                {"article_id": "1001", "art_group_id": "OL", "art_group_code": "04007", "description": "Pils"},
                {"article_id": "1002", "art_group_id": "04011", "art_group_code": None, "description": "Cola"},
            ],
        )
    yield url, engine
    engine.dispose()


def _sale(
    engine: sa.Engine,
    trans_id: str,
    sold_at: dt.datetime,
    *,
    z: str | None = None,
    void: bool | None = False,
    training: bool | None = False,
    article_id: str | None = "1001",
    gross: int = 9800,
    payment_type: str = "BANK",
    payment_code: str | None = "12002",
    register: str = "BAR-01",
) -> None:
    md = pos_schema.metadata
    with engine.begin() as conn:
        conn.execute(
            md.tables["receipts"].insert(),
            {
                "register_id": register,
                "trans_id": trans_id,
                "nr": int(trans_id.rsplit("-", 1)[-1]),
                "trans_type": "CASHSAL",
                "trans_code": "11001",
                "sold_at": sold_at,
                "amount_ore": gross,
                "void": void,
                "training": training,
                "z_report_id": z,
            },
        )
        conn.execute(
            md.tables["receipt_lines"].insert(),
            {
                "register_id": register,
                "trans_id": trans_id,
                "line_id": "1",
                "line_type": "sale",
                "article_id": article_id,
                "quantity": "1",
                "gross_ore": gross,
                "net_ore": gross - gross // 5,
                "vat_ore": gross // 5,
                "vat_code": "1",
                "std_vat_code": "3",
                "vat_rate_bp": 2500,
            },
        )
        conn.execute(
            md.tables["receipt_payments"].insert(),
            {
                "register_id": register,
                "trans_id": trans_id,
                "payment_no": 1,
                "payment_type": payment_type,
                "payment_code": payment_code,
                "amount_ore": gross,
            },
        )


def _z(engine: sa.Engine, report_id: str, closed_at: dt.datetime, business_day: dt.date | None) -> None:
    md = pos_schema.metadata
    with engine.begin() as conn:
        conn.execute(
            md.tables["z_reports"].insert(),
            {"register_id": "BAR-01", "report_id": report_id, "closed_at": closed_at, "business_day": business_day},
        )
        conn.execute(
            md.tables["z_report_vat"].insert(),
            {
                "register_id": "BAR-01",
                "report_id": report_id,
                "vat_code": "1",
                "std_vat_code": "3",
                "vat_rate_bp": 2500,
                "gross_ore": 9800,
                "vat_ore": 1960,
            },
        )


def _local(*args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=OSLO, fold=fold)


def _trans_ids(url: str, day: dt.date, **kw: object) -> set[str]:
    return set(sql.read_day(url, "bar", day, day_start_hour=5, **kw).receipts["trans_id"])


@pytest.mark.parametrize(
    ("stamps", "days"),
    [
        pytest.param(
            {  # 2026-10-25: 03:00 CEST becomes 02:00 CET, so the business day of the 24th lasts 25 hours
                "BAR-01-1": (_local(2026, 10, 24, 4, 59), dt.date(2026, 10, 23)),
                "BAR-01-2": (_local(2026, 10, 24, 5, 0), dt.date(2026, 10, 24)),
                "BAR-01-3": (_local(2026, 10, 25, 1, 30), dt.date(2026, 10, 24)),
                "BAR-01-4": (_local(2026, 10, 25, 2, 30, fold=0), dt.date(2026, 10, 24)),
                "BAR-01-5": (_local(2026, 10, 25, 2, 30, fold=1), dt.date(2026, 10, 24)),
                "BAR-01-6": (_local(2026, 10, 25, 4, 30), dt.date(2026, 10, 24)),  # 03:30Z: CEST+24h would miss it
                "BAR-01-7": (_local(2026, 10, 25, 5, 0), dt.date(2026, 10, 25)),
            },
            (dt.date(2026, 10, 23), dt.date(2026, 10, 24), dt.date(2026, 10, 25)),
            id="autumn",
        ),
        pytest.param(
            {  # 2026-03-29: 02:00 CET becomes 03:00 CEST, so the business day of the 28th lasts 23 hours
                "BAR-01-1": (_local(2026, 3, 28, 5, 0), dt.date(2026, 3, 28)),
                "BAR-01-2": (_local(2026, 3, 29, 1, 30), dt.date(2026, 3, 28)),
                "BAR-01-3": (_local(2026, 3, 29, 4, 30), dt.date(2026, 3, 28)),
                "BAR-01-4": (_local(2026, 3, 29, 5, 0), dt.date(2026, 3, 29)),
                "BAR-01-5": (_local(2026, 3, 29, 5, 30), dt.date(2026, 3, 29)),  # 03:30Z: CET+24h would take it
            },
            (dt.date(2026, 3, 28), dt.date(2026, 3, 29)),
            id="spring",
        ),
    ],
)
def test_after_midnight_sales_belong_to_the_day_before_across_dst(
    pos: tuple[str, sa.Engine], stamps: dict[str, tuple[dt.datetime, dt.date]], days: tuple[dt.date, ...]
) -> None:
    url, engine = pos
    for trans_id, (stamp, _day) in stamps.items():
        _sale(engine, trans_id, stamp)
    for day in days:
        expected = {trans_id for trans_id, (_stamp, want) in stamps.items() if want == day}
        assert _trans_ids(url, day) == expected, day
    read = sql.read_day(url, "bar", days[-1], day_start_hour=5)
    assert str(read.receipts["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_day_window_is_23_or_25_hours_on_dst_days() -> None:
    autumn = sql.day_window(dt.date(2026, 10, 24), "Europe/Oslo", 5)
    spring = sql.day_window(dt.date(2026, 3, 28), "Europe/Oslo", 5)
    assert autumn == (dt.datetime(2026, 10, 24, 3, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 4, tzinfo=dt.UTC))
    assert spring[1] - spring[0] == dt.timedelta(hours=23)
    with pytest.raises(ValueError):
        sql.day_window(dt.date(2026, 1, 1), "Europe/Oslo", 24)


def test_the_z_report_decides_the_business_day(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    # a Z report that says its day: holds a sale made at 06:00 the next morning
    _z(engine, "Z-1", _local(2026, 10, 25, 6, 30), dt.date(2026, 10, 24))
    _sale(engine, "BAR-01-1", _local(2026, 10, 25, 6, 0), z="Z-1")
    # no business_day: the local date of closed_at minus the day start (03:10 -> the day before)
    _z(engine, "Z-2", _local(2026, 10, 26, 3, 10), None)
    _sale(engine, "BAR-01-2", _local(2026, 10, 25, 23, 0), z="Z-2")
    _z(engine, "Z-3", _local(2026, 10, 27, 5, 10), None)
    _sale(engine, "BAR-01-3", _local(2026, 10, 26, 4, 0), z="Z-3")  # by its time the 25th, by its Z the 27th
    # a dangling z_report_id is read as no Z report: its time decides
    _sale(engine, "BAR-01-4", _local(2026, 10, 25, 12, 0), z=None)
    with engine.begin() as conn:
        conn.execute(sa.text("PRAGMA foreign_keys = OFF"))
        conn.execute(sa.text("UPDATE receipts SET z_report_id = 'Z-404' WHERE trans_id = 'BAR-01-4'"))
    assert _trans_ids(url, dt.date(2026, 10, 24)) == {"BAR-01-1"}
    assert _trans_ids(url, dt.date(2026, 10, 25)) == {"BAR-01-2", "BAR-01-4"}
    assert _trans_ids(url, dt.date(2026, 10, 26)) == set()
    day = sql.read_day(url, "bar", dt.date(2026, 10, 27), day_start_hour=5)
    assert list(day.receipts["trans_id"]) == ["BAR-01-3"]
    assert list(day.z_vat["report_id"]) == ["Z-3"]
    assert day.z_vat["gross"].tolist() == [9800]
    assert day.z_art_groups is not None and day.z_art_groups.empty


def test_void_and_training_receipts_are_left_out(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    noon = _local(2026, 11, 3, 12, 0)
    _sale(engine, "BAR-01-1", noon)
    _sale(engine, "BAR-01-2", noon, void=True)
    _sale(engine, "BAR-01-3", noon, training=True)
    _sale(engine, "BAR-01-4", noon, void=None, training=None)  # NULL: not void
    day = sql.read_day(url, "bar", dt.date(2026, 11, 3))
    assert set(day.receipts["trans_id"]) == {"BAR-01-1", "BAR-01-4"}
    assert set(day.lines["trans_id"]) == {"BAR-01-1", "BAR-01-4"}
    assert set(day.payments["trans_id"]) == {"BAR-01-1", "BAR-01-4"}
    assert day.skipped is not None
    assert day.skipped[["trans_id", "nr", "reason"]].values.tolist() == [
        ["BAR-01-2", 2, "void"],
        ["BAR-01-3", 3, "training"],
    ]


def test_lines_get_articles_and_codes(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    noon = _local(2026, 11, 3, 12, 0)
    _sale(engine, "BAR-01-1", noon)
    _sale(engine, "BAR-01-2", noon, article_id="9999")  # not in articles
    _sale(engine, "BAR-01-3", noon, article_id="1002", payment_type="12001", payment_code=None)
    day = sql.read_day(url, "bar", dt.date(2026, 11, 3))
    lines = day.lines.set_index("trans_id")
    assert (lines.loc["BAR-01-1", "art_group_id"], lines.loc["BAR-01-1", "art_group_code"]) == ("OL", "04007")
    assert lines.loc["BAR-01-1", "description"] == "Pils"
    assert (lines.loc["BAR-01-2", "art_group_id"], lines.loc["BAR-01-2", "description"]) == ("", "")
    assert lines.loc["BAR-01-3", "art_group_code"] == "04011"  # the group id itself is a predefined code
    payments = day.payments.set_index("trans_id")
    assert payments.loc["BAR-01-3", "payment_code"] == "12001"
    assert (payments.loc["BAR-01-3", "currency"], payments.loc["BAR-01-3", "exchange_rate"]) == ("NOK", "1")
    assert day.receipts["customer_id"].tolist() == ["", "", ""]
    assert day.lines["gross"].dtype == "int64"


def test_filters_in_the_database(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    for n in range(1, 31):  # a month of sales, one a day
        _sale(engine, f"BAR-01-{n}", _local(2026, 11, n, 12, 0))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    day = sql.read_day("", "bar", dt.date(2026, 11, 15), engine=engine)
    assert day.receipts["trans_id"].tolist() == ["BAR-01-15"]
    queries = [s for s in statements if s.lstrip().startswith("WITH")]
    assert len(queries) >= 5
    # every query joins the day's Z reports or receipts; the receipts are picked by the UTC window
    assert all("JOIN day_z" in s or "JOIN day_receipts" in s or "FROM day_receipts" in s for s in queries)
    assert all("receipts.sold_at >= ? AND receipts.sold_at < ?" in s for s in queries if "day_receipts AS" in s)


# ---------------------------------------------------------------------------------------------
# Problems


def test_missing_tables_and_columns_are_named_together(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE receipt_payments"))
        conn.execute(sa.text("ALTER TABLE receipt_lines DROP COLUMN vat_ore"))
    with pytest.raises(SourceError) as info:
        sql.read_day(url, "bar", dt.date(2026, 11, 3))
    issues = info.value.issues
    assert {issue.rule for issue in issues} == {"pos_database"}
    assert {issue.source for issue in issues} == {url}
    text = str(info.value)
    assert "receipt_payments is missing (NoSuchTableError)" in text
    assert "receipt_lines lacks column(s) vat_ore" in text


def test_optional_table_and_columns_may_be_left_out(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    _sale(engine, "BAR-01-1", _local(2026, 11, 3, 12, 0))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE z_report_art_groups"))
        for column in ("project", "cost_centre", "discount_ore", "description"):
            conn.execute(sa.text(f"ALTER TABLE receipt_lines DROP COLUMN {column}"))
        conn.execute(sa.text("ALTER TABLE receipts DROP COLUMN bill_discount_ore"))
    day = sql.read_day(url, "bar", dt.date(2026, 11, 3))
    assert day.z_art_groups is None
    assert day.lines[["project", "cost_centre", "description"]].iloc[0].tolist() == ["", "", "Pils"]
    assert day.lines["discount"].tolist() == [0]
    assert day.receipts["bill_discount"].tolist() == [0]


def test_a_view_over_the_vendors_own_table_will_do(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    _sale(engine, "BAR-01-1", _local(2026, 11, 3, 12, 0))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE articles"))
        conn.execute(sa.text("CREATE TABLE vare (varenr TEXT PRIMARY KEY, gruppe TEXT, navn TEXT)"))
        conn.execute(sa.text("INSERT INTO vare VALUES ('1001', 'OL', 'Pils 0,5 l')"))
        conn.execute(
            sa.text(
                "CREATE VIEW articles AS"
                " SELECT varenr AS article_id, gruppe AS art_group_id, navn AS description FROM vare"
            )
        )
    line = sql.read_day(url, "bar", dt.date(2026, 11, 3)).lines.iloc[0]
    assert (line["art_group_id"], line["art_group_code"], line["description"]) == ("OL", "", "Pils 0,5 l")


def test_money_must_be_whole_ore(pos: tuple[str, sa.Engine]) -> None:
    url, engine = pos
    _sale(engine, "BAR-01-1", _local(2026, 11, 3, 12, 0))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE receipt_lines SET gross_ore = 98.5"))
    with pytest.raises(SourceError) as info:
        sql.read_day(url, "bar", dt.date(2026, 11, 3))
    assert [issue.rule for issue in info.value.issues] == ["bad_value"]
    assert "receipt_lines BAR-01 BAR-01-1: gross 98.5 is not a whole number" in str(info.value)


def test_an_unreachable_database_never_shows_the_password() -> None:
    url = "postgresql+psycopg2://u:secret@127.0.0.1:1/x"
    with pytest.raises(SourceError) as info:
        sql.read_day(url, "bar", dt.date(2026, 11, 3))
    text = str(info.value)
    assert "secret" not in text
    assert all("secret" not in issue.source and "secret" not in issue.message for issue in info.value.issues)
    assert info.value.issues[0].rule == "pos_database"
    assert info.value.issues[0].source == "postgresql+psycopg2://u:***@127.0.0.1:1/x"
    assert "OperationalError" in text


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such SQLite database file"):
        sql.read_day(f"sqlite:///{tmp_path / 'nope.db'}", "bar", dt.date(2026, 11, 3))
    assert not (tmp_path / "nope.db").exists()


def test_bad_urls_are_source_errors_without_password() -> None:
    for url in ("nosuchdialect://u:secret@host/x", "postgresql+psycopg2://u:secret@[::1/x"):
        with pytest.raises(SourceError) as info:
            sql.read_day(url, "bar", dt.date(2026, 11, 3))
        assert "secret" not in str(info.value)
    assert sql.redact_url("mysql://user:pa:ss@host/db") == "mysql://user:***@host/db"
