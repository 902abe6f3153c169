"""Late and missing exports through the vendor DAG: the prepare sensor waits (rescheduled, no worker
slot held), fails loudly at the data deadline, and a later scheduled run books late data once."""

from __future__ import annotations

import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

import pytest
import yaml

from kassebro.airflow.dagtest import run_test
from kassebro.posting.journal import Journal

from .conftest import DAYS, Env

pytestmark = pytest.mark.slow

LATE = DAYS[-1] + dt.timedelta(days=2)  # no file is written for it


def _write(env: Env, *days: dt.date) -> None:
    from kassebro.demo.home import write_sales

    data = yaml.safe_load((env.root / "config" / "vendors" / "cafe_solsiden.yaml").read_text())
    write_sales(data, list(days), env.root / "data")


def _set(env: Env, **fields) -> None:
    path = env.root / "config" / "vendors" / "cafe_solsiden.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(fields)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def test_a_missing_export_fails_its_day_loudly_then_a_later_run_books_it_once(pipeline_env: Env) -> None:
    run = pipeline_env.run([DAYS[0], LATE])
    assert run.state == "failed"
    assert [v.external_voucher_number for v in pipeline_env.vouchers()] == [f"kassebro:cafe_solsiden:{DAYS[0]}"]
    entry = Journal().get("cafe_solsiden", LATE)
    assert entry.state == "missing"
    assert entry.message.startswith(f"no sales data for cafe_solsiden {LATE} by ")
    assert entry.message.endswith("is the export running?")
    (prepare,) = [ti for ti in run.get_task_instances() if ti.task_id == "day.prepare" and ti.state == "failed"]
    assert prepare.try_number == 1  # past its deadline: no retries

    # The export comes late. The scheduled run two days on posts its own day and looks again at LATE.
    own = LATE + dt.timedelta(days=1)
    _write(pipeline_env, LATE, own)
    oslo = ZoneInfo("Europe/Oslo")
    dag = pipeline_env.dag()
    run = run_test(dag, logical_date=dt.datetime.combine(own + dt.timedelta(days=1), dt.time(3, 0), oslo))
    assert run.state == "success"
    refs = sorted(v.external_voucher_number for v in pipeline_env.vouchers())
    assert refs == [f"kassebro:cafe_solsiden:{d}" for d in (DAYS[0], LATE, own)]
    assert Journal().get("cafe_solsiden", LATE).state == "posted"


def test_a_day_waits_rescheduled_until_its_data_comes(pipeline_env: Env) -> None:
    today = dt.datetime.now(ZoneInfo("Europe/Oslo")).date()  # its data deadline is hours ahead
    _set(pipeline_env, data_poke_seconds=1)
    # the days between have their exports, so today's receipt numbers follow on without a gap
    first = DAYS[-1] + dt.timedelta(days=2)
    _write(pipeline_env, *(first + dt.timedelta(days=n) for n in range((today - first).days)))

    def export_later() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            entry = Journal().get("cafe_solsiden", today)
            if entry is not None and entry.state == "waiting":
                time.sleep(1.5)  # one more poke finds nothing
                _write(pipeline_env, today)
                return
            time.sleep(0.2)

    writer = threading.Thread(target=export_later)
    writer.start()
    run = pipeline_env.run([today])
    writer.join()
    assert run.state == "success"
    assert [v.external_voucher_number for v in pipeline_env.vouchers()] == [f"kassebro:cafe_solsiden:{today}"]
    (prepare,) = [ti for ti in run.get_task_instances() if ti.task_id == "day.prepare"]
    assert prepare.try_number == 1  # rescheduled, not retried: waiting is not a failure


def test_a_day_the_calendar_has_closed_is_done_without_a_voucher(pipeline_env: Env) -> None:
    _set(pipeline_env, closed_dates=[LATE.isoformat()])
    run = pipeline_env.run([LATE])
    assert run.state == "success" and pipeline_env.vouchers() == []
    assert Journal().get("cafe_solsiden", LATE).state == "closed_calendar"
