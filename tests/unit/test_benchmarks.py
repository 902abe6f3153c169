"""The parse benchmark itself runs (on a few vendors), so `make bench` does not rot."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_parse_benchmark_runs_on_a_few_vendors() -> None:
    from benchmarks.run import parse_benchmark

    result = parse_benchmark(n=5, repeats=1)  # asserts every vendor and reference DAG loaded without errors
    assert result["n"] == 5 and result["kassebro_s"] > 0 and result["reference_s"] > 0


@pytest.mark.slow
def test_large_day_benchmark_runs_on_a_small_day(tmp_path) -> None:
    from benchmarks.large_day import run
    from benchmarks.run import large_section

    result = run(tmp_path, receipts=300, rounds=1)
    assert result["receipts"] == 300 and result["lines"] >= 900 and result["registers"] == 10
    assert result["validate_ok"] and result["failed"] == [] and result["voucher_lines"] > 0
    assert result["build_s"] > 0 and result["duckdb_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["floor_s"] > 0 and result["floor_ratio"] > 0
    assert "kassebro / floor" in large_section(result)


@pytest.mark.slow
def test_folder_benchmark_runs_on_a_few_days(tmp_path) -> None:
    from benchmarks.folder_day import run
    from benchmarks.run import folder_section

    result = run(tmp_path, days=3, rounds=1)
    assert result["files"] == 4 and result["files_read"] == 1
    assert result["alone_s"] > 0 and result["year_s"] > 0
    assert "the day after a year" in folder_section(result)


@pytest.mark.slow
def test_calls_per_voucher_benchmark_runs_for_every_system() -> None:
    from benchmarks.ledger_calls import VENDORS, run
    from benchmarks.run import calls_section

    results = run(days=2)
    assert [r["system"] for r in results] == list(VENDORS)
    for r in results:
        assert r["post_cold"] >= r["post_warm"] > 0 and r["verify_mean"] > 0
        assert any("POST" in call for call in r["warm_sequence"])  # the voucher itself was posted
    assert "| tripletex |" in calls_section(results)


@pytest.mark.slow
def test_readback_benchmark_runs_on_a_small_year() -> None:
    from benchmarks.readback import readback
    from benchmarks.run import readback_section

    result = readback(postings=2_500, rounds=1)  # checks the read-back itself: counts, balances, sums
    assert result["postings"] == 2_500 and result["vouchers"] == 250
    assert result["posting_pages"] == 3 and result["call_count"] == 4  # a session and three pages
    assert result["calls_per_1000"] == pytest.approx(4 / 2.5)
    assert result["postings_s"] > 0 and result["raw_s"] > 0 and result["ratio"] > 0
    assert result["replay_s"] > 0 and result["raw_replay_s"] > 0 and 0 < result["server_share"] < 1
    assert result["balances_calls"] == {"POST /token/session/:create": 1, "GET /balanceSheet": 1}
    assert "kassebro / reference" in readback_section(result)


@pytest.mark.slow
def test_reconcile_benchmark_runs_on_a_few_vendor_days(tmp_path) -> None:
    from benchmarks.readback import reconcile
    from benchmarks.run import reconcile_section

    result = reconcile(vendors=3, days=5, work=tmp_path)  # clean: no finding; planted: exactly those
    assert result["vendor_days"] == 15 and result["vouchers"] == 15 and result["postings"] == 15 * 7
    assert result["planted"] == ["changed", "duplicated", "missing", "unbalanced"]
    assert result["reconcile_s"] > 0 and result["reference_s"] > 0 and result["ratio"] > 0
    assert result["rules_s"] > 0 and result["reads_s"] > 0 and result["planted_s"] > 0
    assert "reconciliation / reference" in reconcile_section(result)


@pytest.mark.slow
def test_webshop_benchmark_runs_on_a_few_orders() -> None:
    from benchmarks.run import webshop_section
    from benchmarks.webshop import run

    result = run(count=30, rounds=1)  # checks the backfill: every order once, amounts, a quiet second run
    assert result["orders"] == 30 and result["seconds"] > 0 and result["reference_s"] > 0
    assert 2 <= result["order_calls_per_order"] <= 3 and result["once"] == 4
    assert not any(k.startswith(("POST", "PUT")) for k in result["second_run"])
    assert sum(result["transfers"].values()) == 30
    assert "kassebro / reference" in webshop_section(result)


def test_unmeasured_sections_keep_their_text(tmp_path, monkeypatch) -> None:
    from benchmarks import run

    monkeypatch.setattr(run, "RESULTS", tmp_path / "benchmarks.md")
    parse = {"n": 5, "repeats": 1, "kassebro_s": 1.0, "reference_s": 1.0, "ratio": 1.0}
    run.write_results({**parse, "kassebro_runs": [1.0], "reference_runs": [1.0]}, None)
    first = run.RESULTS.read_text(encoding="utf-8")
    folder = {"files": 4, "folder_mb": 1.0, "index_s": 0.1, "alone_s": 0.4, "year_s": 0.4}
    folder |= {"alone_runs": [0.4], "year_runs": [0.4], "ratio": 1.0, "files_read": 1}
    text = run.write_results(None, None, folder=folder)
    assert run.parse_section({**parse, "kassebro_runs": [1.0], "reference_runs": [1.0]}) in text
    assert "## A day in a folder" in text and "This run measured: folder." in text
    assert text.index("## DAG parse time") < text.index("## A day in a folder")
    assert first.split("\n## ")[1] == text.split("\n## ")[1]


def test_night_gives_every_generated_duett_vendor_its_own_slot(tmp_path) -> None:
    """bench-night's Duett vendors share one client; their slots are set as a chain would set them."""
    import datetime as dt

    from benchmarks.night import duett_slots, write_home
    from kassebro.config import load_vendors
    from kassebro.ledgers.duett import connection_numbering

    write_home(tmp_path, 12, dt.date(2026, 3, 1))
    duett = {v.id for v in load_vendors(tmp_path / "config").vendors if v.ledger.system == "duett"}
    slots = duett_slots(12)
    assert set(slots) == duett and len(duett) == 2
    assert connection_numbering({"vendor_slots": slots})["vendor_slots"] == slots  # distinct, in range


def test_the_night_breakdown_sets_our_steps_apart_from_airflows_share() -> None:
    from benchmarks.run import night_section

    def night(kind: str, components: dict, steps: dict, parallelism: int = 32) -> dict:
        return {
            "kind": kind, "executor": "local", "n": 10, "parallelism": parallelism, "workers": 0,
            "window_s": 50.0, "vendor_days_per_min": 12.0, "task_seconds_per_vendor_day": 3.0,
            "cpu_s_per_vendor_day": sum(components.values()), "runs": 10, "runs_failed": 0,
            "task_instances": 30, "tis_not_success": 0, "hosts": ["scheduler"], "median_task_s": {},
            "health": {"max_s": 0.3, "over_limit": 0, "slow": []},
            "cpu_s_per_vendor_day_by_component": components, "steps_per_vendor_day": steps,
        }  # fmt: skip

    floor = night("floor", {"scheduler": 0.5, "task processes": 0.5}, {})
    step = {"count": 1, "again": 0, "cpu_s": 1.0, "before_s": 0.1, "wall_s": 2.0}
    ours = night("kassebro", {"scheduler": 0.7, "task processes": 2.3}, {"prepare": step})
    other = night("kassebro", {"scheduler": 9.0, "task processes": 9.0}, {"prepare": step}, parallelism=8)
    text = night_section([floor, ours, other])
    assert "| all | 3.00 | 1.00 | +2.00 |" in text
    assert (
        "prepare 1.00 (wall 2.00)" in text
        and "2.00 core-s per vendor-day against the floor's 1.00 (the same left out): **2.00x**" in text
    )
    assert "not the journal's queries (the metadata DB's server served them" in text  # nights before its own server
    assert "parallelism 8" not in text.split("Where a vendor-day")[1].split("\n")[0]  # no floor at 8: no breakdown
    # the ledger sandboxes are listed, but their work is not ours: left out of the comparison
    ledgers = night("kassebro", {"ledger sandboxes": 0.5, "scheduler": 0.7, "task processes": 2.3}, {"prepare": step})
    text = night_section([floor, ledgers])
    assert "| ledger sandboxes | 0.50 | 0.00 | +0.50 |" in text and "| all | 3.50 | 1.00 | +2.50 |" in text
    assert "2.00 core-s per vendor-day against the floor's 1.00 (the same left out): **2.00x**" in text
    # the journal's own server serves our steps alone: set apart as they are, in the floor's night too
    journal = "journal's PostgreSQL"
    floor_j = night("floor", {"scheduler": 0.4, "task processes": 0.5, journal: 0.1}, {})
    ours_j = night("kassebro", {"scheduler": 0.7, "task processes": 2.3, journal: 0.4}, {"prepare": step})
    text = night_section([floor_j, ours_j])
    assert f"| {journal} | 0.40 | 0.10 | +0.30 |" in text
    assert "Without our steps' own CPU, the journal's own server's (0.40), and the ledger sandboxes'" in text
    assert "the night cost 2.00 core-s per vendor-day against the floor's 0.90 (the same left out): **2.22x**" in text
    kernel = night("kassebro", {"scheduler": 0.7}, {"prepare": {**step, "sys_s": 0.25, "faults": 12345.0}})
    assert "prepare 1.00 (wall 2.00; kernel 0.25, 12,345 page faults)" in night_section([floor, kernel])
    imports = night("kassebro", {"scheduler": 0.7}, {"prepare": {**step, "sys_s": 0.2, "faults": 9.0, "imports": 3.5}})
    assert "prepare 1.00 (wall 2.00; kernel 0.20, 9 page faults, 3.5 modules imported)" in night_section(
        [floor, imports]
    )
    # per second of the window: the same scheduler rate over a night twice as long costs twice as
    # much per vendor-day; over the floor's window it would have cost the floor's
    longer = {**night("kassebro", {"scheduler": 1.0, "task processes": 2.3}, {"prepare": step}), "window_s": 100.0}
    text = night_section([floor, longer])
    assert "ours (the floor's): scheduler 0.10 (0.10); our window is 2.00x the floor's" in text
    assert "cost 1.00 core-s per vendor-day over our window against the floor's 0.50" in text
    assert (
        "the floor's window they would have cost 0.50: so counted, the night without our steps would have cost" in text
    )
    assert "would have cost 1.80 against the floor's 1.00 (1.80x)" in text
    assert "Idle, after the last run" not in text  # nights measured before the idle reading
    # idle after the night: our window's extra 50 s at 0.2 cores is 1.0 core-s per vendor-day of uptime
    idle = {"scheduler": 0.15, "postgresql": 0.05, "the rest of the machine": 0.0}
    text = night_section(
        [{**floor, "idle_cores_by_component": idle}, {**longer, "idle_cores_by_component": idle, "idle_s": 30.0}]
    )
    assert "(30 s, the night's DAGs loaded, nothing to run), Airflow and the machine cost 0.20 cores" in text
    assert "(scheduler 0.15, postgresql 0.05; the floor's 0.20)" in text
    assert "our window's 50 s more than the floor's cost 1.00 core-s per vendor-day" in text
    assert "without our steps cost 1.30 against the floor's 1.00 (**1.30x**)" in text
    # the floor whose tasks spin our steps' CPU: Airflow's share in it against ours
    spun = {**night("floor+work", {"scheduler": 0.9, "task processes": 1.9}, {"prepare": step}), "window_s": 90.0}
    text = night_section([floor, longer, spun])
    assert "(its tasks spin the CPU our steps cost, measured in the same run: prepare 1.00 core-s" in text
    assert "a window of 90 s (ours 100 s), 2.80 core-s per vendor-day" in text
    assert "Airflow's share 1.80 against ours 2.30: **1.28x**" in text
    # Celery nights are told apart by their workers' concurrency (4 before the flag)
    celery = [{**r, "executor": "celery", "workers": 2} for r in (floor, ours)]
    wide = [{**r, "concurrency": 16} for r in celery]
    text = night_section([*celery, *wide])
    assert "Celery, 2 workers x 4, N=10" in text and "Celery, 2 workers x 16, N=10" in text


def test_retry_reasons_are_the_last_error_of_each_attempt_followed_by_another(tmp_path) -> None:
    import json

    from benchmarks.night import retry_reasons

    task = tmp_path / "dag_id=vendor_a" / "run_id=r" / "task_id=plan_days"
    task.mkdir(parents=True)
    failed = {"exc_type": "ReadTimeout", "exc_value": "20 s", "frames": []}
    lines = [
        {"level": "info", "event": "start"},
        {"level": "error", "event": "Task failed with exception", "error_detail": [failed]},
    ]
    (task / "attempt=1.log").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    (task / "attempt=2.log").write_text(json.dumps({"level": "info", "event": "done"}))
    done = tmp_path / "dag_id=vendor_b" / "run_id=r" / "task_id=plan_days"
    done.mkdir(parents=True)
    (done / "attempt=1.log").write_text(json.dumps(lines[1]))  # failed for good: no retry followed
    assert retry_reasons(tmp_path) == {"Task failed with exception: ReadTimeout: 20 s": 1}


def test_the_floors_tasks_wait_in_the_vendor_dags_pools(monkeypatch) -> None:
    """The floor is the same task shape in the same pools: a pool that caps our tasks caps its too."""
    import runpy

    from kassebro.airflow.dagfactory import build_vendor_dags
    from kassebro.config import PROJECT_DIR

    dags: dict = {}
    build_vendor_dags(dags, root=PROJECT_DIR / "config")
    for dag in list(dags.values())[:3]:
        ours = {task.task_id: task.pool for task in dag.tasks}
        monkeypatch.setenv("KASSEBRO_BENCH_N", "1")
        monkeypatch.setenv("KASSEBRO_BENCH_POOLS", ours["day.post"])
        floor = runpy.run_path(str(PROJECT_DIR / "benchmarks" / "reference_dags.py"))["vendor_ref_00000"]
        assert {task.task_id: task.pool for task in floor.tasks} == ours


def test_the_floor_with_work_spins_what_it_is_told_and_logs_it_as_our_steps_do(monkeypatch, capsys) -> None:
    import runpy

    from kassebro.airflow.step_cost import parse

    monkeypatch.setenv("KASSEBRO_TASK_NICE", "0")  # leave the test process's priority alone
    monkeypatch.setenv("KASSEBRO_BENCH_N", "1")
    monkeypatch.setenv("KASSEBRO_BENCH_DAY", "2026-11-03")
    monkeypatch.setenv("KASSEBRO_BENCH_WORK", "post=0.050,plan_days=0")
    floor = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" / "reference_dags.py"))
    assert floor["WORK"] == {"post": 0.05, "plan_days": 0.0}
    floor["_yield_cpu"]("prepare")
    floor["_yield_cpu"]("plan_days")
    assert parse(capsys.readouterr().out) == []  # no work asked: nothing spun, nothing logged
    floor["_yield_cpu"]("post", "vendor_ref_00000")
    (cost,) = parse(capsys.readouterr().out)
    assert (cost.step, cost.vendor, cost.day) == ("post", "vendor_ref_00000", "2026-11-03")  # one a DAG
    assert 0.05 <= cost.cpu_s < 0.5


def test_the_journal_servers_tools_fail_as_a_runtime_error_that_says_what(tmp_path, monkeypatch) -> None:
    """A tool that cannot run or fails must not end a night in a traceback of its own kind: the
    night falls back to the shared server, or keeps its figures when only the stop failed."""
    from benchmarks import pg_cluster

    monkeypatch.setattr(pg_cluster, "_as_owner", lambda argv: argv)  # as a user, not through runuser
    with pytest.raises(RuntimeError, match="pg_ctl"):
        pg_cluster._run([str(tmp_path / "no-such-dir" / "pg_ctl"), "status"])
    failing = tmp_path / "initdb"
    failing.write_text("#!/bin/sh\necho 'initdb: cannot be run as root' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(RuntimeError, match="initdb failed"):
        pg_cluster._run([str(failing)])
