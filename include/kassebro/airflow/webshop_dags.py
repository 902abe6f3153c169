"""The webshop DAG's shape: one DAG per `config/webshops/<id>.yaml`, every 15 minutes and on demand.

One task, `transfer`: a scheduled run reads what changed in the shop and transfers the completed
orders (`kassebro.posting.webshop.transfer_new`); a run triggered with `order_numbers` re-transfers
those orders (`retransfer`), optionally without e-mailing the customer again. `kassebro webshop
transfer` calls the same functions. Parse time reads YAML only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from kassebro.airflow.priority import yield_cpu
from kassebro.config.webshop import Webshop, load_webshops
from kassebro.ledgers import registry

log = logging.getLogger(__name__)


def shop_api(shop: Webshop) -> Any:
    """The shop's API client from its Airflow connection (host = the shop's URL; login and password
    = WooCommerce's consumer key and secret, or Mystore's token as the password)."""
    from airflow.sdk import BaseHook

    from kassebro.sources.webshop import shop_client

    conn = BaseHook.get_connection(shop.source.connection)
    host = conn.host or ""
    if conn.port and "://" in host and host.count(":") == 1:
        host = f"{host}:{conn.port}"
    extra = conn.extra_dejson or {}
    return shop_client(
        shop.source.kind,
        shop.id,
        host,
        conn.login or "",
        conn.password or "",
        timeout=float(extra.get("timeout") or 30),
    )


@contextmanager
def invoicing(shop: Webshop) -> Iterator[Any]:
    """Tripletex's customers/orders/invoices for the shop's company, over the ledger connection."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing

    with ledger_for(
        shop.ledger.system, shop.ledger.connection, client_org_number=shop.ledger.client_org_number
    ) as client:
        yield TripletexInvoicing(client)


def run(shop: Webshop, order_numbers: list[str] | None = None, email: bool = True) -> dict[str, Any]:
    """One run for one webshop: the DAG task's and the CLI's body. Raises when an order was held
    back or refused in this run, after every other order was transferred."""
    from kassebro.posting.transfers import Transfers
    from kassebro.posting.webshop import retransfer, transfer_new

    api = shop_api(shop)
    store = Transfers()
    with invoicing(shop) as tx:
        if order_numbers:
            report = retransfer(shop, api, tx, store, [str(n) for n in order_numbers], email=email)
        else:
            report = transfer_new(shop, api, tx, store)
        calls = sum(tx.calls.values()) if hasattr(tx.calls, "values") else None
    for outcome in report.outcomes:
        text = outcome.message or outcome.note
        log.info("%s order %s: %s%s", shop.id, outcome.number, outcome.state, f" ({text})" if text else "")
    log.info("%s (%s Tripletex calls, %s shop calls)", report.summary(), calls, getattr(api.http, "calls", None))
    problems = report.problems
    summary = {
        "webshop": shop.id,
        "summary": report.summary(),
        "done": [o.number for o in report.by_state("done")],
        "problems": {o.number: f"{o.state}: {o.message}" for o in problems},
        "tripletex_calls": calls,
    }
    if problems:
        listing = "; ".join(f"order {o.number} {o.state}: {o.message}" for o in problems)
        raise WebshopRunProblems(f"{shop.id}: {len(problems)} order(s) not transferred: {listing}")
    return summary


class WebshopRunProblems(Exception):  # noqa: N818 - what a person reads in the task log
    """Some orders were held back or refused; the others were transferred."""


def _build(shop: Webshop, doc_md: str) -> Any:
    @dag(
        dag_id=shop.dag_id,
        description=f"{shop.name}: completed web orders to Tripletex ({shop.source.kind})",
        schedule=CronTriggerTimetable(shop.schedule, timezone=shop.timezone),
        start_date=dt.datetime.combine(shop.enabled_since, dt.time(), dt.UTC),
        catchup=False,
        max_active_runs=1,
        doc_md=doc_md,
        tags=["kassebro", "webshop", shop.source.kind, *shop.tags],
        default_args={"owner": shop.owner, "retries": shop.retries, "retry_delay": dt.timedelta(minutes=2)},
        params={
            "order_numbers": Param([], type="array", description="re-transfer these orders (none: the scheduled run)"),
            "email": Param(True, type="boolean", description="false: do not e-mail the customer again"),
        },
    )
    def webshop_dag() -> None:
        @task(pool=registry.get(shop.ledger.system).pool(), multiple_outputs=False)
        def transfer(params: dict[str, Any] | None = None) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowFailException

            from kassebro.config.webshop import load_webshop

            yield_cpu()
            params = params or {}
            current = load_webshop(shop.id)
            try:
                return run(current, list(params.get("order_numbers") or []), bool(params.get("email", True)))
            except WebshopRunProblems as exc:
                raise AirflowFailException(str(exc)) from None

        transfer()

    return webshop_dag()


def build_webshop_dags(namespace: dict[str, Any], doc_md: str = "") -> list[str]:
    """Register one DAG per webshop file in `namespace`; a broken file is logged, the others load."""
    loaded = load_webshops()
    for issue in loaded.issues:
        log.error("webshop config: %s", issue)
    ids = []
    for shop in loaded.webshops:
        namespace[shop.dag_id] = _build(shop, doc_md)
        ids.append(shop.dag_id)
    return ids
