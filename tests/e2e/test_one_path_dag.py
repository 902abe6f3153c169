"""The one path through Airflow: what preview refuses the DAG refuses, what it books the DAG posts.

- A sample of the bad-input corpus, one case of each kind, written for a vendor's day: the DAG's
  `prepare` fails without retrying, names the rule in the journal, and nothing of that vendor
  is posted, while another vendor in the same home posts its days.
- Both of Skatteetaten's official examples through the DAG with default settings: the 2021 one
  (Z reports net of VAT) posts; the 2016 one is held back for its own two placeholders, and posts
  once they are corrected.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from kassebro.posting.journal import Journal
from tests.corpus.make_corpus import CASES
from tests.official import DAY_2016, DAY_2021, EXAMPLE_2016, EXAMPLE_2021, corrected_2016, write_config

from .conftest import DAYS, PROJECT, Env

pytestmark = pytest.mark.slow

SAMPLE = (
    "doctype-system-http",
    "truncated-half",
    "amount-three-decimals",
    "amount-20-digits",
    "receipt-missing",
    "z-grand-total-off",
    "other-company-in-z-report",
)


def add_vendor(env: Env, vendor_id: str) -> Path:
    """Another project vendor in the environment's home (posting to the same Tripletex sandbox)."""
    data = yaml.safe_load((PROJECT / "config" / "vendors" / f"{vendor_id}.yaml").read_text(encoding="utf-8"))
    data.update(enabled_since=DAYS[0], retry_delay_seconds=1, retries=2)
    # a dead task's claim and its post's window end before the 3 s of retries, as the config check asks
    data["ledger"].update(lease_seconds=2, visibility_seconds=0)
    path = env.root / "config" / "vendors" / f"{vendor_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    folder = env.root / "data" / data["source"]["path"]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def refs(env: Env, vendor_id: str) -> list[str]:
    return sorted(v.external_voucher_number for v in env.vouchers() if f":{vendor_id}:" in v.external_voucher_number)


def test_bad_inputs_are_held_back_by_the_dag_while_another_vendor_posts(pipeline_env: Env) -> None:
    folder = add_vendor(pipeline_env, "butikk_fjord")
    day = DAYS[1]
    by_name = {case.name: case for case in CASES}
    for name in SAMPLE:
        case = by_name[name]
        shutil.rmtree(folder)
        folder.mkdir()
        (folder / f"{name}.xml").write_bytes(case.build(day, pipeline_env.root / "work" / name))
        run = pipeline_env.run([day], vendor_id="butikk_fjord")
        assert run.state == "failed", name
        (prepare,) = [ti for ti in run.get_task_instances() if ti.task_id == "day.prepare"]
        assert prepare.state == "failed" and prepare.try_number == 1, name  # bad data: no retry
        entry = Journal().get("butikk_fjord", day)
        assert entry.state == "failed" and any(f"[{rule}]" in entry.message for rule in case.rules), (
            name,
            entry.message,
        )
        assert refs(pipeline_env, "butikk_fjord") == [], name
    assert pipeline_env.run(DAYS).state == "success"  # the other vendor of the home posts its days
    assert refs(pipeline_env, "cafe_solsiden") == [f"kassebro:cafe_solsiden:{d}" for d in DAYS]


def test_both_official_examples_through_the_dag(pipeline_env: Env) -> None:
    data = pipeline_env.root / "data"
    for name, source in (("selskapet_2021", EXAMPLE_2021), ("selskapet_2016", EXAMPLE_2016)):
        (data / name).mkdir(parents=True)
        shutil.copy2(source, data / name / source.name)
    corrected_2016(data / "selskapet_2016_fixed" / EXAMPLE_2016.name)
    folders = {name: Path(name) for name in ("selskapet_2021", "selskapet_2016", "selskapet_2016_fixed")}
    write_config(pipeline_env.root, folders, retries=2, retry_delay_seconds=1)

    assert pipeline_env.run([DAY_2021], vendor_id="selskapet_2021").state == "success"
    (posted,) = [
        v for v in pipeline_env.vouchers() if v.external_voucher_number == f"kassebro:selskapet_2021:{DAY_2021}"
    ]
    assert sum(p.gross for p in posted.postings if not p.system_generated) == 0
    from kassebro.sandbox.tripletex import CHART

    number = {a.id: str(a.number) for a in CHART}
    revenue = sorted((number[p.account_id], p.gross) for p in posted.postings if number[p.account_id].startswith("3"))
    assert revenue == [("3000", -41140), ("3030", -11920), ("3030", 1640)]  # summed by hand from the file

    run = pipeline_env.run([DAY_2016], vendor_id="selskapet_2016")
    assert run.state == "failed"
    entry = Journal().get("selskapet_2016", DAY_2016)
    assert entry.state == "failed"
    for rule in ("receipt_balances", "line_vat_matches_rate", "rounding_limit", "vat_difference"):
        assert f"[{rule}]" in entry.message
    assert refs(pipeline_env, "selskapet_2016") == []

    assert pipeline_env.run([DAY_2016], vendor_id="selskapet_2016_fixed").state == "success"
    assert refs(pipeline_env, "selskapet_2016_fixed") == [f"kassebro:selskapet_2016_fixed:{DAY_2016}"]
    assert (
        dt.date.fromisoformat(
            [v for v in pipeline_env.vouchers() if ":selskapet_2016_fixed:" in v.external_voucher_number][0].date
        )
        == DAY_2016
    )
