"""A web order as the invoice Tripletex will make of it, checked to the øre before anything is sent.

Tripletex computes an order's amounts itself from count, unit price, discount and VAT type, and
refuses an order whose lines mix prices including and excluding VAT. So the draft keeps the shop's
own convention for the whole order (`isPrioritizeAmountsIncludingVat`), predicts each line the way
Tripletex rounds it, and holds the order back when the predicted invoice total is not the shop's
total: a difference is reported with both figures, never absorbed.

INFERRED (Tripletex documents no rounding rule; the sandbox implements the same): each line is
rounded half up to the øre on its own: including VAT, gross = count x unit price x (1 - discount);
excluding VAT, net = count x unit price x (1 - discount) and VAT = net x rate, each rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from kassebro.config.webshop import PaymentRule, Webshop
from kassebro.core.errors import InputError, Issue
from kassebro.core.money import Ore, format_ore
from kassebro.sources.webshop import WebLine, WebOrder

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class DraftLine:
    """One Tripletex order line: `unit_price` in the order's convention, at most two decimals."""

    description: str
    count: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    vat_code: str
    vat_rate: Decimal
    gross: Ore
    """What Tripletex will make of the line including VAT (predicted)."""
    account: str = ""
    """The revenue account (through a product carrying it), "" for Tripletex's default."""


@dataclass(frozen=True)
class InvoiceDraft:
    """What one web order becomes in Tripletex.

    Attributes:
      order: the web order.
      rule: how its payment method is transferred.
      prices_include_vat: the order's convention, for every line.
      lines: the order lines.
      total: the invoice total Tripletex will compute (equal to the shop's total: checked).
    """

    order: WebOrder
    rule: PaymentRule
    prices_include_vat: bool
    lines: tuple[DraftLine, ...]
    total: Ore


def _round(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def line_gross(count: Decimal, unit_price: Decimal, discount: Decimal, rate: Decimal, *, incl: bool) -> Ore:
    """A line's amount including VAT as Tripletex computes it (see the module docstring)."""
    base = _round(count * unit_price * (100 - discount) / 100)
    if incl:
        return int(base * 100)
    return int((base + _round(base * rate / 100)) * 100)


def _draft_line(line: WebLine, code: str, incl: bool) -> DraftLine:
    """The line as count x unit price when that gives the shop's own line total, else as one unit
    of the line total (the quantity then stays in the text)."""
    unit = line.unit_price
    exact = (
        unit == _round(unit) and _round(line.quantity * unit * (100 - line.discount_percent) / 100) * 100 == line.amount
    )
    if exact:
        count, price, discount, text = line.quantity, _round(unit), line.discount_percent, line.description
    else:
        quantity = line.quantity.normalize()
        text = line.description if quantity == 1 else f"{quantity:f} x {line.description}"
        count, price, discount = Decimal(1), Decimal(line.amount) / 100, Decimal(0)
    gross = line_gross(count, price, discount, line.vat_rate, incl=incl)
    return DraftLine(text[:255], count, price, discount, code, line.vat_rate, gross, line.account)


def draft(order: WebOrder, shop: Webshop) -> InvoiceDraft:
    """The draft for an order, or InputError listing every reason it cannot be transferred as is."""
    source = f"{shop.id}/order {order.number}"
    problems: list[Issue] = []
    rule = shop.payment_methods.get(order.payment_method)
    if rule is None:
        problems.append(
            Issue(
                source,
                "payment_method",
                f"payment method {order.payment_method!r} ({order.payment_title}) is not mapped in "
                f"payment_methods ({', '.join(sorted(shop.payment_methods)) or 'none'})",
            )
        )
    if order.currency.upper() != "NOK":
        problems.append(Issue(source, "currency", f"currency {order.currency!r}: only NOK orders are transferred"))
    if not order.lines:
        problems.append(Issue(source, "lines", "the order has no lines"))
    lines: list[DraftLine] = []
    for line in order.lines:
        rate = line.vat_rate.normalize()
        key = f"{rate:f}" if rate == rate.to_integral_value() else ""
        code = line.vat_code or shop.vat_codes.get(key)
        if code is None:
            problems.append(
                Issue(
                    source,
                    "vat_rate",
                    f"line {line.description!r} is at {line.vat_rate:f} %, which vat_codes does not map "
                    f"({', '.join(f'{r} %' for r in sorted(shop.vat_codes, key=int))})",
                )
            )
            continue
        lines.append(_draft_line(line, code, order.prices_include_vat))
    total = sum(line.gross for line in lines)
    if not problems and total != order.total:
        problems.append(
            Issue(
                source,
                "total",
                f"the invoice would total {format_ore(total)} but the shop's order total is "
                f"{format_ore(order.total)} (difference {format_ore(total - order.total)}); nothing was sent",
            )
        )
    if problems:
        raise InputError(problems, headline=f"{source} cannot be transferred")
    assert rule is not None
    return InvoiceDraft(order, rule, order.prices_include_vat, tuple(lines), total)
