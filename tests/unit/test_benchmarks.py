"""The parse benchmark itself runs (on a few vendors), so `make bench` does not rot."""

from __future__ import annotations

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

    result = run(tmp_path, receipts=300)
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
