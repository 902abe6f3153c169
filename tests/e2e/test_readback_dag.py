"""The read-back DAG for real: Airflow runs it against the Tripletex sandbox after the vendor DAG
posted three days; a deleted voucher becomes a stored finding; an accounting firm's connection
maps over every client its key reaches, and the client it may not read fails alone."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from kassebro.airflow.dagtest import run_test
from kassebro.posting.journal import Journal
from kassebro.readback.findings import Findings

from .conftest import DAYS, PROJECT, Env

pytestmark = pytest.mark.slow


def _bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert bag.import_errors == {}
    return bag


def _states(run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def test_the_readback_dag_reconciles_and_stores_what_it_finds(pipeline_env: Env) -> None:
    assert pipeline_env.run(DAYS).state == "success"
    bag = _bag()
    dag = bag.dags["readback_tripletex_demo"]
    conf = {"last_day": DAYS[-1].isoformat(), "days": 5}
    run = run_test(dag, run_conf=conf)
    assert run.state == "success", _states(run)
    assert _states(run)["year_end"] == ["skipped"]  # no export_year asked for
    assert Findings().read(["cafe_solsiden"]) == []
    deleted = Journal().get("cafe_solsiden", DAYS[1]).ledger_id
    pipeline_env.store.delete(int(deleted))
    run = run_test(dag, run_conf=conf)
    assert run.state == "success"  # a finding is a result for a person, not a failed task
    [finding] = Findings().read(["cafe_solsiden"])
    assert (finding.kind, finding.business_day) == ("missing", DAYS[1])
    assert "cafe_solsiden" in finding.message and str(DAYS[1]) in finding.message


def test_a_firm_connection_maps_over_every_client_and_one_without_access_fails_alone(
    pipeline_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kassebro.sandbox.tripletex import DEMO_CLIENT_COMPANIES, DEMO_COMPANY, DEMO_FIRM_EMPLOYEE_TOKEN

    config = pipeline_env.root / "config"
    (config / "readback.yaml").write_text(
        yaml.safe_dump({"connections": {"tripletex_firm": {"clients": "%ORGNR%", "system": "tripletex"}}})
    )
    conn = json.loads(os.environ["AIRFLOW_CONN_TRIPLETEX_DEMO"])
    conn["password"] = DEMO_FIRM_EMPLOYEE_TOKEN
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_FIRM", json.dumps(conn))
    dag = _bag().dags["readback_tripletex_firm"]
    run = run_test(dag, run_conf={"last_day": DAYS[-1].isoformat(), "days": 3})
    tis = {ti.map_index: ti for ti in run.get_task_instances() if ti.task_id == "read_back"}
    assert len(tis) == 1 + len(DEMO_CLIENT_COMPANIES) == 3  # the kiosk and both client companies
    no_access = [c for c in DEMO_CLIENT_COMPANIES if not c.ledger_access]
    failed = sorted(ti.rendered_map_index for ti in tis.values() if str(ti.state) == "failed")
    ok = sorted(ti.rendered_map_index for ti in tis.values() if str(ti.state) == "success")
    assert failed == [f"{c.name} ({c.organization_number})" for c in no_access]
    assert len(ok) == 2 and any(DEMO_COMPANY.name in label for label in ok)
    assert run.state == "failed"  # the run shows the client that could not be read


def test_the_year_end_export_is_a_task_of_the_readback_dag(pipeline_env: Env) -> None:
    from kassebro.readback.yearend import read_csv, validate_file

    assert pipeline_env.run(DAYS).state == "success"
    (pipeline_env.root / "config" / "readback.yaml").write_text(yaml.safe_dump({"contact": "Kari Nordmann"}))
    dag = _bag().dags["readback_tripletex_demo"]
    run = run_test(dag, run_conf={"last_day": DAYS[-1].isoformat(), "days": 3, "export_year": DAYS[0].year})
    assert run.state == "success", _states(run)
    [xml] = (pipeline_env.root / "data" / "exports" / "tripletex_demo").rglob("SAF-T Financial_*.xml")
    assert validate_file(xml) == []
    [balance] = xml.parent.glob("*_trial_balance.csv")
    rows = read_csv(balance)
    assert sum(r["closing"] for r in rows) == 0 and sum(1 for r in rows if r["closing"]) >= 3
