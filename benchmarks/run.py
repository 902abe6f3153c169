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


def write_results(parse: dict, large: dict | None, calls: list[dict] | None = None) -> str:
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
        text += f"""
## A large day ({large["receipts"]:,} receipts, {large["lines"]:,} lines)
One SAF-T Cash Register file of {large["file_mb"]:.0f} MB (`demo_data.write_large_day`, shop profile),
read with schema validation, validated (Great Expectations; its import excluded) and built into a
voucher, in a fresh process. Reference: the builder's aggregations done by DuckDB on the same
canonical frames (`benchmarks/large_day.py`); build and DuckDB are best of 5.

| step | seconds |
|---|---:|
| read (lxml, streaming, XSD-validated) | {large["read_s"]:.2f} |
| validate (Great Expectations) | {large["validate_s"]:.2f} |
| build voucher (pandas) | {large["build_s"]:.3f} |
| DuckDB reference for the build | {large["duckdb_s"]:.3f} |
| **build / DuckDB** | **{large["ratio"]:.2f}** (target ≤ 3) |

Read + validate + build: {large["lines_per_s"]:,.0f} lines/s. Peak RSS for the whole day:
{large["peak_rss_mb"]:.0f} MB (target < 1,024 MB). The voucher has {large["voucher_lines"]} lines.
"""
    if calls:
        text += calls_section(calls)
    RESULTS.write_text(text, encoding="utf-8")
    return text


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendors", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--receipts", type=int, default=50_000, help="size of the large day (0: skip it)")
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
    print(write_results(parse, large, calls))
    ok = parse["ratio"] <= 1.5 and (large is None or (large["ratio"] <= 3 and large["peak_rss_mb"] < 1024))
    ok = ok and all(c["post_warm"] <= 3 for c in calls or [])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
