"""The integration tier: PostgreSQL (127.0.0.1:5432) as Airflow's metadata DB and as the journal."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


def test_journal_claims_on_postgres(database: str) -> None:
    from kassebro.booking.voucher import Voucher, VoucherLine
    from kassebro.posting.journal import Journal

    journal = Journal(database)
    day = dt.date(2026, 11, 10)
    voucher = Voucher(
        "cafe", day, "kassebro:cafe:2026-11-10", "d", (VoucherLine("1900", 500), VoucherLine("3000", -500, "3"))
    )
    journal.record("cafe", day, "built", external_ref=voucher.external_ref, voucher=voucher)
    results: list[str | None] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        barrier.wait()
        results.append(Journal(database).claim("cafe", day))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    # concurrent first inserts do not break the transaction on PostgreSQL
    inserts = [
        threading.Thread(target=lambda: Journal(database).record("bar", day, "extracted", external_ref="r"))
        for _ in range(4)
    ]
    for t in inserts:
        t.start()
    for t in inserts:
        t.join()
    assert Journal(database).get("bar", day).state == "extracted"


def test_pipeline_with_postgres_metadata_db_and_journal(database: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "KASSEBRO_JOURNAL_URL": database,
        "KASSEBRO_DATA": str(tmp_path / "data"),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(
        [sys.executable, str(HERE / "pipeline_script.py"), str(tmp_path / "home")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["states"] == ["success", "success"]
    assert summary["refs"] == [f"kassebro:cafe_solsiden:2026-11-0{d}" for d in (2, 3, 4)]

    engine = sa.create_engine(database)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT business_day, state FROM kassebro_journal ORDER BY business_day")).all()
        runs = conn.execute(sa.text("SELECT state FROM dag_run WHERE dag_id = 'vendor_cafe_solsiden'")).scalars().all()
    engine.dispose()
    assert [(str(d), s) for d, s in rows] == [(f"2026-11-0{d}", "posted") for d in (2, 3, 4)]
    assert runs == ["success", "success"]  # the runs live in PostgreSQL, Airflow's metadata DB


def test_request_lock_on_postgres_takes_turns_and_gives_up(database: str) -> None:
    """Fiken's one request at a time per company, across hosts: the advisory lock in the journal's
    database, with the checks the file lock passes (tests/unit/test_request_lock.py)."""
    from tests.unit.test_request_lock import gives_up_after, held_in_turn

    held_in_turn(database)
    gives_up_after(database)
