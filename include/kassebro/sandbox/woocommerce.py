"""A local emulator of the WooCommerce REST API v3 (`/wp-json/wc/v3`), for the subset an accounting
integration reads, with fault injection. The demo shop is "Nettbutikk Fjord": 14 days x 6 orders
of `webshop_orders` up to today (`create_app`).

Documented by WooCommerce and followed here (woocommerce.github.io/woocommerce-rest-api-docs, and
the REST controllers of woocommerce/woocommerce where the docs say less):

- Auth over HTTPS: HTTP Basic consumer_key:consumer_secret, or the `consumer_key` and
  `consumer_secret` query parameters. No or unknown key: 401 `woocommerce_rest_cannot_view` ("Sorry,
  you cannot list resources." / "... view this resource."; `woocommerce_rest_cannot_edit` for a
  PUT); a known key with the wrong secret: 401 `woocommerce_rest_authentication_error` "Consumer
  secret is invalid.". Errors are `{code, message, data: {status}}`; unknown routes `rest_no_route`.
- `GET /orders`: `page` (default 1), `per_page` (default 10, 1-100: 101 is a 400
  `rest_invalid_param`, as WordPress validates the schema's maximum, not a silent cap), `offset`,
  `status` (comma list or `status[]`, `any` = all), `after`/`before` (date_created),
  `modified_after`/`modified_before` (date_modified), all exclusive, read in the site's time zone
  (Europe/Oslo) unless `dates_are_gmt=true` or the value has an offset; `include`, `exclude`,
  `customer`, `orderby` (`date` default, `id`, `include`, `modified`; `title`/`slug` sort by id
  here), `order` (`desc` default), ties broken by id. Headers `X-WP-Total`, `X-WP-TotalPages` and a
  `Link` with rel="prev"/"next". A page past the last is an empty list.
- `GET /orders/{id}` (404 `woocommerce_rest_shop_order_invalid_id`), `PUT /orders/{id}` with
  `{"status": ...}`: the status changes, `date_modified` is now, `date_completed` is set on
  "completed", `date_paid` on "processing"/"completed" when not yet paid (WC_Order's status
  transition), and a system note "Order status changed from Processing to Completed." is added
  (labels as WooCommerce writes them). Other fields in the body are ignored (not emulated).
- `GET /orders/{id}/notes` (newest first; `type` any/customer/internal), `GET /orders/{id}/refunds`
  (newest first: amount, reason, refunded_payment, line_items of a line refund with negative
  quantities and the `_refunded_item_id` meta), `GET /customers/{id}` (registered customers; a
  guest has customer_id 0 and no customer), `GET /payment_gateways`, `GET /taxes`.
- The order: amounts are strings with 2 decimals (dp=2), line `price` a number (the line total /
  quantity, here to at most 6 decimals). Line `subtotal`/`total` and shipping/fee `total` EXCLUDE
  tax also when `prices_include_tax` is true (WooCommerce keeps line totals net and the tax beside
  them; shipping and fee costs are net in WooCommerce whatever the setting). `subtotal` is before
  the coupon, `total` after; `discount_total` = sum(subtotal - total), `discount_tax` =
  sum(subtotal_tax - total_tax), and the coupon line carries the same two. Order `refunds` list
  `total` as a negative string, newest first. Tax classes: standard ("" on a line), "reduced-rate"
  (15 %), "zero-rate" (0 %).

The totals, to the øre (WooCommerce's convention): per line, subtotal_tax = the VAT of the line
before the coupon and total_tax = the VAT of the line after it, each rounded half up (out of the
gross amount in a shop with prices incl. VAT, on top of the net one otherwise: `webshop_orders.split`);
`total` = sum(line total + total_tax) + shipping_total + shipping_tax + sum(fee total + total_tax);
`cart_tax` = line taxes + fee taxes, `total_tax` = cart_tax + shipping_tax, each tax line the sum
for its rate. Real WooCommerce keeps line totals with more decimals and rounds them to `dp` in the
answer, which can leave a 1-øre gap between the lines and `total`; the sandbox rounds the tax per
line to the øre and derives the net from it, so the sums above hold exactly.

INFERRED (not WooCommerce core):

- The organisation number of a company customer is order meta `_billing_org_number` (and customer
  meta): the key the Norwegian checkout-field plugins commonly use for a "billing_org_number" field.
- What was captured: WooCommerce core keeps no captured amount (each payment plugin its own meta);
  the sandbox writes order meta `_captured_amount` (kroner, 2 decimals) for every order whose
  payment was taken at checkout; it differs from `total` on the few orders with a capture difference.
- Gateway ids and titles as a Norwegian shop would set them: "stripe" (Kort), "vipps", "klarna",
  "giftcard" (Gavekort), "invoice" (Faktura, with a 39.00 Fakturagebyr fee line), "bacs" (the B2B
  bank transfer; a new b2b order is "on-hold", as WooCommerce's BACS gateway leaves it).
- A 429 fault answers `rest_too_many_requests` with Retry-After (WooCommerce has no rate limit of
  its own; hosts add one). A 500 fault answers WordPress's critical-error body.
- Ids: line/shipping/fee/coupon/tax items share one counter per shop, notes another; refund ids
  start at 90001 (in WooCommerce they share the post ids with orders); customer user ids are the
  shop's customer number + 1 (user 1 is the shop's admin).

Run it: `python -m kassebro.sandbox.woocommerce --port 8940`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API under `/_sandbox` (`webshop_app`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassebro.sandbox.admin import ApiCall
from kassebro.sandbox.common import Fault
from kassebro.sandbox.webshop_app import (
    Clock,
    JsonAnswer,
    WebshopSandbox,
    WebshopStore,
    demo_period,
    parse_moment,
    utc_now,
    webshop_admin_router,
)
from kassebro.sandbox.webshop_orders import CAPTURED_METHODS, OSLO, UTC, Customer, WebOrder, money, split

API_PREFIX = "/wp-json/wc/v3"
DEMO_CONSUMER_KEY = "ck_demo"
DEMO_CONSUMER_SECRET = "cs_demo"
DEMO_SHOP = "Nettbutikk Fjord"
DEMO_SEED = 37
WC_VERSION = "9.4.2"
REFUND_IDS_FROM = 90001
MAX_PER_PAGE = 100

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


class WooError(Exception):
    """A WordPress REST error: `{code, message, data: {status, ...}}`."""

    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def response(self) -> Response:
        body = {"code": self.code, "message": self.message, "data": {"status": self.status, **self.data}}
        return JsonAnswer(body, status_code=self.status)


def invalid_param(name: str, message: str) -> WooError:
    return WooError(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: message})


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def wc_dates(moment: dt.datetime | None) -> tuple[str | None, str | None]:
    """(site time, GMT), both "YYYY-MM-DDTHH:MM:SS" without an offset, as WooCommerce writes them."""
    if moment is None:
        return None, None
    local = moment.astimezone(OSLO).replace(tzinfo=None).isoformat(timespec="seconds")
    return local, moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _set_date(doc: dict[str, Any], key: str, moment: dt.datetime | None) -> None:
    doc[key], doc[key + "_gmt"] = wc_dates(moment)


def number(ore: int, quantity: int) -> int | Decimal:
    """`price`: øre / quantity in kroner as a JSON number, at most 6 decimals (12 or 79.2)."""
    value = (Decimal(ore) / Decimal(100 * quantity)).quantize(Decimal("0.000001"))
    if value == value.to_integral_value():
        return int(value)
    return Decimal(format(value.normalize(), "f"))


def wc_status(neutral: str, method: str) -> str:
    if neutral == "new":
        return "on-hold" if method == "b2b" else "pending"
    return neutral


def _status_flags(doc: dict[str, Any]) -> None:
    status = doc["status"]
    doc["is_editable"] = status in ("pending", "on-hold", "checkout-draft")
    doc["needs_payment"] = status in ("pending", "failed") and Decimal(doc["total"]) > 0
    doc["needs_processing"] = True


def _address(c: Customer, billing: bool, address: Any) -> dict[str, Any]:
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
        lines.append(
            {
                "id": item_id,
                "name": line.product.name,
                "product_id": line.product.product_id,
                "variation_id": 0,
                "quantity": line.quantity,
                "tax_class": "" if rate == 25 else TAX_RATES[rate].tax_class,
                "subtotal": money(sub_net),
                "subtotal_tax": money(sub_tax),
                "total": money(net),
                "total_tax": money(tax),
                "taxes": _taxes(rate, tax, sub_tax),
                "meta_data": [],
                "sku": line.product.sku,
                "price": number(net, line.quantity),
                "image": {"id": "", "src": ""},
                "parent_name": None,
            }
        )
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
    _set_date(doc, "date_created", o.created)
    _set_date(doc, "date_modified", o.modified)
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
        "billing": _address(o.customer, True, o.customer.address),
        "shipping": _address(o.customer, False, o.shipping_address),
        "payment_method": gateway.id,
        "payment_method_title": gateway.title,
        "transaction_id": o.transaction_id,
    }
    _set_date(doc, "date_paid", paid)
    _set_date(doc, "date_completed", completed)
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
    _status_flags(doc)
    notes = []
    if history[0][0] == "on-hold":
        notes.append(_note(ids, history[0][1], "Awaiting BACS payment Order status changed from Pending payment to On hold."))
    for (before, _), (after, at) in itertools.pairwise(history):
        notes.append(_note(ids, at, f"Order status changed from {STATUS_LABELS[before]} to {STATUS_LABELS[after]}."))
    return Record(doc, o.created, o.modified, notes[::-1], refunds)


def _refund(
    o: WebOrder, line: int | None, items: dict[int, int], amount: int, reason: str, at: dt.datetime, ids: Ids
) -> dict[str, Any]:
    line_items = []
    if line is not None:
        returned = o.lines[line]
        rate = returned.product.vat_rate
        net, tax = split(returned.amount - returned.coupon, rate, o.prices_include_vat)
        line_items.append(
            {
                "id": next(ids.item),
                "name": returned.product.name,
                "product_id": returned.product.product_id,
                "variation_id": 0,
                "quantity": -returned.quantity,
                "tax_class": "" if rate == 25 else TAX_RATES[rate].tax_class,
                "subtotal": money(-net),
                "subtotal_tax": money(-tax),
                "total": money(-net),
                "total_tax": money(-tax),
                "taxes": _taxes(rate, -tax, -tax),
                "meta_data": [{"id": next(ids.meta), "key": "_refunded_item_id", "value": str(items[line])}],
                "sku": returned.product.sku,
                "price": number(-net, returned.quantity),
            }
        )
    refund: dict[str, Any] = {"id": next(ids.refund)}
    _set_date(refund, "date_created", at)
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


def _note(ids: Ids, at: dt.datetime, text: str, customer_note: bool = False) -> dict[str, Any]:
    note: dict[str, Any] = {"id": next(ids.note), "author": "system"}
    _set_date(note, "date_created", at)
    return note | {"note": text, "customer_note": customer_note}
