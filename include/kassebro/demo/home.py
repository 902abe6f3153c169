"""The demo: seven shops with sales from *enabled since* (14 days back) to today (SAF-T exports,
and one bar in a POS database), one per ledger system and three on Tripletex, two webshops
(WooCommerce and Mystore emulators) invoicing through the demo accounting firm, the sandboxes, and
the environment that points Airflow and kassebro at them.

Everything lives under one home directory (default `<project>/.kassebro`), so `make run`,
`make demo` and the tests never touch the repository's own `config/`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from kassebro.airflow.parsing import PARSE_SETTINGS
from kassebro.airflow.priority import task_slots
from kassebro.config import PROJECT_DIR

SANDBOX_PORT = 8900


@dataclass(frozen=True)
class DemoVendor:
    """A demo vendor file and how its POS writes: the SAF-T profile its sales are generated from,
    the company name on its files, and its Z reports' convention (cashSaleAmnt gross as in
    Skatteetaten's 2016 example, or net as in the 2021 one). The organisation number on the files
    is the vendor file's own `organisation_number`."""

    vendor_id: str
    profile: str
    company: str
    z_amounts: str = "gross"


DEMO_VENDORS = (
    DemoVendor("cafe_solsiden", "cafe", "Café Solsiden AS"),  # Tripletex
    DemoVendor("bar_nattugla", "bar", "Bar Nattugla AS"),  # Tripletex, POS database
    DemoVendor("butikk_fjord", "shop", "Fjord Interiør AS"),  # Tripletex, for approval
    DemoVendor("kiosk_torget", "cafe", "Kiosk Torget AS"),  # Fiken
    DemoVendor("bakeri_bryggen", "cafe", "Bakeri Bryggen AS"),  # PowerOffice Go
    DemoVendor("vinbar_kaia", "bar", "Vinbar Kaia AS"),  # Xledger
    DemoVendor("jernvare_sentrum", "shop", "Jernvare Sentrum AS", z_amounts="net"),  # Duett, 2021-style Z reports
)


def demo_vendor(vendor_id: str) -> DemoVendor:
    """The demo vendor of that id (KeyError for another)."""
    return {demo.vendor_id: demo for demo in DEMO_VENDORS}[vendor_id]


def write_sales(vendor_file: dict, days: list[dt.date], data: Path) -> list[Path]:
    """Write a demo vendor's SAF-T files for `days` where its vendor file (`vendor_file`, the
    parsed YAML) points, under the data directory `data`; as its POS writes them."""
    from kassebro.demo.data import write_day

    demo = demo_vendor(vendor_file["id"])
    out = data / vendor_file["source"]["path"]
    out.mkdir(parents=True, exist_ok=True)
    tz = vendor_file.get("timezone", "Europe/Oslo")
    orgnr = str(vendor_file["organisation_number"])
    return [write_day(demo.profile, orgnr, demo.company, day, out, tz=tz, z_amounts=demo.z_amounts) for day in days]


def demo_connections() -> dict[str, str]:
    """The connection id of each registered ledger system's sandbox in the demo."""
    from kassebro.ledgers import registry

    return {name: f"{name}_demo" for name in registry.names()}


def demo_shop_connections() -> dict[str, str]:
    """The connection id of each demo webshop's emulator, by shop kind (config/webshops)."""
    from kassebro.demo.sandboxes import SHOPS

    return {kind: f"{kind}_demo" for kind in SHOPS}


DEMO_FIRM_CONNECTION = "tripletex_firm"
"""The demo accounting firm's Tripletex connection (config/readback.yaml reads every client)."""


def demo_firm_connection(url: str) -> dict:
    """The firm's connection to the Tripletex sandbox at `url`: the firm employee's token."""
    from kassebro.demo.sandboxes import connection
    from kassebro.sandbox.tripletex import DEMO_FIRM_EMPLOYEE_TOKEN

    return connection("tripletex", url, password=DEMO_FIRM_EMPLOYEE_TOKEN, timeout=20)


def default_home() -> Path:
    return Path(os.environ.get("KASSEBRO_HOME") or PROJECT_DIR / ".kassebro")


def connection_json(port: int = SANDBOX_PORT, system: str = "tripletex") -> str:
    """A demo connection to the system's sandbox on `port`, as Airflow reads it from AIRFLOW_CONN_*."""
    from kassebro.demo.sandboxes import connection

    return json.dumps(connection(system, f"http://127.0.0.1:{port}", timeout=20))


def environment(home: Path, port: int = SANDBOX_PORT) -> dict[str, str]:
    """Environment variables that point kassebro and Airflow at a demo home."""
    airflow_home = home / "airflow"
    return {
        "KASSEBRO_HOME": str(home),
        "KASSEBRO_CONFIG": str(home / "config"),
        "KASSEBRO_DATA": str(home / "data"),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # task processes at once, 16 a core: a slot outlives its task by up to 5 s (`task_slots`)
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM") or str(task_slots()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "15",
        **PARSE_SETTINGS,  # each DAG file once an hour, at once when it changes or on `config reload`
        "AIRFLOW__API__PORT": "8080",
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def init(home: Path | None = None, *, days: int = 14, today: dt.date | None = None) -> Path:
    """Write the demo home: config (enabled since `days` back) and SAF-T files up to today.

    Idempotent: files of days already generated are rewritten identically (the generator is
    deterministic), so re-running never changes a posted day.
    """
    home = home or default_home()
    today = today or dt.date.today()
    since = today - dt.timedelta(days=days)
    config = home / "config"
    (config / "vendors").mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT_DIR / "config" / "ledgers", config / "ledgers", dirs_exist_ok=True)
    shutil.copy2(PROJECT_DIR / "config" / "defaults.yaml", config / "defaults.yaml")
    shutil.copy2(PROJECT_DIR / "config" / "readback.yaml", config / "readback.yaml")
    shutil.copy2(PROJECT_DIR / "config" / "webshop_defaults.yaml", config / "webshop_defaults.yaml")
    _write_webshops(config, since)
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    for demo in DEMO_VENDORS:
        source = PROJECT_DIR / "config" / "vendors" / f"{demo.vendor_id}.yaml"
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        target = config / "vendors" / source.name
        if target.exists():  # keep enabled_since stable across re-runs of the same demo home
            since_here = yaml.safe_load(target.read_text(encoding="utf-8"))["enabled_since"]
        else:
            since_here = since
        data["enabled_since"] = since_here
        header = f"# Generated by `kassebro demo init` from {source.relative_to(PROJECT_DIR)}.\n"
        target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tz = data.get("timezone", "Europe/Oslo")
        if data["source"]["kind"] == "sql":  # the POS database, as a SQLite file in the data directory
            from kassebro.demo.pos import build_demo_pos

            path = home / "data" / data["source"]["url"].removeprefix("sqlite:///")
            path.parent.mkdir(parents=True, exist_ok=True)
            build_demo_pos(f"sqlite:///{path}", demo.vendor_id, since_here, today, profile=demo.profile, tz=tz)
            continue
        write_sales(
            data, [since_here + dt.timedelta(days=n) for n in range((today - since_here).days + 1)], home / "data"
        )
    return home


def _write_webshops(config: Path, since: dt.date) -> None:
    """The demo webshops, enabled from `since` (kept stable across re-runs like the vendors')."""
    (config / "webshops").mkdir(parents=True, exist_ok=True)
    for source in sorted((PROJECT_DIR / "config" / "webshops").glob("*.yaml")):
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        target = config / "webshops" / source.name
        if target.exists():
            data["enabled_since"] = yaml.safe_load(target.read_text(encoding="utf-8"))["enabled_since"]
        else:
            data["enabled_since"] = since
        header = f"# Generated by `kassebro demo init` from {source.relative_to(PROJECT_DIR)}.\n"
        target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
