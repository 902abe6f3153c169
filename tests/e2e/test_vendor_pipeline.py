"""The vendor DAG for real: Airflow runs every task against the Tripletex sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest

from kassebro.airflow.dagtest import run_test
from kassebro.posting.journal import Journal
from kassebro.sources.saft import read_day

from .conftest import DAYS, Env

pytestmark = pytest.mark.slow


def z_totals(env: Env, day: dt.date) -> tuple[int, dict[str, int]]:
    """The day's Z report: total sales (gross) and totals per payment type, in øre."""
    sales = read_day(env.root / "data" / "saft" / "cafe_solsiden", "cafe_solsiden", day)
    payments = Counter()
    for row in sales.z_payments.itertuples():
        payments[row.payment_type] += int(row.amount)
    return int(sales.z_vat["gross"].sum()), dict(payments)


def test_three_days_three_balanced_vouchers_equal_to_the_z_reports(pipeline_env: Env) -> None:
    run = pipeline_env.run(DAYS)
    assert run.state == "success"
    vouchers = pipeline_env.vouchers()
    assert sorted(v.external_voucher_number for v in vouchers) == [f"kassebro:cafe_solsiden:{d}" for d in DAYS]
    for voucher in vouchers:
        day = dt.date.fromisoformat(voucher.date)
        assert sum(p.gross for p in voucher.postings if not p.system_generated) == 0
        assert sum(p.amount for p in voucher.postings) == 0  # with Tripletex's own VAT rows
        from kassebro.sandbox.tripletex import CHART

        number = {a.id: str(a.number) for a in CHART}
        rows = [(number[p.account_id], p.gross) for p in voucher.postings if not p.system_generated]
        revenue = -sum(g for a, g in rows if a.startswith("3"))
        cash_difference = sum(g for a, g in rows if a == "7799")  # counted vs expected cash, booked apart
        paid = sum(g for a, g in rows if a.startswith("19"))
        z_sales, z_payments = z_totals(pipeline_env, day)
        assert revenue == z_sales, day
        assert paid == sum(z_payments.values()), day
        assert sum(g for _, g in rows) == 0 and abs(cash_difference) < 100_00
        assert voucher.in_ledger
    entries = Journal().entries("cafe_solsiden")
    assert [(e.business_day, e.state) for e in entries] == [(d, "posted") for d in DAYS]
    assert {e.ledger_id for e in entries} == {str(v.id) for v in vouchers}


def test_exactly_once_after_save_then_drop_and_a_second_run(pipeline_env: Env) -> None:
    pipeline_env.faults.add("save_then_drop", path="/ledger/voucher", method="POST", times=1)
    assert pipeline_env.run(DAYS).state == "success"
    assert len(pipeline_env.vouchers()) == 3
    assert _voucher_posts(pipeline_env) == 3  # the dropped one was found by its reference, not posted again
    dropped = [e for e in Journal().entries("cafe_solsiden") if e.attempts == 2]
    assert len(dropped) == 1 and dropped[0].message == "found in the ledger; not posted again"

    assert pipeline_env.run(DAYS).state == "success"  # the same days again
    assert _voucher_posts(pipeline_env) == 3
    vouchers = pipeline_env.vouchers()
    assert Counter(v.external_voucher_number for v in vouchers) == {f"kassebro:cafe_solsiden:{d}": 1 for d in DAYS}


def _voucher_posts(env: Env) -> int:
    calls = env.sandbox.app.state.calls.list()
    return sum(1 for c in calls if c["method"] == "POST" and c["path"].rstrip("/").endswith("/ledger/voucher"))


def test_a_day_failing_validation_is_not_posted_and_the_next_day_is(pipeline_env: Env) -> None:
    folder = pipeline_env.root / "data" / "saft" / "cafe_solsiden"
    (bad,) = [p for p in folder.iterdir() if _z_date(p) == DAYS[1]]
    text = bad.read_text(encoding="utf-8")
    # break the Z report's card total for the middle day: the receipts no longer match it
    first = re.search(r"(<paymentAmnt>)(\d+\.\d\d)(</paymentAmnt>)", text) or re.search(
        r"(<n1:paymentAmnt>)(\d+\.\d\d)(</n1:paymentAmnt>)", text
    )
    assert first, "the generated file has a Z report payment total"
    broken = f"{float(first.group(2)) + 1:.2f}"
    bad.write_text(text[: first.start(2)] + broken + text[first.end(2) :], encoding="utf-8")
    run = pipeline_env.run(DAYS)
    assert run.state == "failed"
    posted = sorted(v.external_voucher_number for v in pipeline_env.vouchers())
    assert posted == [f"kassebro:cafe_solsiden:{DAYS[0]}", f"kassebro:cafe_solsiden:{DAYS[2]}"]
    entry = Journal().get("cafe_solsiden", DAYS[1])
    assert entry.state == "failed" and "z_payment_totals" in entry.message
    prepare = [ti for ti in run.get_task_instances() if ti.task_id == "day.prepare" and ti.state == "failed"]
    assert len(prepare) == 1 and prepare[0].try_number == 1  # bad data is not retried


def test_dry_run_posts_nothing(pipeline_env: Env) -> None:
    assert pipeline_env.run(DAYS[:1], dry_run=True).state == "success"
    assert pipeline_env.vouchers() == []


def _z_date(path) -> dt.date | None:
    m = re.search(r"reportDate>(\d{4}-\d\d-\d\d)<", path.read_text(encoding="utf-8"))
    return dt.date.fromisoformat(m.group(1)) if m else None


def test_a_run_without_dates_posts_the_days_of_its_data_interval(pipeline_env: Env) -> None:
    from zoneinfo import ZoneInfo

    dag = pipeline_env.dag()
    # a run triggered on 4 Nov at 03:00 Oslo time covers the interval ending 02:30 that morning: 3 Nov
    run = run_test(dag, logical_date=dt.datetime(2026, 11, 4, 3, 0, tzinfo=ZoneInfo("Europe/Oslo")))
    assert run.state == "success"
    assert [v.external_voucher_number for v in pipeline_env.vouchers()] == [f"kassebro:cafe_solsiden:{DAYS[1]}"]


def test_wrong_credentials_fail_at_once_naming_the_credential(
    pipeline_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_TRIPLETEX_DEMO"])
    conn["password"] = "not-the-employee-token"
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEMO", json.dumps(conn))
    run = pipeline_env.run(DAYS[:1])
    assert run.state == "failed"
    (post,) = [ti for ti in run.get_task_instances() if ti.task_id == "day.post"]
    assert post.state == "failed" and post.try_number == 1  # no retries for wrong credentials
    entry = Journal().get("cafe_solsiden", DAYS[0])
    assert entry.state == "failed" and "employee token" in entry.message
    assert "not-the-employee-token" not in entry.message
    assert pipeline_env.vouchers() == []


def test_every_step_logs_what_it_cost(pipeline_env: Env, capfd: pytest.CaptureFixture[str]) -> None:
    """bench-night splits a night's CPU into ours and Airflow's from these lines."""
    from kassebro.airflow.step_cost import parse

    assert pipeline_env.run(DAYS[:2]).state == "success"
    captured = capfd.readouterr()
    costs = parse(captured.out + captured.err)
    assert sorted((c.step, c.day) for c in costs) == sorted(
        [("plan_days", "-")] + [(step, d.isoformat()) for step in ("prepare", "post") for d in DAYS[:2]]
    )
    assert all(c.vendor == "cafe_solsiden" and c.cpu_s > 0 for c in costs)
