"""The corpus of bad SAF-T inputs (tests/corpus, written by tests/corpus/make_corpus.py).

Each bad input must be refused by `kassebro voucher preview` (exit 1) with its rule's name in the
message and no traceback; each control must pass (exit 0). The committed files must be exactly
what the script writes from today's demo generator. A sample also runs through the DAG
(tests/e2e/test_corpus_dag.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from kassebro.cli import main
from tests.corpus import make_corpus

CORPUS = Path(make_corpus.__file__).resolve().parent
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
PROJECT = CORPUS.parents[1]


def preview(capsys: pytest.CaptureFixture, case: dict, *extra: str) -> tuple[int, str, str]:
    vendor = PROJECT / "config" / "vendors" / f"{case['vendor']}.yaml"
    args = ["voucher", "preview", "--vendor", str(vendor), "--source", str(CORPUS / case["file"])]
    code = main([*args, "--date", case["business_day"], *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_corpus_is_what_the_script_writes(tmp_path: Path) -> None:
    cases = make_corpus.write(tmp_path)
    assert cases == CASES
    for case in cases:
        assert (tmp_path / case["file"]).read_bytes() == (CORPUS / case["file"]).read_bytes(), case["name"]
    committed = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.xml")}
    assert committed == {case["file"] for case in cases}


def test_at_least_60_bad_inputs_in_every_category() -> None:
    bad = [c for c in CASES if c["category"] != "control"]
    assert len(bad) >= 60
    assert set(Counter(c["category"] for c in bad)) == {
        "hostile",
        "malformed",
        "schema",
        "range",
        "accounting",
        "company",
    }
    assert sum(1 for c in CASES if c["category"] == "control") >= 8
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c["category"] != "control"], ids=lambda c: c["name"])
def test_a_bad_input_is_refused_naming_its_rule(capsys: pytest.CaptureFixture, case: dict) -> None:
    code, out, err = preview(capsys, case, "--json")  # the verdict as JSON on stdout, for a person on stderr
    assert code == 1, out + err
    failed = set(re.findall(r"\[(\w+)\] FAILED", err))
    assert failed & set(case["rules"]), (case["rules"], err)
    assert f"vendor {case['vendor']}, business day {case['business_day']}" in err
    assert "Traceback" not in out + err
    doc = json.loads(out)
    assert doc["state"] == "failed" and doc["verdict"]["held_back"] is True
    assert {f["rule"] for f in doc["verdict"]["failed"]} == failed


@pytest.mark.parametrize("case", [c for c in CASES if c["category"] == "control"], ids=lambda c: c["name"])
def test_a_control_books(capsys: pytest.CaptureFixture, case: dict) -> None:
    code, out, err = preview(capsys, case, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["state"] == "built" and doc["verdict"]["held_back"] is False
    assert sum(line["amount_ore"] for line in doc["lines"]) == 0
    statuses = {rule["rule"]: rule["status"] for rule in doc["verdict"]["rules"]}
    assert "fail" not in statuses.values() and "not checked" not in statuses.values()


@pytest.mark.parametrize("name", ["billion-laughs", "latin1-byte-in-name", "amount-20-digits", "utf16-bom"])
def test_the_real_command_prints_no_traceback(name: str) -> None:
    """The same through `python -m kassebro.cli` in a process of its own: a message, exit 1."""
    (case,) = [c for c in CASES if c["name"] == name]
    vendor = PROJECT / "config" / "vendors" / f"{case['vendor']}.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "kassebro.cli", "voucher", "preview", "--vendor", str(vendor)]
        + ["--source", str(CORPUS / case["file"]), "--date", case["business_day"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert f"[{case['rules'][0]}] FAILED" in done.stderr and case["file"].split("/")[-1] in done.stderr
