"""Webshop orders in one shape, whatever shop they come from.

A shop adapter (`woocommerce`, `mystore`) reads the shop's own API and gives `WebOrder`s: immutable
records with money as integer øre (line prices, which may carry more decimals, as Decimal), the
status history, the customer and the payment as the shop has them. What a shop does not say stays
`None` ("unknown"), never a zero: a missing captured amount is not a capture of 0.

Every adapter has `orders(since)` (orders changed since a time, every page) and `order(number)`;
`shop_client(kind, ...)` builds one. No Airflow here: the connection is resolved by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from kassebro.core.money import Ore

LINE_KINDS = ("item", "shipping", "fee", "discount")


@dataclass(frozen=True)
class WebCustomer:
    """The buyer as the shop knows them.

    Attributes:
      shop_id: the shop's customer id; None for a guest checkout (then the e-mail identifies them).
      name: a person's full name or the company's name.
      is_company: a business customer (has or should have an organisation number).
      org_number: 9 digits, or None.
      email, invoice_email, phone: as given; invoice_email None means "use email".
      address1, address2, postcode, city, country: the billing address (country as ISO 3166 alpha-2).
    """

    shop_id: str | None
    name: str
    is_company: bool = False
    org_number: str | None = None
    email: str | None = None
    invoice_email: str | None = None
    phone: str | None = None
    address1: str = ""
    address2: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "NO"

    @property
    def key(self) -> str:
        """What identifies the customer in the shop: its id, else its e-mail (guests)."""
        if self.shop_id:
            return f"id:{self.shop_id}"
        return f"email:{(self.email or '').strip().lower()}"


@dataclass(frozen=True)
class WebLine:
    """One line of an order, in the order's price convention (incl. or excl. VAT).

    Attributes:
      kind: item, shipping, fee or discount (a discount's amount is negative).
      description: what the invoice line says.
      quantity, unit_price: as the shop gives them (unit price before the line's discount).
      discount_percent: the line's own discount, 0 when none.
      amount: the line total after its discount, in øre, as the shop computed it.
      vat_rate: percent ("25", "15", "12", "0").
      sku: the shop's article number, if any.
      account: the revenue account the line is booked on ("" = Tripletex's default for its VAT
        type); set for POS credit sales, whose accounts come from the vendor's mapping.
      vat_code: the outgoing standard tax code when the source states it ("" = from the rate
        through the shop's vat_codes).
    """

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Ore
    vat_rate: Decimal
    discount_percent: Decimal = Decimal(0)
    sku: str = ""
    account: str = ""
    vat_code: str = ""

    def __post_init__(self) -> None:
        if self.kind not in LINE_KINDS:
            raise ValueError(f"unknown line kind {self.kind!r}")


@dataclass(frozen=True)
class WebOrder:
    """A shop's order, read at `read_at`.

    Attributes:
      webshop_id: kassebro's id of the shop (config/webshops/<id>.yaml).
      number: the shop's order number (what people see and what goes into Tripletex).
      shop_id: the shop's internal id, for reading it again.
      created_at, updated_at: aware datetimes.
      status: the current status name, as the shop spells it.
      history: (status, when) in order; a shop without a history gives what it knows.
      prices_include_vat: the lines' convention.
      currency: ISO code; only NOK is transferred.
      payment_method, payment_title: the shop's method id and its display name.
      captured: the amount the payment provider captured, in øre; None when the shop does not say.
      total: the order total including VAT, in øre, as the shop computed it.
      vat_total: the VAT in it, in øre.
      customer: the buyer.
      lines: items, shipping, fees and discounts.
      refunded: øre refunded after the sale (0 when none).
      raw_status_completed_at: when the order last reached a completed status, if known.
    """

    webshop_id: str
    number: str
    shop_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    status: str
    history: tuple[tuple[str, dt.datetime], ...]
    prices_include_vat: bool
    currency: str
    payment_method: str
    payment_title: str
    captured: Ore | None
    total: Ore
    vat_total: Ore
    customer: WebCustomer
    lines: tuple[WebLine, ...]
    refunded: Ore = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def completed_at(self, statuses: tuple[str, ...]) -> dt.datetime | None:
        """When the order last reached one of `statuses` (None: it has not, or is not there now)."""
        wanted = {s.lower() for s in statuses}
        if self.status.lower() not in wanted:
            return None
        reached = [at for status, at in self.history if status.lower() in wanted]
        return max(reached) if reached else self.updated_at


class ShopError(Exception):
    """The shop could not be read (auth, network, an answer we do not understand).

    `transient` says whether trying again later may help.
    """

    def __init__(self, shop: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{shop}: {message}")
        self.transient = transient


class ShopApi(Protocol):
    """What kassebro needs from a webshop."""

    def orders(self, since: dt.datetime) -> Iterator[WebOrder]: ...

    def order(self, number: str) -> WebOrder: ...


SHOP_KINDS = {
    "woocommerce": "kassebro.sources.webshop.woocommerce:WooCommerceShop",
    "mystore": "kassebro.sources.webshop.mystore:MystoreShop",
}


def shop_client(kind: str, webshop_id: str, base_url: str, login: str, password: str, **options: Any) -> ShopApi:
    """The adapter for a shop `kind` (see SHOP_KINDS), imported only when used."""
    import importlib

    try:
        module, name = SHOP_KINDS[kind].split(":")
    except KeyError:
        raise ValueError(f"unknown webshop kind {kind!r}; known: {', '.join(SHOP_KINDS)}") from None
    cls = getattr(importlib.import_module(module), name)
    return cls(webshop_id, base_url, login, password, **options)
