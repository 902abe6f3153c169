"""The POS database source on the machine's PostgreSQL: a fresh database per test, dropped after."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from kassebro.core.errors import SourceError
from kassebro.demo import data as demo_data
from kassebro.demo.pos import build_demo_pos, demo_identity
from kassebro.sources import saft, sql
from tests.unit.test_sql_source import assert_same_day

pytestmark = pytest.mark.integration


def _saft(tmp_path: Path, profile: str, vendor_id: str, first: dt.date, last: dt.date) -> Path:
    orgnr, company = demo_identity(vendor_id)
    demo_data.write_range(profile, orgnr, company, first, last, tmp_path / profile)
    return tmp_path / profile


def test_demo_pos_on_postgres_reads_like_the_saft_export(database: str, tmp_path: Path) -> None:
    first, last = dt.date(2026, 11, 2), dt.date(2026, 11, 4)
    build_demo_pos(database, "cafe_solsiden", first, last, "cafe")
    files = _saft(tmp_path, "cafe", "cafe_solsiden", first, last)
    day = first
    while day <= last:
        got = sql.read_day(database, "cafe_solsiden", day)
        assert_same_day(got, saft.read_day(files, "cafe_solsiden", day))
        assert got.source == database
        day += dt.timedelta(days=1)


def test_bar_in_a_named_schema_across_dst_whatever_the_session_time_zone(database: str, tmp_path: Path) -> None:
    """Tables in schema "pos", a session in New York time: timestamptz still compares as instants."""
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA pos"))
    first, last = dt.date(2026, 10, 24), dt.date(2026, 10, 25)
    build_demo_pos("", "bar_nattugla", first, last, "bar", schema="pos", engine=engine)
    engine.dispose()
    files = _saft(tmp_path, "bar", "bar_nattugla", first, last)
    new_york = sa.create_engine(database, connect_args={"options": "-c timezone=America/New_York"})
    try:
        for day in (first, last):
            got = sql.read_day("", "bar_nattugla", day, day_start_hour=5, schema="pos", engine=new_york)
            assert_same_day(got, saft.read_day(files, "bar_nattugla", day, day_start_hour=5))
            assert got.source.endswith("(schema pos)")
        with pytest.raises(SourceError, match="table receipts is missing"):
            sql.read_day("", "bar_nattugla", first, engine=new_york)  # the default schema is empty
    finally:
        new_york.dispose()


def test_wrong_password_is_not_shown(database: str) -> None:
    url = sa.make_url(database).set(username="kassebro_nobody", password="secret-pw")
    with pytest.raises(SourceError) as info:
        sql.read_day(url.render_as_string(hide_password=False), "v", dt.date(2026, 11, 3))
    assert "secret-pw" not in str(info.value)
    assert info.value.issues[0].rule == "pos_database"
