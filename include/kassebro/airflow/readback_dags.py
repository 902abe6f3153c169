"""The read-back DAG's shape: one DAG per ledger connection, one mapped task per company it covers.

Each night it reads what the ledger holds for the last `reconcile_days` days and reconciles the
connection's vendors against the journal and the Z reports (`kassebro.readback.reconcile`, the
function `kassebro reconcile` calls too). One company's failure (wrong access, a ledger that is
down) fails that mapped instance alone. Parse-time work is reading YAML; the ledger, the journal
and pandas are touched only inside tasks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from kassebro.airflow.priority import yield_cpu
from kassebro.config import ConfigSet, Vendor, config_dir, load_vendors
from kassebro.config.readback import ReadBackSettings, load_readback
from kassebro.ledgers import registry

DAG_PREFIX = "readback_"


def readback_dag_id(connection: str) -> str:
    return DAG_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", connection)


def companies(connection: str, vendors: list[Vendor], settings: ReadBackSettings) -> list[dict[str, Any]]:
    """The companies a connection's read-back covers, without asking the ledger: one item per
    company its vendors post to, or the one client company `clients` names. (`clients: all` is
    resolved in the task, from the firm's client list.)"""
    scope = settings.scope(connection)
    if scope.client:
        matching = [v.id for v in vendors if (v.ledger.client_org_number or "").replace(" ", "") == scope.client]
        return [
            _item(connection, vendors[0].ledger.system if vendors else scope.system or "", None, scope.client, matching)
        ]
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for vendor in vendors:
        org = (vendor.ledger.client_org_number or "").replace(" ", "")
        groups[(vendor.ledger.company or "", org)].append(vendor.id)
    system = vendors[0].ledger.system if vendors else ""
    return [
        _item(connection, system, company or None, org or None, ids) for (company, org), ids in sorted(groups.items())
    ]


def _item(connection: str, system: str, company: str | None, org: str | None, vendor_ids: list[str]) -> dict[str, Any]:
    label = company or (f"org {org}" if org else connection)
    return {
        "connection": connection,
        "system": system,
        "company": company,
        "client_org_number": org,
        "label": label,
        "vendors": sorted(vendor_ids),
    }


def firm_items(connection: str, system: str, vendors: list[Vendor]) -> list[dict[str, Any]]:
    """Every client company the firm's key reaches, with the vendors that post to each."""
    from kassebro.airflow.hooks import ledger_for

    with ledger_for(system, connection) as firm:
        clients = firm.firm_clients()
    by_org: dict[str, list[str]] = defaultdict(list)
    for vendor in vendors:
        by_org[(vendor.ledger.client_org_number or vendor.organisation_number or "").replace(" ", "")].append(vendor.id)
    items = []
    for client in sorted(clients, key=lambda c: (c.org_number, c.ledger_id)):
        item = _item(connection, system, None, client.org_number or None, by_org.get(client.org_number, []))
        item["label"] = f"{client.name} ({client.org_number})" if client.org_number else client.name
        items.append(item)
    return items


def read_company(item: dict[str, Any], last: dt.date, days: int) -> dict[str, Any]:
    """Read one company back and reconcile its vendors over last-days+1..last; the task's body."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import load_vendor
    from kassebro.readback.reconcile import reconcile

    first = last - dt.timedelta(days=days - 1)
    system, connection = item["system"], item["connection"]
    with ledger_for(system, connection, item["company"], item["client_org_number"]) as ledger:
        balances = ledger.balances(first, last + dt.timedelta(days=1)) if hasattr(ledger, "balances") else None
        vendors = [load_vendor(v) for v in item["vendors"]]
        result = reconcile(vendors, first, last, lambda _vendor: ledger)
    kinds: dict[str, int] = defaultdict(int)
    for finding in result.findings:
        kinds[finding.kind] += 1
    summary = {
        "company": item["label"],
        "window": f"{first}..{last}",
        "vendors": len(vendors),
        "vendor_days": len(result.checked),
        "vouchers_read": result.vouchers_read,
        "postings_read": result.postings_read,
        "accounts": None if balances is None else len(balances),
        "findings": dict(kinds),
        "not_checked": list(result.not_checked),
    }
    if kinds.get("unreadable"):
        raise RuntimeError(f"{item['label']}: {result.findings[0].message}")
    return summary


def export_company_year(item: dict[str, Any], year: int, settings: ReadBackSettings) -> dict[str, Any]:
    """Write one company's year-end export (`kassebro export`'s function) to the export store
    (`config.export_url()`, shared by every worker)."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import export_url, load_vendor
    from kassebro.core.workfiles import storage_path
    from kassebro.readback.yearend import YearEndError, export_target, export_year

    scope = settings.scope(item["connection"])
    if not settings.contact:
        raise YearEndError('readback.yaml has no `contact` ("First Last"): SAF-T\'s header requires a contact person')
    vendors = [load_vendor(v) for v in item["vendors"]]
    target = export_target(
        vendors,
        item["connection"],
        contact=settings.contact,
        org_number=item["client_org_number"] or scope.org_number,
        name=scope.company_name,
        telephone=settings.telephone,
    )
    out = storage_path(export_url()) / item["connection"] / target.company.org_number / str(year)
    with ledger_for(item["system"], item["connection"], item["company"], item["client_org_number"]) as ledger:
        result = export_year(ledger, year, out, target.company)
    return {
        "company": target.company.label(year),
        "accounts": result.accounts,
        "vouchers": result.entries,
        "total_debit_ore": result.total_debit,
        "saft_file": str(result.saft_file),
        "directory": str(out),
    }


def readback_dag(connection: str, vendors: list[Vendor], settings: ReadBackSettings, doc_md: str) -> Any:
    scope = settings.scope(connection)
    system = vendors[0].ledger.system if vendors else scope.system or ""
    vendor_ids = sorted(v.id for v in vendors)
    companies_used = {v.ledger.company for v in vendors}
    pool = registry.get(system).pool(companies_used.pop() if len(companies_used) == 1 else None)
    if registry.get(system).pool_per_company and pool == registry.get(system).pool(None):
        pool = None  # several companies of a one-request-per-company system: the client waits out 429s

    @task
    def plan_companies(**context: Any) -> list[dict[str, Any]]:
        from kassebro.config import load_vendor

        yield_cpu()
        if scope.every_client:
            return firm_items(connection, system, [load_vendor(v) for v in vendor_ids])
        return companies(connection, [load_vendor(v) for v in vendor_ids], settings)

    @task(map_index_template="{{ company_label }}", pool=pool, multiple_outputs=False)
    def read_back(item: dict[str, Any], **context: Any) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from kassebro.ledgers.base import LedgerAuthError, LedgerValidationError

        yield_cpu()
        get_current_context()["company_label"] = item["label"]  # type: ignore[index]
        params = context["params"]
        if params.get("last_day"):
            last = dt.date.fromisoformat(params["last_day"])
        else:
            end = context["data_interval_end"] or context["logical_date"]
            last = end.in_timezone(settings.timezone).date() - dt.timedelta(days=1)
        try:
            return read_company(item, last, int(params.get("days") or settings.reconcile_days))
        except (LedgerAuthError, LedgerValidationError) as exc:
            raise AirflowFailException(f"{item['label']}: {exc}") from exc

    @task(map_index_template="{{ company_label }}", pool=pool, multiple_outputs=False)
    def year_end(item: dict[str, Any], **context: Any) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from kassebro.ledgers.base import LedgerAuthError, LedgerValidationError
        from kassebro.readback.yearend import YearEndError

        yield_cpu()
        get_current_context()["company_label"] = item["label"]  # type: ignore[index]
        year = context["params"].get("export_year")
        if not year:
            raise AirflowSkipException("no export_year asked for: the year-end export runs when triggered with one")
        try:
            return export_company_year(item, int(year), settings)
        except (YearEndError, LedgerAuthError, LedgerValidationError) as exc:
            raise AirflowFailException(f"{item['label']}: {exc}") from exc

    @dag(
        dag_id=readback_dag_id(connection),
        description=f"Read {system or 'the ledger'} back through {connection} and reconcile its vendors",
        schedule=CronTriggerTimetable(settings.schedule, timezone=settings.timezone),
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        doc_md=doc_md + _facts(connection, system, scope.clients, vendor_ids, settings),
        tags=sorted({"kassebro", "readback", f"ledger:{system}" if system else "ledger:unknown"}),
        default_args={
            "owner": settings.owner,
            "retries": settings.retries,
            "retry_delay": dt.timedelta(minutes=2),
            "retry_exponential_backoff": 2.0,
        },
        params={
            "days": Param(settings.reconcile_days, type="integer", minimum=1, maximum=400, description="Days back."),
            "last_day": Param("", type="string", description="Last day to reconcile (YYYY-MM-DD); empty: yesterday."),
            "export_year": Param(
                None,
                type=["null", "integer"],
                minimum=2000,
                maximum=2100,
                description="Also write this year's year-end export (SAF-T Financial, trial balance, transactions).",
            ),
        },
    )
    def _readback() -> None:
        companies_planned = plan_companies()
        read_back.expand(item=companies_planned)
        year_end.expand(item=companies_planned)

    return _readback()


def _facts(connection: str, system: str, clients: str | None, vendor_ids: list[str], settings: ReadBackSettings) -> str:
    covers = (
        "every client company the firm's key reaches"
        if clients in ("all", "%ORGNR%")
        else f"client company {clients}"
        if clients
        else "the companies its vendors post to"
    )
    return (
        f"\n\n## This connection\n| | |\n|---|---|\n| connection | `{connection}` ({system}) |\n"
        f"| covers | {covers} |\n| vendors | {', '.join(vendor_ids) or 'none'} |\n"
        f"| window | the last {settings.reconcile_days} days |\n"
        f"| schedule | `{settings.schedule}` {settings.timezone} |\n"
    )


def build_readback_dags(namespace: dict[str, Any], doc_md: str = "") -> ConfigSet:
    """Register one read-back DAG per ledger connection (the vendors' and readback.yaml's)."""
    root = config_dir()
    configs = load_vendors(root)
    settings = load_readback(root)
    by_connection: dict[str, list[Vendor]] = defaultdict(list)
    for vendor in configs.vendors:
        by_connection[vendor.ledger.connection].append(vendor)
    for connection in sorted(set(by_connection) | set(settings.connections)):
        if not by_connection.get(connection) and not settings.scope(connection).system:
            continue  # no vendor and no `system:` says which ledger it is
        namespace[readback_dag_id(connection)] = readback_dag(
            connection, by_connection.get(connection, []), settings, doc_md
        )
    return configs
