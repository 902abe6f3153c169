"""The webshop DAG for real: Airflow runs it against the Mystore emulator and the Tripletex sandbox;
a scheduled run transfers every completed order once, a re-transfer by params duplicates nothing,
and an order Tripletex refuses fails the run after the others went through."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import requests
import yaml

from kassebro.airflow.dagtest import run_test
from kassebro.posting.transfers import Transfers

from .conftest import PROJECT, Env

pytestmark = pytest.mark.slow
LAST_DAY = dt.date(2026, 11, 4)


@pytest.fixture
def shop_env(pipeline_env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Env, str]]:
    from kassebro.demo.sandboxes import shop_connection
    from kassebro.sandbox import mystore
    from kassebro.sandbox.server import running

    now = dt.datetime.combine(LAST_DAY, dt.time(22), dt.UTC)
    with running(mystore.create_app(last_day=LAST_DAY, days=4, per_day=5, now=now)) as shop:
        monkeypatch.setenv("AIRFLOW_CONN_MYSTORE_DEMO", json.dumps(shop_connection("mystore", shop.url)))
        data = yaml.safe_load((PROJECT / "config" / "webshops" / "mystore_demo.yaml").read_text())
        data["ledger"] = {"system": "tripletex", "connection": "tripletex_demo"}
        data["enabled_since"] = LAST_DAY - dt.timedelta(days=10)
        data["retries"] = 0
        (pipeline_env.root / "config" / "webshops").mkdir()
        (pipeline_env.root / "config" / "webshops" / "mystore_demo.yaml").write_text(yaml.safe_dump(data))
        yield pipeline_env, shop.url


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["webshop_mystore_demo"]


def _tripletex(env: Env) -> dict:
    return requests.get(f"{env.sandbox.url}/_sandbox/invoicing", timeout=5).json()


def test_the_webshop_dag_transfers_once_and_a_retransfer_duplicates_nothing(shop_env) -> None:
    env, _ = shop_env
    run = run_test(_dag())
    assert run.state == "success"
    records = Transfers().all("mystore_demo")
    done = [r for r in records if r.state == "done"]
    assert done and len(done) == len(records)
    state = _tripletex(env)
    ours = [o for o in state["orders"] if o["deliveryComment"].startswith("kassebro:mystore_demo:")]
    assert sorted(o["number"] for o in ours) == sorted(r.order_number for r in done)
    emails = len(state["emails"])

    invoiced = [r.order_number for r in done if r.invoice_number][:2]
    run = run_test(_dag(), run_conf={"order_numbers": invoiced, "email": False})
    assert run.state == "success"
    after = _tripletex(env)
    assert len(after["orders"]) == len(state["orders"]) and len(after["invoices"]) == len(state["invoices"])
    assert len(after["emails"]) == emails


def test_an_order_tripletex_refuses_fails_the_run_after_the_others_went(shop_env) -> None:
    env, _ = shop_env
    requests.post(f"{env.sandbox.url}/_sandbox/invoicing", json={"bank_account_registered": False}, timeout=5)
    run = run_test(_dag())
    assert run.state == "failed"
    records = Transfers().all("mystore_demo")
    failed = [r for r in records if r.state == "failed"]
    assert failed and all("bankkontonummer" in r.message for r in failed)
    assert all(r.transfer == "paid_invoice" or r.transfer == "invoice" for r in failed)
    assert [r for r in records if r.transfer == "order" and r.state == "done"]  # B2B orders need no invoice
    # the bank account is registered in Tripletex; the re-transfer continues on the same orders
    requests.post(f"{env.sandbox.url}/_sandbox/invoicing", json={"bank_account_registered": True}, timeout=5)
    orders_before = len(_tripletex(env)["orders"])
    run = run_test(_dag(), run_conf={"order_numbers": [r.order_number for r in failed]})
    assert run.state == "success"
    assert {r.state for r in Transfers().all("mystore_demo")} == {"done"}
    assert len(_tripletex(env)["orders"]) == orders_before


def test_make_demo_runs_each_webshop_dag_once_and_says_where_its_orders_stand(shop_env, capsys) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from kassebro.demo.launcher import _run_webshops

    assert _run_webshops(DagBag(dag_folder=str(PROJECT / "dags"))) == 0
    out = capsys.readouterr().out
    assert "webshop_mystore_demo: run success; orders:" in out and " done" in out
