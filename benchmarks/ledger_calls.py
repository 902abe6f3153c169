"""API calls per posted voucher, per ledger system, on the happy path.

For each system: the demo vendor booked to it (config/vendors), `days` business days, its
sandbox over HTTP, and for every day a fresh client from the Airflow hook, as each task gets
one (`ledger_for`, with the connection from `AIRFLOW_CONN_*`, the run-wide lookup cache, and
`careful` as the DAG's post task sets it).
The post step and the verify step are counted apart from the sandbox's call log. Day 1 pays
the lookups (cold cache); later days show the steady state. Target: at most 3 calls per post,
duplicate check included.

Runs in a fresh process (`python -m benchmarks.ledger_calls --days 5`): it needs its own
Airflow metadata DB (Fiken's rotated refresh token is kept in a Variable).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VENDORS = {
    "tripletex": ("cafe_solsiden", "cafe"),
    "fiken": ("kiosk_torget", "cafe"),
    "poweroffice": ("bakeri_bryggen", "cafe"),
    "xledger": ("vinbar_kaia", "bar"),
    "duett": ("jernvare_sentrum", "shop"),
}
FIRST_DAY = dt.date(2026, 11, 3)  # a Tuesday: every demo vendor is open


def _calls(app: object) -> list[str]:
    return [f"{c['method']} {c['path']}" for c in app.state.calls.list()]  # type: ignore[attr-defined]


def measure(system: str, days: int, home: Path) -> dict:
    """Post and verify `days` days of the system's demo vendor; count the calls of each step."""
    import yaml

    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import load_vendor
    from kassebro.demo.home import write_sales
    from kassebro.demo.sandboxes import connection, create_app
    from kassebro.posting import pipeline
    from kassebro.posting.journal import Journal
    from kassebro.sandbox.server import SandboxServer

    vendor_id, profile = VENDORS[system]
    config, data = home / system / "config", home / system / "data"
    (config / "vendors").mkdir(parents=True)
    shutil.copytree(PROJECT / "config" / "ledgers", config / "ledgers")
    shutil.copy2(PROJECT / "config" / "defaults.yaml", config / "defaults.yaml")
    raw = yaml.safe_load((PROJECT / "config" / "vendors" / f"{vendor_id}.yaml").read_text(encoding="utf-8"))
    raw["enabled_since"] = FIRST_DAY
    (config / "vendors" / f"{vendor_id}.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    dates = [FIRST_DAY + dt.timedelta(days=i) for i in range(days)]
    write_sales(raw, dates, data)
    os.environ.update(KASSEBRO_CONFIG=str(config), KASSEBRO_DATA=str(data))
    os.environ["KASSEBRO_JOURNAL_URL"] = f"sqlite:///{home / system / 'journal.sqlite'}"
    vendor = load_vendor(vendor_id)
    app = create_app(system)
    server = SandboxServer(app).start()
    try:
        conn = connection(system, server.url, timeout=20)
        os.environ[f"AIRFLOW_CONN_{vendor.ledger.connection.upper()}"] = json.dumps(conn)
        journal = Journal()
        for day in dates:
            pipeline.prepare(vendor, day, journal)
        posts: list[list[str]] = []
        verifies: list[list[str]] = []
        target = vendor.ledger
        for step, counts in ((pipeline.post, posts), (pipeline.verify, verifies)):
            for day in dates:
                before = len(_calls(app))
                careful = step is not pipeline.post or pipeline.careful_lookup(vendor, day, journal)
                client = ledger_for(target.system, target.connection, target.company, target.client_org_number, careful)
                result = step(vendor, day, client, journal)
                assert result.get("state", "posted") in ("posted", "parked") or result.get("verified"), result
                counts.append(_calls(app)[before:])
        warm = posts[1:] or posts
        return {
            "system": system,
            "vendor": vendor_id,
            "days": days,
            "post_cold": len(posts[0]),
            "post_warm": sum(len(c) for c in warm) / len(warm),
            "post_mean": sum(len(c) for c in posts) / len(posts),
            "verify_mean": sum(len(c) for c in verifies) / len(verifies),
            "warm_sequence": warm[-1],
            "post_sequences": posts,
            "verify_sequence": verifies[-1],
        }
    finally:
        server.stop()


def run(days: int = 5) -> list[dict]:
    """Measure every system in a fresh process with its own Airflow home."""
    with tempfile.TemporaryDirectory(prefix="kassebro-calls-") as work:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(Path(work) / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "GX_ANALYTICS_ENABLED": "False",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.ledger_calls", "--days", str(days), "--home", work],
            env=env,
            cwd=PROJECT,
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args()
    results = [measure(system, args.days, args.home) for system in VENDORS]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
