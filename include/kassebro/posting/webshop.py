"""Web orders into Tripletex exactly once: one function per order, one per run, used by the DAG, the
CLI and the tests alike.

An order is transferred once it reaches a completed status (`Webshop.statuses`) and was created on
or after `enabled_since`. Per order, each step writes down what it made before the next begins:

1. the draft (booking.invoice): an order that cannot be transferred as it is (unmapped payment
   method or VAT rate, a total Tripletex would compute differently, no captured amount for a paid
   method) is held back with the reason, nothing sent;
2. the customer: known in our records, else found in Tripletex by organisation number, then e-mail
   (inactive customers too), else created with the lowest free number from `customer_number_start`;
3. the order: looked up by the shop's order number and our tag before it is created; its id is
   recorded the moment it exists;
4. the invoice (paid or to pay later; not for the "order" transfer): the call's time is recorded
   before it goes out, so after a lost answer the next attempt reads the order and, when Tripletex
   closed it, finds its invoice instead of invoicing again. A closed order is never invoiced again;
5. a refund (`WebOrder.refunded`), at the transfer or after it: a done order whose shop reports a
   refund not dealt with yet is taken up again, whatever its status now ("refunded" is no
   completed status). A full refund of an invoice (the refund equals the invoice's amount) gets one
   credit note (`PUT /invoice/{id}/:createCreditNote`, e-mailed when the payment method's rule
   sends invoices): the invoice is read first (credited already, by us after a lost answer or by
   hand? then that credit note is found and recorded), and the call's date and time are recorded
   before it goes out. A partial refund (its split over the VAT rates is not known), a refund of an
   order left open, and one that differs from the invoice are reported for a person, once each.

A transient failure (timeout, 5xx, lost answer) gives the claim back with what is known, for the
next attempt; a refusal marks the order failed with Tripletex's words, until a re-transfer (a
refused credit note leaves the order done, its credit "failed", until a re-transfer).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from kassebro.booking.invoice import InvoiceDraft, draft
from kassebro.config.webshop import Webshop
from kassebro.core.errors import InputError
from kassebro.core.money import format_ore
from kassebro.ledgers.base import LedgerError, LedgerTransient, LedgerValidationError
from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing, TxCustomer, TxInvoice
from kassebro.posting.journal import ClaimLost, RenewedLease
from kassebro.posting.transfers import Transfer, Transfers
from kassebro.sources.webshop import ShopApi, ShopError, WebCustomer, WebOrder

log = logging.getLogger(__name__)
LEASE_SECONDS = 120
CUSTOMER_WAIT_SECONDS = 30
REFUND_NOTE = "the shop refunded"
"""How every refund note begins (a later one replaces it in the record's message)."""


@dataclass(frozen=True)
class Outcome:
    """What became of one order in this attempt.

    `state` is the record's state afterwards; `note` says what a person should know (a capture
    that differs from the invoice, an order already invoiced on a re-transfer).
    """

    number: str
    state: str
    message: str = ""
    invoice_number: int | None = None
    tx_order_id: int | None = None
    note: str = ""


@dataclass
class RunReport:
    """Every order a run looked at, by outcome."""

    webshop_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0
    """Orders read that were not due (not completed, before enabled_since, already done)."""

    def by_state(self, state: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == state]

    @property
    def problems(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state in ("held", "failed") or (o.state != "done" and o.message)]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
        parts = [f"{n} {state}" for state, n in sorted(counts.items())] or ["nothing to transfer"]
        return f"{self.webshop_id}: " + ", ".join(parts) + f" ({self.skipped} not due)"


def tag(shop: Webshop, number: str) -> str:
    """The searchable mark every Tripletex order of ours carries (in `deliveryComment`)."""
    return f"kassebro:{shop.id}:{number}"


def is_due(order: WebOrder, shop: Webshop) -> bool:
    local = order.created_at.astimezone(ZoneInfo(shop.timezone)).date()
    return local >= shop.enabled_since and order.completed_at(shop.statuses) is not None


def refund_due(order: WebOrder, dealt_with: int | None, credit_state: str | None, *, again: bool = False) -> bool:
    """Whether a done order's refund still asks for something: a refund the shop reports that was
    not dealt with (credited, or reported), or a credit note call whose outcome is not known. A
    refused credit note waits for a re-transfer."""
    if credit_state == "failed" and not again:
        return False
    return credit_state == "crediting" or (order.refunded > 0 and order.refunded != (dealt_with or 0))


def transfer_order(
    order: WebOrder,
    shop: Webshop,
    tx: TripletexInvoicing,
    store: Transfers,
    *,
    email: bool | None = None,
    again: bool = False,
    lease_seconds: int = LEASE_SECONDS,
) -> Outcome:
    """Bring one completed order into Tripletex (see the module docstring); never twice.

    `email`: None sends the invoice as the payment method says; False never e-mails (a re-transfer
    of an order whose customer was already told). `again`: a re-transfer on request, which also
    takes a failed order and reports a done one.
    """
    number = order.number
    known = store.get(shop.id, number)
    if known is not None and known.state == "done":  # a refund may bring it back, nothing else
        return _done_order(order, shop, tx, store, known, email=email, again=again, lease_seconds=lease_seconds)
    try:
        made = draft(order, shop)
        _check_paid(made)
    except InputError as exc:
        message = "; ".join(issue.message for issue in exc.issues)
        token = store.claim(shop.id, number, lease_seconds)
        if token is None:
            return _busy_or_done(store, shop, number)
        store.update(shop.id, number, token, release=True, state="held", message=message, total_ore=order.total)
        return Outcome(number, "held", message)
    token = store.claim(shop.id, number, lease_seconds, again=again)
    if token is None:
        return _busy_or_done(store, shop, number)
    record = store.get(shop.id, number)
    assert record is not None
    if record.state == "done":
        store.update(shop.id, number, token, release=True)
        return _already(record)
    if record.state == "failed" and not again:
        store.update(shop.id, number, token, release=True)
        return Outcome(number, "failed", record.message, tx_order_id=record.tx_order_id)
    lease = RenewedLease(
        lambda _sending: store.renew(shop.id, number, token), f"{shop.id} order {number}", lease_seconds
    )
    try:
        with lease:
            return _transfer(made, shop, tx, store, record, token, lease, email)
    except ClaimLost as exc:
        return Outcome(number, "new", str(exc))
    except LedgerTransient as exc:
        store.update(shop.id, number, token, release=True, message=f"will try again: {exc}")
        current = store.get(shop.id, number)
        return Outcome(number, current.state if current else "new", f"will try again: {exc}")
    except LedgerError as exc:  # refused or not allowed: a person must act, then re-transfer
        store.update(shop.id, number, token, release=True, state="failed", message=str(exc))
        current = store.get(shop.id, number)
        return Outcome(number, "failed", str(exc), tx_order_id=current.tx_order_id if current else None)


def _check_paid(made: InvoiceDraft) -> None:
    if made.rule.transfer == "paid_invoice" and made.order.captured is None:
        from kassebro.core.errors import Issue

        raise InputError(
            Issue(
                f"{made.order.webshop_id}/order {made.order.number}",
                "captured",
                f"paid with {made.order.payment_title or made.order.payment_method}, but the shop does not say "
                "what was captured; an invoice is never marked paid with a guessed amount",
            )
        )


def _busy_or_done(store: Transfers, shop: Webshop, number: str) -> Outcome:
    record = store.get(shop.id, number)
    if record is not None and record.state == "done":
        return _already(record)
    return Outcome(number, "busy", "another run is working on this order")


def _already(record: Transfer) -> Outcome:
    if record.invoice_number:
        note = f"already invoiced in Tripletex as invoice {record.invoice_number}"
        if record.credit_note_number:
            note += f", credited as credit note {record.credit_note_number}"
        note += "; nothing was sent again"
    else:
        note = f"already transferred (Tripletex order {record.tx_order_id}); nothing was sent again"
    return Outcome(record.order_number, "done", "", record.invoice_number, record.tx_order_id, note)


def _done_order(
    order: WebOrder,
    shop: Webshop,
    tx: TripletexInvoicing,
    store: Transfers,
    known: Transfer,
    *,
    email: bool | None,
    again: bool,
    lease_seconds: int,
) -> Outcome:
    """A done order: reported, unless the shop refunded it since (then step 5, under a claim)."""
    number = order.number
    if not refund_due(order, known.refunded_ore, known.credit_state, again=again):
        return _already(known)
    token = store.claim(shop.id, number, lease_seconds, again=True)  # a done order: only for its refund
    if token is None:
        return Outcome(number, "busy", "another run is working on this order")
    record = store.get(shop.id, number)
    assert record is not None
    if record.state != "done" or not refund_due(order, record.refunded_ore, record.credit_state, again=again):
        store.update(shop.id, number, token, release=True)
        return _already(record)  # dealt with by another run meanwhile
    lease = RenewedLease(
        lambda _sending: store.renew(shop.id, number, token), f"{shop.id} order {number}", lease_seconds
    )
    try:
        with lease:
            return _refund(order, shop, tx, store, token, email)
    except ClaimLost as exc:
        return Outcome(number, "crediting", str(exc), record.invoice_number, record.tx_order_id)


def _transfer(
    made: InvoiceDraft,
    shop: Webshop,
    tx: TripletexInvoicing,
    store: Transfers,
    record: Transfer,
    token: str,
    lease: RenewedLease,
    email: bool | None,
) -> Outcome:
    order, rule = made.order, made.rule
    zone = ZoneInfo(shop.timezone)
    order_date = record.order_date or order.created_at.astimezone(zone).date()
    completed = order.completed_at(shop.statuses) or order.updated_at
    invoice_date = record.invoice_date or completed.astimezone(zone).date()
    customer_id = record.customer_id or resolve_customer(order.customer, shop, tx, store, lease).id

    order_id = record.tx_order_id
    closed: bool | None = None  # None: not read in this attempt
    if order_id is None:
        known = {
            "transfer": rule.transfer,
            "order_date": order_date,
            "total_ore": made.total,
            "customer_id": customer_id,
        }
        found = tx.find_order(order.number, tag(shop, order.number), order_date)
        if found is None:  # what the order will be, written under our claim (the write is the fence)
            _write(store, shop, order.number, token, **known)
            reference = f"{shop.name} ordre {order.number}"
            found = tx.create_order(made, customer_id, order_date, tag(shop, order.number), reference)
        order_id, closed = found.id, found.closed
        _write(store, shop, order.number, token, state="ordered", tx_order_id=order_id, message="", **known)
    if rule.transfer == "order":
        store.update(shop.id, order.number, token, release=not order.refunded, state="done", message="")
        left = Outcome(order.number, "done", tx_order_id=order_id, note="left open for invoicing in Tripletex")
        return _refund(order, shop, tx, store, token, email, left) if order.refunded else left

    invoice = None
    if closed is None and (record.invoicing_sent_at is not None or record.state == "invoicing"):
        closed = tx.order_state(order_id).closed  # an earlier attempt's invoice call may have gone through
    if closed:  # Tripletex closes an order when it invoices it: find that invoice, never invoice again
        first, last = min(invoice_date, order_date), max(invoice_date, dt.date.today())
        invoice = tx.find_invoice(order_id, first, last, customer_id)
        if invoice is None:
            raise LedgerValidationError(
                "Tripletex",
                f"order {order_id} is closed but no invoice made from it was found; look it up in Tripletex",
            )
    send = rule.send_invoice if email is None else (email and rule.send_invoice)
    paid = order.captured if rule.transfer == "paid_invoice" else None
    planned = None
    if invoice is None and shop.invoice_number_start:  # the shop's own series: the number is the key
        planned = record.planned_invoice_number or store.plan_invoice_number(
            shop.id, order.number, shop.invoice_number_start
        )
        invoice = _numbered_invoice(tx, store, shop, order.number, token, planned, order_id)
    if invoice is None:
        payment_type = tx.payment_type_id(rule.payment_type) if rule.payment_type else None
        now = dt.datetime.now(dt.UTC)
        _write(store, shop, order.number, token, state="invoicing", invoice_date=invoice_date, invoicing_sent_at=now)
        if planned:
            invoice = tx.invoice_with_number(
                order_id, invoice_date, planned, send=send, payment_type_id=payment_type, paid=paid
            )
        else:
            invoice = tx.invoice_order(
                order_id, invoice_date, send=send, send_type=rule.send_type, payment_type_id=payment_type, paid=paid
            )
    notes = []
    if invoice.amount != made.total:
        notes.append(f"Tripletex invoiced {format_ore(invoice.amount)}, the shop's total is {format_ore(made.total)}")
    if paid is not None and paid != invoice.amount:
        gap = invoice.amount - paid
        left = f"{format_ore(gap)} left on the invoice" if gap > 0 else f"{format_ore(-gap)} paid over the invoice"
        notes.append(
            f"captured {format_ore(paid)} against an invoice of {format_ore(invoice.amount)}: {left}, not absorbed"
        )
    note = "; ".join(notes)
    store.update(
        shop.id,
        order.number,
        token,
        release=not order.refunded,  # kept for the refund's step
        state="done",
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        invoice_amount_ore=invoice.amount,
        paid_ore=paid,
        emailed=send,
        message=note,
    )
    done = Outcome(order.number, "done", "", invoice.number, order_id, note)
    return _refund(order, shop, tx, store, token, email, done) if order.refunded else done


def _numbered_invoice(
    tx: TripletexInvoicing, store: Transfers, shop: Webshop, number: str, token: str, planned: int, order_id: int
) -> TxInvoice | None:
    """The invoice already holding the shop series' number for this order (an earlier attempt's
    answer was lost), or None when the number is free. A number Tripletex holds for another order
    means the series overlaps Tripletex's own: the order stops, and its number is given up."""
    held = tx.invoice_numbered(planned)
    if held is None:
        return None
    invoice, orders = held
    if order_id in orders:
        return invoice
    store.update(shop.id, number, token, planned_invoice_number=None)
    raise LedgerValidationError(
        "Tripletex",
        f"invoice number {planned} of the shop's series (invoice_number_start {shop.invoice_number_start}) is "
        f"already invoice {invoice.id} in Tripletex, for another order: the series overlaps Tripletex's own "
        "numbers; set invoice_number_start clear of them, then re-transfer",
    )


def _write(store: Transfers, shop: Webshop, number: str, token: str, **values: object) -> None:
    """Record a step under our claim, right before the call it announces: a claim that ran out
    (another run took the order over) stops us here, before anything is sent."""
    if not store.update(shop.id, number, token, **values):
        raise ClaimLost(
            f"{shop.id} order {number}: the claim is no longer ours (its lease ran out and another run "
            "took the order over); nothing was sent"
        )


def _refund(
    order: WebOrder,
    shop: Webshop,
    tx: TripletexInvoicing,
    store: Transfers,
    token: str,
    email: bool | None,
    transferred: Outcome | None = None,
) -> Outcome:
    """Step 5 for a done order under our claim (which it gives back): a full refund of its invoice
    becomes one credit note, anything else is reported. `transferred`: the outcome of this
    attempt's transfer, when the order was transferred just now."""
    number, refunded = order.number, format_ore(order.refunded)
    record = store.get(shop.id, number)
    assert record is not None

    def finish(state: str, note: str, message: str = "", **values: object) -> Outcome:
        parts = [p for p in record.message.split("; ") if p and not p.startswith(REFUND_NOTE)]
        if state == "done":
            values["refunded_ore"] = order.refunded
        store.update(shop.id, number, token, release=True, message="; ".join([*parts, note]), **values)
        if transferred is not None and transferred.note:
            note = f"{transferred.note}; {note}"
        return Outcome(number, state, message, record.invoice_number, record.tx_order_id, note)

    if record.invoice_id is None:
        left = "take it off the order or credit it in Tripletex, where it is invoiced"
        return finish("done", f"{REFUND_NOTE} {refunded} of this order: {left}")
    if record.credit_note_number:
        return finish("done", f"{REFUND_NOTE} {refunded}; already credited as credit note {record.credit_note_number}")
    rule = shop.payment_methods.get(order.payment_method)
    wanted = bool(rule and rule.send_invoice)
    send = wanted if email is None else (email and wanted)
    try:
        current = None  # the invoice as Tripletex has it, read when needed
        if record.invoice_amount_ore is None or record.credit_state == "crediting":  # did the call go through?
            current = tx.invoice(record.invoice_id)
        amount = record.invoice_amount_ore if current is None else current.amount
        invoice = f"invoice {record.invoice_number} of {format_ore(amount)}"
        if current is None or not current.credited:
            if order.refunded < amount:
                return finish(
                    "done",
                    f"{REFUND_NOTE} {refunded} of {invoice}: a partial refund needs a credit note made in "
                    "Tripletex (how the refund splits over the VAT rates is not known to kassebro)",
                    credit_state=None,
                )
            if order.refunded > amount:
                note = f"{REFUND_NOTE} {refunded}, more than {invoice}: credit it in Tripletex"
                return finish("done", note, credit_state=None)
            current = current or tx.invoice(record.invoice_id)
        if current.credited:  # an earlier attempt's call went through, or a person credited it
            first = min(filter(None, (record.invoice_date, current.date)), default=dt.date(2000, 1, 1))
            credit = tx.find_credit_note(record.invoice_id, first, record.customer_id)
            if credit is None:
                raise LedgerValidationError(
                    "Tripletex",
                    f"invoice {record.invoice_number} is credited in Tripletex but its credit note was not "
                    "found; look it up in Tripletex",
                )
            emailed = record.credit_emailed if record.credit_sent_at is not None else None
        else:
            zone = ZoneInfo(shop.timezone)
            invoiced = record.invoice_date or current.date or order.updated_at.astimezone(zone).date()
            date = record.credit_date or max(invoiced, order.updated_at.astimezone(zone).date())
            now = dt.datetime.now(dt.UTC)
            _write(
                store, shop, number, token, credit_state="crediting", credit_date=date, credit_sent_at=now,
                credit_emailed=send,
            )  # fmt: skip
            address = order.customer.invoice_email or order.customer.email
            comment = f"{shop.name} ordre {number}: refundert i nettbutikken"
            credit = tx.credit_note(
                record.invoice_id, date, comment, send=send, email=address, send_type=rule.send_type if rule else None
            )
            emailed = send
    except LedgerTransient as exc:
        store.update(shop.id, number, token, release=True)
        note = transferred.note if transferred is not None else ""
        return Outcome(number, "crediting", f"will try again: {exc}", record.invoice_number, record.tx_order_id, note)
    except LedgerError as exc:
        note = f"{REFUND_NOTE} {refunded}, all of invoice {record.invoice_number}: no credit note made: {exc}"
        return finish("failed", note, f"no credit note made: {exc}", credit_state="failed")
    note = f"{REFUND_NOTE} {refunded}, all of {invoice}: credited as credit note {credit.number}"
    if emailed:
        note += " (e-mailed)"
    if credit.outstanding:
        note += (
            f"; {format_ore(-credit.outstanding)} paid stays owed to the customer on the credit note until "
            "the shop's repayment is booked against it in Tripletex"
        )
    return finish(
        "done",
        note,
        credit_state="credited",
        credit_note_id=credit.id,
        credit_note_number=credit.number,
        credit_emailed=emailed,
    )


def resolve_customer(
    customer: WebCustomer, shop: Webshop, tx: TripletexInvoicing, store: Transfers, lease: RenewedLease | None = None
) -> TxCustomer:
    """The Tripletex customer for a shop customer: our record, then organisation number, then
    e-mail (inactive ones too: an inactive match is refused for a person to decide), else a new
    customer with the lowest number from `customer_number_start` that nobody holds."""
    deadline = time.monotonic() + CUSTOMER_WAIT_SECONDS
    while True:
        known = store.customer(shop.id, customer.key)
        if known:
            return TxCustomer(known[0], known[1], customer.name)
        token = store.claim_customer(shop.id, customer.key)
        if token is not None:
            break
        if time.monotonic() > deadline:
            raise LedgerTransient(
                "Tripletex", f"another run is finding or creating the customer {customer.name!r}; trying again later"
            )
        time.sleep(0.2)  # another run is finding or creating this customer right now
    try:
        chosen = _find_or_create_customer(customer, shop, tx, store, lease)
    except BaseException:
        store.release_customer(shop.id, customer.key, token)
        raise
    store.remember_customer(shop.id, customer.key, chosen.id, chosen.number)
    return chosen


def _find_or_create_customer(
    customer: WebCustomer, shop: Webshop, tx: TripletexInvoicing, store: Transfers, lease: RenewedLease | None
) -> TxCustomer:
    start = max(shop.customer_number_start, store.highest_customer_number(shop.id) + 1)
    return tx.find_or_create(customer, start, before_create=lease.fence if lease is not None else None)


def transfer_orders(
    orders: Iterable[WebOrder],
    shop: Webshop,
    tx: TripletexInvoicing,
    store: Transfers,
    *,
    email: bool | None = None,
    again: bool = False,
) -> RunReport:
    """Transfer every due order not done yet, and take up a done one the shop refunded since; one
    order's failure never stops the others."""
    report = RunReport(shop.id)
    states = store.states(shop.id)
    refunds = store.refunds(shop.id)
    for order in orders:
        state, written = states.get(order.number, ("new", None))
        if state == "done" and refund_due(order, *refunds.get(order.number, (0, None)), again=again):
            report.outcomes.append(transfer_order(order, shop, tx, store, email=email, again=again))
            continue  # refunded after its transfer: whatever its status now
        unchanged_hold = state == "held" and written is not None and order.updated_at <= written
        if not again and (not is_due(order, shop) or state in ("done", "failed") or unchanged_hold):
            report.skipped += 1
            continue
        if again and not is_due(order, shop):
            report.outcomes.append(
                Outcome(order.number, "not_due", f"status {order.status!r} is not one of {', '.join(shop.statuses)}")
            )
            continue
        report.outcomes.append(transfer_order(order, shop, tx, store, email=email, again=again))
    return report


def transfer_new(
    shop: Webshop, api: ShopApi, tx: TripletexInvoicing, store: Transfers, *, now: dt.datetime | None = None
) -> RunReport:
    """A scheduled run: read what changed since the last read (less `lookback_days`), transfer
    what is due. The shop is read in full before anything is sent; if it cannot be read the run
    fails (unknown, not "no orders") and the cursor stays where it was."""
    now = now or dt.datetime.now(dt.UTC)
    last = store.read_until(shop.id)
    start = dt.datetime.combine(shop.enabled_since, dt.time(), ZoneInfo(shop.timezone))
    since = max(start, last - dt.timedelta(days=shop.lookback_days)) if last else start
    orders = list(api.orders(since))
    report = transfer_orders(orders, shop, tx, store)
    store.set_read_until(shop.id, now)
    return report


def retransfer(
    shop: Webshop, api: ShopApi, tx: TripletexInvoicing, store: Transfers, numbers: Sequence[str], *, email: bool = True
) -> RunReport:
    """Transfer these orders again on request: a done one is reported, never duplicated (a refund
    not dealt with yet, or a refused credit note, is taken up); a failed or held one continues
    where it stopped; `email=False` never e-mails the customer."""
    orders = []
    report = RunReport(shop.id)
    for number in numbers:
        try:
            orders.append(api.order(str(number)))
        except ShopError as exc:
            report.outcomes.append(Outcome(str(number), "unknown", f"could not read it from the shop: {exc}"))
    again = transfer_orders(orders, shop, tx, store, email=None if email else False, again=True)
    report.outcomes.extend(again.outcomes)
    return report
