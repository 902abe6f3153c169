"""Run the benchmarks and write docs/benchmarks.md.

Parse time: a DagBag of the dags folder with N generated vendor files, against a reference of N
DAGs of the same task shape built from constants, both parsed in fresh processes in this run.
A large day (benchmarks/large_day.py) and API calls per voucher per ledger (benchmarks/ledger_calls.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "docs" / "benchmarks.md"

_PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "dags": len(bag.dag_ids), "errors": len(bag.import_errors)}))
"""


def _vendor_yaml(i: int, template: str) -> str:
    days = ["mon,tue,wed,thu,fri,sat,sun", "mon,tue,wed,thu,fri", "tue,wed,thu,fri,sat,sun"][i % 3]
    return (
        template.replace("id: cafe_solsiden", f"id: vendor_{i:05d}")
        .replace("name: Café Solsiden", f"name: Vendor {i}")
        .replace("days: [mon, tue, wed, thu, fri, sat, sun]", f"days: [{days}]")
        .replace('time: "02:30"', f'time: "0{i % 6}:{i % 60:02d}"')
        .replace("path: saft/cafe_solsiden", f"path: saft/vendor_{i:05d}")
    )


def _parse(dags: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PARSE, str(dags)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_benchmark(n: int, repeats: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="kassebro-bench-"))
    try:
        config = work / "config"
        shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
        shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
        (config / "vendors").mkdir()
        template = (PROJECT / "config" / "vendors" / "cafe_solsiden.yaml").read_text(encoding="utf-8")
        for i in range(n):
            (config / "vendors" / f"vendor_{i:05d}.yaml").write_text(_vendor_yaml(i, template), encoding="utf-8")
        ours, ref = work / "dags", work / "ref_dags"
        ours.mkdir()
        ref.mkdir()
        shutil.copy2(PROJECT / "dags" / "vendor_postings.py", ours / "vendor_postings.py")
        shutil.copy2(PROJECT / "benchmarks" / "reference_dags.py", ref / "reference_dags.py")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "KASSEBRO_CONFIG": str(config),
            "KASSEBRO_BENCH_N": str(n),
        }
        runs: dict[str, list[dict]] = {"kassebro": [], "reference": []}
        for _ in range(repeats):  # interleaved, so drift on the machine hits both alike
            runs["reference"].append(_parse(ref, env))
            runs["kassebro"].append(_parse(ours, env))
        for name, results in runs.items():
            assert all(r["dags"] == n and r["errors"] == 0 for r in results), (name, results)
        ours_s = statistics.median(r["seconds"] for r in runs["kassebro"])
        ref_s = statistics.median(r["seconds"] for r in runs["reference"])
        return {
            "n": n,
            "repeats": repeats,
            "kassebro_s": ours_s,
            "reference_s": ref_s,
            "ratio": ours_s / ref_s,
            "kassebro_runs": [round(r["seconds"], 3) for r in runs["kassebro"]],
            "reference_runs": [round(r["seconds"], 3) for r in runs["reference"]],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def calls_section(calls: list[dict]) -> str:
    """The calls-per-voucher table (benchmarks/ledger_calls.py)."""
    days = calls[0]["days"]
    rows = "\n".join(
        f"| {c['system']} | {c['vendor']} | {c['post_cold']} | {c['post_warm']:.1f} | {c['verify_mean']:.1f} | "
        f"{' → '.join(f'`{x}`' for x in c['warm_sequence'])} |"
        for c in calls
    )
    return f"""
## API calls per posted voucher, per ledger system
The demo vendor of each system, {days} business days, its sandbox over HTTP; every day gets a
fresh client from the Airflow hook, as each task does, sharing the run's lookup cache
(`benchmarks/ledger_calls.py`). *Post* is the post task (auth, duplicate check, post; day 1
also fills the cache); *verify* is the read-back task. Target: at most 3 per post.

| system | vendor | post, day 1 | post, later days | verify | a later day's post |
|---|---|---:|---:|---:|---|
{rows}
"""


def large_section(large: dict) -> str:
    """The large day: the one path against the floor, and the build against DuckDB."""
    verdict = (
        "passed every rule with the vendor's default settings"
        if large["validate_ok"]
        else ("was HELD BACK: " + "; ".join(large["failed"]))
    )
    return f"""
## A large day ({large["receipts"]:,} receipts, {large["lines"]:,} lines, {large["registers"]} registers)
One SAF-T Cash Register file of {large["file_mb"]:.0f} MB (`demo_data.write_large_day`, shop profile,
the demo shop's organisation number), taken through the one path the DAG takes
(`verdict.evaluate_day`: read with schema validation, every validation and booking rule, the
voucher) with the shop's own settings, in a fresh process; GX's import and its suites are a fixed
cost of the process, paid before timing. The day {verdict} ({large["rules"]} rules).

The floor, on the same file in the same run: lxml `iterparse` streaming it with the same XSD
(entities, DTDs and network off), taking each line's article group, VAT code and amount, and a
pandas group-by of revenue per (article group, VAT code) (`benchmarks/large_day.py`; the better
of a run before and one after kassebro's).

| | seconds (median) | runs |
|---|---:|---|
| floor | {large["floor_s"]:.2f} | {large["floor_runs"]} |
| kassebro, the whole day (`evaluate_day`) | {large["total_s"]:.2f} | {large["total_runs"]} |
| **kassebro / floor** | **{large["floor_ratio"]:.2f}** (target ≤ 1.5) | per round {large["ratio_runs"]} |

The ratio is the median of the rounds' ratios; each round runs the floor and kassebro one after the
other in fresh processes, since this machine's speed drifts by a third from minute to minute. The
parts, timed apart in another process: read (streaming, XSD-validated) {large["read_s"]:.2f} s,
validate (every rule, Great Expectations) {large["validate_s"]:.2f} s, build {large["build_s"]:.3f} s.

Peak RSS: kassebro {large["peak_rss_mb"]:.0f} MB (target < 500 MB; GX alone is about 170 MB of it),
floor {large["floor_rss_mb"]:.0f} MB. {large["lines_per_s"]:,.0f} lines/s.

Where the time goes (py-spy with native frames on this day, and callgrind on a 6,000-line one,
2026-12-03): libxml2's streaming parse with the XSD is the floor's whole cost and about two thirds
of kassebro's; in instructions kassebro's read is 1.38 times the floor's (it takes some twenty
fields a line and the receipts and payments, where the floor takes three). Python's cyclic
garbage collector took a tenth of the read; it is now paused while a day is read and judged.

The build step against DuckDB doing the same aggregation on the same canonical frames (best of 5):
build {large["build_s"]:.3f} s, DuckDB {large["duckdb_s"]:.3f} s, **ratio {large["ratio"]:.2f}** (target ≤ 3).
"""


def folder_section(folder: dict) -> str:
    return f"""
## A day in a folder of a year's exports ({folder["files"]} daily files, {folder["folder_mb"]:.0f} MB)
The café's day read, validated and built from a folder holding only that day's file, and from
one holding the year of daily files before it too (`benchmarks/folder_day.py`). Both folders'
indexes were built first, as the nights before would have ({folder["index_s"]:.1f} s for the
year; a night adds one file). Each figure is a fresh process's best of five evaluations; the median
of three such processes each, interleaved.

| folder | seconds | runs |
|---|---:|---|
| the day alone | {folder["alone_s"]:.3f} | {folder["alone_runs"]} |
| the day after a year | {folder["year_s"]:.3f} | {folder["year_runs"]} |
| **ratio** | **{folder["ratio"]:.2f}** | target ≤ 1.2 |

Files read for the day: {folder["files_read"]} of {folder["files"]}.
"""


def write_results(parse: dict, large: dict | None, calls: list[dict] | None = None, folder: dict | None = None) -> str:
    text = f"""# Benchmarks

Measured by `make bench` on {dt.date.today().isoformat()} ({platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}). Ratios compare against a reference measured in the same run.

## DAG parse time ({parse["n"]:,} vendors)
A `DagBag` of the dags folder with {parse["n"]:,} generated vendor files, against a reference of
{parse["n"]:,} DAGs of the same task shape built from constants with no config loading
(`benchmarks/reference_dags.py`). Median of {parse["repeats"]} fresh-process parses each.

| | seconds | per DAG |
|---|---:|---:|
| kassebro (YAML + pydantic + factory) | {parse["kassebro_s"]:.2f} | {parse["kassebro_s"] / parse["n"] * 1000:.2f} ms |
| reference (constants) | {parse["reference_s"]:.2f} | {parse["reference_s"] / parse["n"] * 1000:.2f} ms |
| **ratio** | **{parse["ratio"]:.2f}** | target ≤ 1.5 |

Runs: kassebro {parse["kassebro_runs"]}, reference {parse["reference_runs"]}.
"""
    if large:
        text += large_section(large)
    if folder:
        text += folder_section(folder)
    if calls:
        text += calls_section(calls)
    RESULTS.write_text(text, encoding="utf-8")
    return text


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendors", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--receipts", type=int, default=30_000, help="size of the large day (0: skip it)")
    parser.add_argument("--folder-days", type=int, default=365, help="daily files before the day (0: skip)")
    parser.add_argument("--call-days", type=int, default=5, help="days posted per ledger system (0: skip)")
    args = parser.parse_args()
    calls = None
    if args.call_days:
        from benchmarks.ledger_calls import run as ledger_calls

        calls = ledger_calls(args.call_days)
    parse = parse_benchmark(args.vendors, args.repeats)
    large = None
    if args.receipts:
        from benchmarks.large_day import run as large_day

        with tempfile.TemporaryDirectory(prefix="kassebro-large-") as work:
            large = large_day(Path(work), args.receipts)
    folder = None
    if args.folder_days:
        from benchmarks.folder_day import run as folder_day

        with tempfile.TemporaryDirectory(prefix="kassebro-folder-") as work:
            folder = folder_day(Path(work), args.folder_days)
    print(write_results(parse, large, calls, folder))
    ok = parse["ratio"] <= 1.5 and (
        large is None
        or (large["ratio"] <= 3 and large["floor_ratio"] <= 1.5 and large["peak_rss_mb"] < 500 and large["validate_ok"])
    )
    ok = ok and (folder is None or folder["ratio"] <= 1.2)
    ok = ok and all(c["post_warm"] <= 3 for c in calls or [])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
