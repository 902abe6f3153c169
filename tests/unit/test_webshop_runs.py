"""Whole runs: each emulated shop's demo orders into the Tripletex sandbox, over real HTTP.

The shops were written apart from the readers and the transfer (kassebro.sandbox.woocommerce /
mystore), with their own totals conventions; what is checked is what Tripletex holds afterwards
against what the shop says, and that a second run sends nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests

from kassebro.config.webshop import Webshop
from kassebro.demo.sandboxes import client
from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing
from kassebro.posting.transfers import Transfers
from kassebro.posting.webshop import transfer_new
from kassebro.sandbox import mystore, woocommerce
from kassebro.sandbox.server import running
from kassebro.sandbox.tripletex import create_app as tripletex_app
from kassebro.sources.webshop.mystore import MystoreShop
from kassebro.sources.webshop.woocommerce import WooCommerceShop

LAST_DAY = dt.date(2026, 3, 15)
NOW = dt.datetime(2026, 3, 15, 22, 0, tzinfo=dt.UTC)
METHODS = {
    "woocommerce": {
        "stripe": {"transfer": "paid_invoice", "payment_type": "Bankkort"},
        "vipps": {"transfer": "paid_invoice", "payment_type": "Vipps"},
        "klarna": {"transfer": "paid_invoice", "payment_type": "Klarna"},
        "giftcard": {"transfer": "paid_invoice", "payment_type": "Gavekort"},
        "invoice": {"transfer": "invoice", "send_invoice": True},
        "bacs": {"transfer": "order"},
    },
    "mystore": {
        "kort": {"transfer": "paid_invoice", "payment_type": "Bankkort"},
        "vipps": {"transfer": "paid_invoice", "payment_type": "Vipps"},
        "klarna": {"transfer": "paid_invoice", "payment_type": "Klarna"},
        "gavekort": {"transfer": "paid_invoice", "payment_type": "Gavekort"},
        "faktura": {"transfer": "invoice", "send_invoice": True},
        "b2b": {"transfer": "order"},
    },
}


@pytest.fixture(scope="module")
def tripletex():
    with running(tripletex_app()) as server:
        yield server.url


@pytest.fixture(autouse=True)
def _clean(tripletex):
    requests.post(tripletex + "/_sandbox/reset", timeout=5).raise_for_status()


def shop_config(kind: str) -> Webshop:
    return Webshop.model_validate(
        {
            "id": f"demo_{kind}",
            "name": f"Demo {kind}",
            "source": {"kind": kind, "connection": f"{kind}_demo"},
            "ledger": {"connection": "tripletex_demo"},
            "enabled_since": "2026-01-01",
            "payment_methods": METHODS[kind],
        }
    )


def shop_api(kind: str, url: str):
    if kind == "woocommerce":
        return WooCommerceShop(f"demo_{kind}", url, woocommerce.DEMO_CONSUMER_KEY, woocommerce.DEMO_CONSUMER_SECRET)
    return MystoreShop(f"demo_{kind}", url, "", mystore.DEMO_TOKEN)


@pytest.mark.parametrize("kind", ["woocommerce", "mystore"])
def test_a_shops_completed_orders_reach_tripletex_once_and_to_the_ore(kind, tripletex, tmp_path) -> None:
    module = woocommerce if kind == "woocommerce" else mystore
    shop = shop_config(kind)
    store = Transfers(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    tx = TripletexInvoicing(client("tripletex", tripletex))
    with running(module.create_app(last_day=LAST_DAY, now=NOW)) as server:
        api = shop_api(kind, server.url)
        orders = {o.number: o for o in api.orders(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))}
        report = transfer_new(shop, api, tx, store, now=NOW)

        completed = {n for n, o in orders.items() if o.completed_at(shop.statuses)}
        assert completed and {o.number for o in report.outcomes} == completed
        held = {o.number: o.message for o in report.by_state("held")}
        done = {o.number for o in report.by_state("done")}
        assert done | set(held) == completed, report.summary()
        # the shop's capture differences are reported on the invoice, never absorbed
        for outcome in report.by_state("done"):
            order = orders[outcome.number]
            rule = shop.payment_methods[order.payment_method]
            if rule.transfer == "paid_invoice" and order.captured != order.total:
                assert "left on the invoice" in outcome.note or "paid over the invoice" in outcome.note
            if order.refunded:
                assert "refunded" in outcome.note
        # what is held says why, with the figures
        assert all(message for message in held.values())

        state = requests.get(tripletex + "/_sandbox/invoicing", timeout=5).json()
        ours = [o for o in state["orders"] if o["deliveryComment"].startswith(f"kassebro:{shop.id}:")]
        assert sorted(o["number"] for o in ours) == sorted(done)
        invoiced = {o.number for o in report.by_state("done") if o.invoice_number}
        by_order = {o["id"]: o["number"] for o in ours}
        invoices = {by_order[i["orders"][0]["id"]]: i for i in state["invoices"] if i["orders"][0]["id"] in by_order}
        assert set(invoices) == invoiced
        for number, invoice in invoices.items():
            assert Decimal(str(invoice["amount"])) * 100 == orders[number].total, number
        b2b = {n for n in done if shop.payment_methods[orders[n].payment_method].transfer == "order"}
        assert b2b and all(not o["isClosed"] for o in ours if o["number"] in b2b)
        emailed = {e["invoice_number"] for e in state["emails"]}
        pay_later = {
            invoices[n]["invoiceNumber"] for n in invoiced if orders[n].payment_method in ("invoice", "faktura")
        }
        assert emailed == pay_later

        # a second run finds nothing to do and sends nothing
        before = dict(tx.calls)
        again = transfer_new(shop, api, tx, store, now=NOW + dt.timedelta(minutes=15))
        assert [o for o in again.outcomes if o.state != "held"] == []
        sent = {k: v - before.get(k, 0) for k, v in tx.calls.items() if v != before.get(k, 0)}
        assert not any(k.startswith(("POST", "PUT")) for k in sent), sent
