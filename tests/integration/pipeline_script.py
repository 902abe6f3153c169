"""Run the vendor DAG over three days in this process, against a live sandbox; print a JSON summary.

Started by the integration tests in a fresh interpreter, because Airflow reads its metadata DB
URL at import time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kassebro.airflow.dagtest import run_test

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.conftest import DAYS, make_home  # noqa: E402


def main(root: str) -> None:
    from kassebro.sandbox.server import running
    from kassebro.sandbox.tripletex import create_app

    home = make_home(Path(root))
    os.environ["KASSEBRO_CONFIG"] = str(home / "config")
    os.environ["KASSEBRO_DATA"] = str(home / "data")
    app = create_app()
    with running(app) as server:
        os.environ["AIRFLOW_CONN_TRIPLETEX_DEMO"] = json.dumps(
            {
                "conn_type": "tripletex",
                "host": f"{server.url}/v2",
                "password": "demo-employee-token",
                "extra": {"consumer_token": "demo-consumer-token", "company_id": 0, "timeout": 5},
            }
        )
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags")).dags["vendor_cafe_solsiden"]
        app.state.faults.add("save_then_drop", path="/ledger/voucher", method="POST", times=1)
        states = [run_test(dag, run_conf={"dates": [d.isoformat() for d in DAYS]}).state for _ in range(2)]
        refs = sorted(v.external_voucher_number for v in app.state.store.list_vouchers())
    print(json.dumps({"states": [str(s) for s in states], "refs": refs}))


if __name__ == "__main__":
    main(sys.argv[1])
