"""How a neutral demo order (`webshop_orders.WebOrder`) looks in the WooCommerce REST API v3: the
order JSON, its notes and refunds, the payment gateways and tax rates (the app is `woocommerce.py`).

Documented by WooCommerce and followed here (woocommerce.github.io/woocommerce-rest-api-docs and
WC_REST_Orders_V2_Controller): amounts are strings with 2 decimals (dp=2), line `price` a number
(the line total / quantity, here to at most 6 decimals). Line `subtotal`/`total` and shipping/fee
`total` EXCLUDE tax also when `prices_include_tax` is true (WooCommerce keeps line totals net and
the tax beside them; shipping and fee costs are net in WooCommerce whatever the setting).
`subtotal` is before the coupon, `total` after; `discount_total` = sum(subtotal - total),
`discount_tax` = sum(subtotal_tax - total_tax), and the coupon line carries the same two. Order
`refunds` list `total` as a negative string, newest first; a refund of a line has line_items with
negative quantities and the `_refunded_item_id` meta. Tax classes: standard ("" on a line),
"reduced-rate" (15 %), "zero-rate" (0 %). Dates are site time (Europe/Oslo) and GMT, without an
offset. `date_paid` is when the order first reached processing/completed, `date_completed` when
it was completed (WC_Order's status transitions); notes say "Order status changed from Processing
to Completed." with WooCommerce's labels.

The totals, to the øre (WooCommerce's convention): per line, subtotal_tax = the VAT of the line
before the coupon and total_tax = the VAT of the line after it, each rounded half up (out of the
gross amount in a shop with prices incl. VAT, on top of the net one otherwise:
`webshop_orders.split`); `total` = sum(line total + total_tax) + shipping_total + shipping_tax +
sum(fee total + total_tax); `cart_tax` = line taxes + fee taxes, `total_tax` = cart_tax +
shipping_tax, each tax line the sum for its rate. Real WooCommerce keeps line totals with more
decimals and rounds them to `dp` in the answer, which can leave a 1-øre gap between the lines and
`total`; the sandbox rounds the tax per line to the øre and derives the net from it, so the sums
above hold exactly.

INFERRED (not WooCommerce core):

- The organisation number of a company customer is order meta `_billing_org_number` (and customer
  meta): the key the Norwegian checkout-field plugins commonly use for a "billing_org_number" field.
- What was captured: WooCommerce core keeps no captured amount (each payment plugin its own meta);
  the sandbox writes order meta `_captured_amount` (kroner, 2 decimals) on every order whose
  payment was taken at checkout; it differs from `total` on the few orders with a capture difference.
- Gateway ids and titles as a Norwegian shop would set them: "stripe" (Kort), "vipps", "klarna",
  "giftcard" (Gavekort), "invoice" (Faktura, with a 39.00 Fakturagebyr fee line), "bacs" (the B2B
  bank transfer; a new b2b order is "on-hold", as WooCommerce's BACS gateway leaves it).
- Ids: line/shipping/fee/coupon/tax items share one counter per shop, notes another; refund ids
  start at 90001 (in WooCommerce they share the post ids with orders); customer user ids are the
  shop's customer number + 1 (user 1 is the shop's admin).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kassebro.sandbox.webshop_orders import (
    CAPTURED_METHODS,
    OSLO,
    UTC,
    Address,
    Customer,
    Line,
    WebOrder,
    money,
    split,
)

WC_VERSION = "9.4.2"
REFUND_IDS_FROM = 90001

STATUS_LABELS = {
    "pending": "Pending payment",
    "processing": "Processing",
    "on-hold": "On hold",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
    "failed": "Failed",
    "checkout-draft": "Draft",
}
PAID_STATUSES = ("processing", "completed")


@dataclass(frozen=True)
class TaxRate:
    id: int
    rate: int
    name: str
    tax_class: str  # as GET /taxes shows it; a line item shows "" for "standard"
    shipping: bool


TAX_RATES = {
    25: TaxRate(1, 25, "MVA 25%", "standard", True),
    15: TaxRate(2, 15, "MVA 15%", "reduced-rate", False),
    0: TaxRate(3, 0, "MVA 0%", "zero-rate", False),
}


@dataclass(frozen=True)
class Gateway:
    id: str
    title: str
    method_title: str
    description: str


GATEWAYS = {
    "card": Gateway("stripe", "Kort", "Stripe", "Betal med Visa eller Mastercard."),
    "vipps": Gateway("vipps", "Vipps", "Vipps MobilePay", "Betal enkelt med Vipps."),
    "klarna": Gateway("klarna", "Klarna", "Klarna Payments", "Del opp eller betal senere med Klarna."),
    "giftcard": Gateway("giftcard", "Gavekort", "Gift Cards", "Betal med gavekort fra Nettbutikk Fjord."),
    "invoice": Gateway("invoice", "Faktura", "Invoice", "Faktura med 14 dagers forfall. Fakturagebyr kr 39."),
    "b2b": Gateway("bacs", "Bankoverføring (bedrift)", "Direct bank transfer", "Faktura til bedrift, 30 dager."),
}


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def wc_dates(moment: dt.datetime | None) -> tuple[str | None, str | None]:
    """(site time, GMT), both "YYYY-MM-DDTHH:MM:SS" without an offset, as WooCommerce writes them."""
    if moment is None:
        return None, None
    local = moment.astimezone(OSLO).replace(tzinfo=None).isoformat(timespec="seconds")
    return local, moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def set_date(doc: dict[str, Any], key: str, moment: dt.datetime | None) -> None:
    doc[key], doc[key + "_gmt"] = wc_dates(moment)


def number(ore: int, quantity: int) -> int | Decimal:
    """`price`: øre / quantity in kroner as a JSON number, at most 6 decimals (12 or 79.2)."""
    value = (Decimal(ore) / Decimal(100 * abs(quantity))).quantize(Decimal("0.000001"))
    if value == value.to_integral_value():
        return int(value)
    return Decimal(format(value.normalize(), "f"))


def wc_status(neutral: str, method: str) -> str:
    if neutral == "new":
        return "on-hold" if method == "b2b" else "pending"
    return neutral


def status_flags(doc: dict[str, Any]) -> None:
    status = doc["status"]
    doc["is_editable"] = status in ("pending", "on-hold", "checkout-draft")
    doc["needs_payment"] = status in ("pending", "failed") and Decimal(doc["total"]) > 0
    doc["needs_processing"] = True


def wc_address(c: Customer, billing: bool, address: Address) -> dict[str, Any]:
    out = {
        "first_name": c.first_name,
        "last_name": c.last_name,
        "company": c.company,
        "address_1": address.address1,
        "address_2": address.address2,
        "city": address.city,
        "state": "",
        "postcode": address.postcode,
        "country": address.country,
    }
    if billing:
        out |= {"email": c.email, "phone": c.phone}
    else:
        out["phone"] = ""
    return out


def user_id(c: Customer) -> int:
    return c.id + 1 if c.account else 0


@dataclass
class Record:
    """One order as the shop keeps it: the order JSON (without `_links`), its notes and refunds."""

    doc: dict[str, Any]
    created: dt.datetime
    modified: dt.datetime
    notes: list[dict[str, Any]]
    refunds: list[dict[str, Any]]


class Ids:
    """The shop's id sequences: order items, meta, notes, refunds."""

    def __init__(self) -> None:
        self.item = itertools.count(1)
        self.meta = itertools.count(1)
        self.note = itertools.count(1)
        self.refund = itertools.count(REFUND_IDS_FROM)


def line_item(
    item_id: int,
    line: Line,
    subtotal: tuple[int, int],
    total: tuple[int, int],
    meta: list[dict[str, Any]],
    sign: int = 1,
) -> dict[str, Any]:
    """A line item; `subtotal` and `total` are (net, tax) in øre, negative in a refund (sign -1)."""
    rate, quantity = line.product.vat_rate, sign * line.quantity
    return {
        "id": item_id,
        "name": line.product.name,
        "product_id": line.product.product_id,
        "variation_id": 0,
        "quantity": quantity,
        "tax_class": "" if rate == 25 else TAX_RATES[rate].tax_class,
        "subtotal": money(subtotal[0]),
        "subtotal_tax": money(subtotal[1]),
        "total": money(total[0]),
        "total_tax": money(total[1]),
        "taxes": _taxes(rate, total[1], subtotal[1]),
        "meta_data": meta,
        "sku": line.product.sku,
        "price": number(total[0], quantity),
        "image": {"id": "", "src": ""},
        "parent_name": None,
    }


def _taxes(rate: int, total: int, subtotal: int | None) -> list[dict[str, Any]]:
    return [{"id": TAX_RATES[rate].id, "total": money(total), "subtotal": "" if subtotal is None else money(subtotal)}]


def render(o: WebOrder, ids: Ids) -> Record:
    """The order as WooCommerce answers it; amounts add up as the module docstring says."""
    incl = o.prices_include_vat
    cart_tax: dict[int, int] = {}
    ship_tax: dict[int, int] = {}
    lines, items = [], {}
    discount = discount_tax = total = 0
    for index, line in enumerate(o.lines):
        rate = line.product.vat_rate
        sub_net, sub_tax = split(line.amount, rate, incl)
        net, tax = split(line.amount - line.coupon, rate, incl)
        discount, discount_tax, total = discount + sub_net - net, discount_tax + sub_tax - tax, total + net + tax
        cart_tax[rate] = cart_tax.get(rate, 0) + tax
        items[index] = item_id = next(ids.item)
        lines.append(line_item(item_id, line, (sub_net, sub_tax), (net, tax), []))
    shipping_lines, shipping_total, shipping_tax = [], 0, 0
    if o.shipping is not None:
        shipping_total, shipping_tax = split(o.shipping.price, o.shipping.vat_rate, incl)
        ship_tax[o.shipping.vat_rate] = shipping_tax
        shipping_lines.append(
            {
                "id": next(ids.item),
                "method_title": o.shipping.name,
                "method_id": o.shipping.code,
                "instance_id": "3" if o.shipping.code == "flat_rate" else "4",
                "total": money(shipping_total),
                "total_tax": money(shipping_tax),
                "taxes": _taxes(o.shipping.vat_rate, shipping_tax, None),
                "meta_data": [],
            }
        )
    total += shipping_total + shipping_tax
    fee_lines = []
    for fee in o.fees:
        net, tax = split(fee.price, fee.vat_rate, incl)
        cart_tax[fee.vat_rate] = cart_tax.get(fee.vat_rate, 0) + tax
        total += net + tax
        fee_lines.append(
            {
                "id": next(ids.item),
                "name": fee.name,
                "tax_class": "",
                "tax_status": "taxable",
                "amount": money(net),
                "total": money(net),
                "total_tax": money(tax),
                "taxes": _taxes(fee.vat_rate, tax, None),
                "meta_data": [],
            }
        )
    coupon_lines = []
    if o.coupon is not None:
        nominal = o.coupon.value if o.coupon.kind == "percent" else number(o.coupon.value, 1)
        coupon_lines.append(
            {
                "id": next(ids.item),
                "code": o.coupon.code,
                "discount": money(discount),
                "discount_tax": money(discount_tax),
                "discount_type": "percent" if o.coupon.kind == "percent" else "fixed_cart",
                "nominal_amount": nominal,
                "free_shipping": False,
                "meta_data": [],
            }
        )
    tax_lines = [
        {
            "id": next(ids.item),
            "rate_code": f"NO-{TAX_RATES[rate].name}-1",
            "rate_id": TAX_RATES[rate].id,
            "label": TAX_RATES[rate].name,
            "compound": False,
            "tax_total": money(cart_tax.get(rate, 0)),
            "shipping_tax_total": money(ship_tax.get(rate, 0)),
            "rate_percent": rate,
            "meta_data": [],
        }
        for rate in sorted(set(cart_tax) | set(ship_tax), reverse=True)
    ]
    gateway = GATEWAYS[o.payment_method]
    history = [(wc_status(s, o.payment_method), t) for s, t in o.history]
    paid = next((t for s, t in history if s in PAID_STATUSES), None)
    completed = next((t for s, t in reversed(history) if s == "completed"), None)
    meta = []
    if o.customer.org_number:
        meta.append({"id": next(ids.meta), "key": "_billing_org_number", "value": o.customer.org_number})
    if o.captured:
        meta.append({"id": next(ids.meta), "key": "_captured_amount", "value": money(total + o.capture_delta)})
    doc: dict[str, Any] = {
        "id": o.id,
        "parent_id": 0,
        "number": str(o.id),
        "order_key": "wc_order_" + hashlib.sha1(f"fjord-{o.id}".encode()).hexdigest()[:13],
        "created_via": "checkout",
        "version": WC_VERSION,
        "status": history[-1][0],
        "currency": "NOK",
        "currency_symbol": "kr",
    }
    set_date(doc, "date_created", o.created)
    set_date(doc, "date_modified", o.modified)
    doc |= {
        "discount_total": money(discount),
        "discount_tax": money(discount_tax),
        "shipping_total": money(shipping_total),
        "shipping_tax": money(shipping_tax),
        "cart_tax": money(sum(cart_tax.values())),
        "total": money(total),
        "total_tax": money(sum(cart_tax.values()) + shipping_tax),
        "prices_include_tax": incl,
        "customer_id": user_id(o.customer),
        "customer_ip_address": "",
        "customer_user_agent": "",
        "customer_note": o.customer_note,
        "billing": wc_address(o.customer, True, o.customer.address),
        "shipping": wc_address(o.customer, False, o.shipping_address),
        "payment_method": gateway.id,
        "payment_method_title": gateway.title,
        "transaction_id": o.transaction_id,
    }
    set_date(doc, "date_paid", paid)
    set_date(doc, "date_completed", completed)
    refunds = []
    for r in sorted(o.refunds, key=lambda r: r.at, reverse=True):
        amount = total if r.amount is None else r.amount
        refunds.append(_refund(o, r.line, items, amount, r.reason, r.at, ids))
    doc |= {
        "cart_hash": "",
        "meta_data": meta,
        "line_items": lines,
        "tax_lines": tax_lines,
        "shipping_lines": shipping_lines,
        "fee_lines": fee_lines,
        "coupon_lines": coupon_lines,
        "refunds": [{"id": r["id"], "reason": r["reason"], "total": "-" + r["amount"]} for r in refunds],
        "payment_url": f"https://fjord.example.no/kasse/order-pay/{o.id}/?pay_for_order=true&key={doc['order_key']}",
    }
    status_flags(doc)
    notes = []
    if history[0][0] == "on-hold":
        notes.append(
            note(ids, history[0][1], "Awaiting BACS payment Order status changed from Pending payment to On hold.")
        )
    for (before, _), (after, at) in itertools.pairwise(history):
        notes.append(note(ids, at, f"Order status changed from {STATUS_LABELS[before]} to {STATUS_LABELS[after]}."))
    return Record(doc, o.created, o.modified, notes[::-1], refunds)


def _refund(
    o: WebOrder, line: int | None, items: dict[int, int], amount: int, reason: str, at: dt.datetime, ids: Ids
) -> dict[str, Any]:
    line_items = []
    if line is not None:
        returned = o.lines[line]
        net, tax = split(returned.amount - returned.coupon, returned.product.vat_rate, o.prices_include_vat)
        meta = [{"id": next(ids.meta), "key": "_refunded_item_id", "value": str(items[line])}]
        line_items.append(line_item(next(ids.item), returned, (-net, -tax), (-net, -tax), meta, -1))
    refund: dict[str, Any] = {"id": next(ids.refund)}
    set_date(refund, "date_created", at)
    return refund | {
        "amount": money(amount),
        "reason": reason,
        "refunded_by": 1,
        "refunded_payment": o.payment_method in CAPTURED_METHODS,
        "meta_data": [],
        "line_items": line_items,
        "shipping_lines": [],
        "tax_lines": [],
        "fee_lines": [],
    }


def note(ids: Ids, at: dt.datetime, text: str, customer_note: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": next(ids.note), "author": "system"}
    set_date(out, "date_created", at)
    return out | {"note": text, "customer_note": customer_note}


# --------------------------------------------------------------------------------------------
# Payment gateways and tax rates
# --------------------------------------------------------------------------------------------


def gateway_json(order: int, g: Gateway, base: str) -> dict[str, Any]:
    title = {"id": "title", "label": "Title", "type": "text", "value": g.title, "default": g.method_title}
    return {
        "id": g.id,
        "title": g.title,
        "description": g.description,
        "order": order,
        "enabled": True,
        "method_title": g.method_title,
        "method_description": g.description,
        "method_supports": ["products", "refunds"] if g.id in ("stripe", "vipps", "klarna") else ["products"],
        "settings": {"title": title | {"description": "", "tip": "", "placeholder": ""}},
        "_links": {"self": [{"href": f"{base}/payment_gateways/{g.id}"}]},
    }


def tax_rate_json(t: TaxRate) -> dict[str, Any]:
    return {
        "id": t.id,
        "country": "NO",
        "state": "",
        "postcode": "",
        "city": "",
        "postcodes": [],
        "cities": [],
        "rate": f"{t.rate}.0000",
        "name": t.name,
        "priority": 1,
        "compound": False,
        "shipping": t.shipping,
        "order": t.id - 1,
        "class": t.tax_class,
    }
