"""Folder benchmark: the day after a year of daily SAF-T exports costs what the day alone costs.

A vendor's source is a folder of daily files that grows every night. The same business day is
read, validated and built (`verdict.evaluate_day`, the DAG's path) twice: from a folder holding
only that day's file, and from one holding the year of daily files before it as well. Both
folders' indexes are built first, as the nights before would have (each night summarises one new
file). Each measurement runs in a fresh process (the best of five evaluations after a first that
builds GX's suites), the two interleaved three times; the ratio of the medians is the figure
(target at most 1.2).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VENDOR = "cafe_solsiden"
DAY = dt.date(2026, 11, 20)


def _vendor():
    from kassebro.config import load_vendor

    return load_vendor(VENDOR, PROJECT / "config")


def step_day(folder: str, journal: str, repeats: int = 5) -> dict:
    """Evaluate DAY from `folder` through its index (built already): the best of `repeats` runs."""
    os.environ["KASSEBRO_JOURNAL_URL"] = journal
    from kassebro.booking.verdict import evaluate_day

    vendor = _vendor()
    import great_expectations  # noqa: F401 - a fixed cost of the process, not of the day

    evaluate_day(vendor, DAY, folder)  # the first builds GX's suites: a fixed cost of the process too
    times = []
    for _ in range(repeats):  # the best of a few: half a second is easily doubled by the machine's drift
        t0 = time.perf_counter()
        verdict = evaluate_day(vendor, DAY, folder)
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "held_back": verdict.held_back, "files_read": verdict.report.source.count(".xml")}


def _child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.folder_day", *args], capture_output=True, text=True, cwd=PROJECT, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(work: Path, days: int = 365, rounds: int = 3) -> dict:
    from kassebro.demo import home as demo
    from kassebro.demo.data import write_day
    from kassebro.sources.file_index import FileIndex

    vendor = _vendor()
    who = demo.demo_vendor(VENDOR)
    alone, year = work / "alone", work / "year"
    for folder in (alone, year):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    t = time.perf_counter()
    write_day(who.profile, vendor.org_number or "", who.company, DAY, alone)
    for n in range(days, -1, -1):
        write_day(who.profile, vendor.org_number or "", who.company, DAY - dt.timedelta(days=n), year)
    write_s = time.perf_counter() - t
    journal = f"sqlite:///{work / 'journal.sqlite'}"
    t = time.perf_counter()
    index = FileIndex(journal)
    for folder in (alone, year):
        index.select(folder, DAY, vendor.day_start_hour)
    index_s = time.perf_counter() - t
    timings: dict[str, list[float]] = {"alone": [], "year": []}
    results = {}
    for _ in range(rounds):
        for name, folder in (("alone", alone), ("year", year)):
            results[name] = _child("day", str(folder), journal)
            timings[name].append(results[name]["seconds"])
    assert not results["alone"]["held_back"] and not results["year"]["held_back"], results
    alone_s, year_s = statistics.median(timings["alone"]), statistics.median(timings["year"])
    return {
        "days": days + 1,
        "files": len(list(year.iterdir())),
        "folder_mb": sum(p.stat().st_size for p in year.iterdir()) / 1e6,
        "write_s": write_s,
        "index_s": index_s,
        "alone_s": alone_s,
        "year_s": year_s,
        "ratio": year_s / alone_s,
        "files_read": results["year"]["files_read"],
        "alone_runs": [round(x, 2) for x in timings["alone"]],
        "year_runs": [round(x, 2) for x in timings["year"]],
    }


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "day":
        print(json.dumps(step_day(*rest)))
    else:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="kassebro-folder-") as tmp:
            print(json.dumps(run(Path(tmp), days=int(kind))))
