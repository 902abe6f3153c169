"""The fault soak, short: about 100 runs over the five sandboxes with every kind of fault; no day
posted twice, none lost, the journal equal to the ledgers (the full one is `make soak`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.soak]

PROJECT = Path(__file__).resolve().parents[2]


def test_a_short_soak_loses_nothing_and_posts_nothing_twice(tmp_path: Path) -> None:
    figures_path = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "soak.run", "--runs", "100", "--days", "5", "--seconds", "480", "--parallel", "3"]
        + ["--json", str(figures_path), "--seed", "11", "--late", "0.3"],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert figures_path.exists(), done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    assert figures["runs"] >= 100
    assert (figures["duplicates"], figures["lost_days"], figures["journal_ledger_differences"]) == (0, 0, 0), figures
    assert figures["days_not_done"] == 0, figures["problems"]
    kinds = {"429", "500", "delay", "save_then_drop", "hidden_save", "kill_before_post", "kill_before_finish"}
    assert set(figures["faults"]) == kinds  # every kind was injected at least once
    assert figures["outcomes"].get("killed", 0) >= 1 and figures["journal_rebuilds"] == 1
    assert figures["late_vendor_days"] >= 1 and figures["overlapping_runs"] >= 1
    assert done.returncode == 0
