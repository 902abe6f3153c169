"""The post step's first half for a day with invoiced credit sales (`credit_sales: invoice`).

The invoices come before the day's voucher: the voucher leaves the invoiced sales out, so it must
never stand in the ledger while an invoice it counts on is missing. Each credit sale goes through
the webshop flow's `transfer_order` (one path: the same claims, lookups and records as web orders,
under the shop id `pos_<vendor>`), so a retry, a lost answer or a wiped journal never makes a
second order or invoice. Any sale not done stops the day before its voucher is posted: a refusal
(a person must act) as a ledger refusal, anything else as transient, for the task's retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kassebro.booking.credit_invoices import orders_in, pos_webshop
from kassebro.ledgers.base import LedgerTransient, LedgerValidationError

if TYPE_CHECKING:
    from kassebro.booking.voucher import Voucher
    from kassebro.config import Vendor
    from kassebro.ledgers.base import Ledger
    from kassebro.posting.journal import Journal
    from kassebro.posting.webshop import Outcome


def invoice_credit_sales(vendor: Vendor, voucher: Voucher, ledger: Ledger, journal: Journal) -> list[Outcome]:
    """Make the day's credit-sale invoices that are not made yet; raise unless all of them exist."""
    orders = orders_in(voucher.meta, vendor.id)
    if not orders:
        return []
    from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing
    from kassebro.posting.transfers import Transfers
    from kassebro.posting.webshop import transfer_order

    shop = pos_webshop(vendor)
    tx = TripletexInvoicing(ledger)  # type: ignore[arg-type]  # config: credit_sales invoice is Tripletex only
    store = Transfers(journal.url)
    outcomes = [
        transfer_order(order, shop, tx, store, email=None if order.customer.email else False, again=True)
        for order in orders
    ]
    refused = [o for o in outcomes if o.state in ("held", "failed")]
    pending = [o for o in outcomes if o.state not in ("done", "held", "failed")]
    where = f"{vendor.id} {voucher.business_day}"
    if refused:
        raise LedgerValidationError(
            "Tripletex",
            f"{where}: {len(refused)} credit sale invoice(s) refused, so the day's voucher is not posted: "
            + "; ".join(f"{o.number}: {o.message}" for o in refused),
        )
    if pending:
        raise LedgerTransient(
            "Tripletex",
            f"{where}: {len(pending)} credit sale invoice(s) not made yet ("
            + "; ".join(f"{o.number}: {o.message or o.state}" for o in pending)
            + "); the day's voucher waits for them",
        )
    return outcomes
