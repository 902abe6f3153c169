"""POS credit sales as Tripletex invoices (`credit_sales: invoice`), one per sale.

A credit sale (SAF-T 11002, or a receipt paid by 12006 "Kundekonto" that names its customer) is
sold on account: the customer pays later, against an invoice. With this setting each one becomes a
Tripletex invoice, not marked paid, through the webshop flow's exactly-once transfer
(`posting.webshop.transfer_order`): the customer found or made as for web orders, the order
looked up by its number before it is made, the invoice never made twice.

The invoice books the sale (customer 1500, revenue on the vendor's mapped accounts through one
Tripletex product per account and VAT code, VAT), so the day's voucher books the Z report *less*
the invoiced sales, as Odoo's POS leaves invoiced orders out of the session's revenue
(brief/pos-ledger-anchors.md, "Money that is not revenue"). Booking the credit sale in both would
count its revenue and VAT twice. The voucher's meta says what was invoiced (per payment account,
per VAT code), so the reconciliation still sets voucher + invoices against the Z report.

What is not invoiced, and holds the day back with the reason (book it with `credit_sales:
customer_ledger` instead, or correct it in the POS): a credit sale also paid in part at the till
(an invoice marked part paid needs the till's payment type in Tripletex), one with a bill discount
or a tip, a return on account (a credit note), or a line under a key without VAT (gift cards,
deposits: not invoice revenue).

Each invoice is dated the business day (its Z report), numbered `<register>-<nr>` (the POS's
gap-free transaction number), and e-mailed when `credit_invoice_email` says so and the customer
has an address.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kassebro.core.errors import Issue
from kassebro.core.money import format_ore
from kassebro.core.saft_codes import CREDIT_SALE_CODES, CUSTOMER_ACCOUNT_PAYMENT, sales_vat_code
from kassebro.sources.webshop import WebCustomer, WebLine, WebOrder

if TYPE_CHECKING:
    import pandas as pd

    from kassebro.config import Vendor
    from kassebro.config.webshop import Webshop
    from kassebro.core.frames import SalesDay

ON_ACCOUNT = "on_account"
"""The one "payment method" of a POS credit invoice."""
_RECEIPT = ["register_id", "trans_id"]


@dataclass(frozen=True)
class CreditSales:
    """The day's credit sales to invoice, and what the day's voucher leaves out for them.

    Attributes:
      orders: one order per credit sale, in the webshop flow's shape.
      receipts: (register_id, trans_id) of each: their lines, payments and receipt rows are not in
        the day's voucher.
      payments: per payment type and code, what those receipts paid (the 12006 amounts), for the
        reconciliation against the Z report.
      issues: credit sales that cannot be invoiced as they are: the day is held back.
    """

    orders: tuple[WebOrder, ...]
    receipts: frozenset[tuple[str, str]]
    payments: dict[tuple[str, str], int]
    issues: tuple[Issue, ...]


def pos_shop_id(vendor_id: str) -> str:
    """The transfer records' shop id of a vendor's credit invoices."""
    return f"pos_{vendor_id}"


def order_number(register_id: str, nr: int) -> str:
    return f"{register_id}-{nr}"


def pos_webshop(vendor: Vendor) -> Webshop:
    """The vendor as the webshop flow's configuration: its Tripletex company, one payment method
    (on account: an invoice the customer pays later), numbers from `customer_number_start`."""
    from kassebro.config.webshop import InvoiceLedger, PaymentRule, ShopSource, Webshop

    return Webshop(
        id=pos_shop_id(vendor.id),
        name=vendor.name,
        source=ShopSource(kind="pos", connection=vendor.ledger.connection),
        ledger=InvoiceLedger(connection=vendor.ledger.connection, client_org_number=vendor.ledger.client_org_number),
        enabled_since=vendor.enabled_since,
        timezone=vendor.timezone,
        owner=vendor.owner,
        customer_number_start=vendor.mapping.customer_number_start,
        vat_codes={},
        payment_methods={ON_ACCOUNT: PaymentRule(transfer="invoice", send_invoice=vendor.mapping.credit_invoice_email)},
    )


def credit_sales(day: SalesDay, vendor: Vendor) -> CreditSales:
    """The day's credit sales with a customer, as orders to invoice (see the module docstring)."""
    receipts = day.receipts
    source = f"{vendor.id}/{day.business_day.isoformat()}"
    if receipts.empty:
        return CreditSales((), frozenset(), {}, ())
    heads = receipts.drop_duplicates(_RECEIPT)
    payments = day.payments
    on_account_keys = set(
        map(tuple, payments.loc[payments["payment_code"] == CUSTOMER_ACCOUNT_PAYMENT, _RECEIPT].astype(str).to_numpy())
    )
    wanted = heads[
        (heads["customer_id"].fillna("") != "")
        & (
            heads["trans_code"].isin(list(CREDIT_SALE_CODES))
            | heads[_RECEIPT].astype(str).apply(tuple, axis=1).isin(on_account_keys)
        )
    ]
    if wanted.empty:
        return CreditSales((), frozenset(), {}, ())
    customers = _customers(day)
    lines_by = {key: frame for key, frame in day.lines.groupby(_RECEIPT, sort=False)}
    pays_by = {key: frame for key, frame in payments.groupby(_RECEIPT, sort=False)}
    orders: list[WebOrder] = []
    keys: set[tuple[str, str]] = set()
    paid: dict[tuple[str, str], int] = {}
    issues: list[Issue] = []
    zone = ZoneInfo(vendor.timezone)
    for head in wanted.itertuples(index=False):
        key = (str(head.register_id), str(head.trans_id))
        lines = lines_by.get(key)
        pays = pays_by.get(key)
        number = order_number(key[0], int(head.nr))
        problem = _not_invoiceable(head, lines, pays)
        built = None if problem else _order(vendor, day, head, lines, customers, number, zone)
        if isinstance(built, str):
            problem = built
        if problem:
            issues.append(
                Issue(
                    source, "credit_sale_invoiceable", f"credit sale {number} (customer {head.customer_id}): {problem}"
                )
            )
            continue
        assert isinstance(built, WebOrder)
        orders.append(built)
        keys.add(key)
        if pays is not None:
            for ptype, pcode, amount in zip(pays["payment_type"], pays["payment_code"], pays["amount"], strict=True):
                paid[(str(ptype), str(pcode))] = paid.get((str(ptype), str(pcode)), 0) + int(amount)
    return CreditSales(tuple(orders), frozenset(keys), paid, tuple(issues))


def _not_invoiceable(head: object, lines: pd.DataFrame | None, pays: pd.DataFrame | None) -> str:
    """Why a credit sale cannot become one invoice not marked paid, or ""."""
    if lines is None or lines.empty:
        return "it has no sales lines"
    if (lines["line_type"] == "tip").any():
        return "it carries a tip, which is staff money, not invoice revenue"
    if int(head.bill_discount):  # type: ignore[attr-defined]
        return f"it has a bill discount of {format_ore(int(head.bill_discount))}; give it as line discounts"  # type: ignore[attr-defined]
    if int(head.rounding):  # type: ignore[attr-defined]
        return f"it has cash rounding of {format_ore(int(head.rounding))}, which an invoice cannot carry"  # type: ignore[attr-defined]
    if pays is not None:
        other = pays[pays["payment_code"] != CUSTOMER_ACCOUNT_PAYMENT]
        if not other.empty:
            types = ", ".join(sorted(set(other["payment_type"].astype(str))))
            return (
                f"{format_ore(int(other['amount'].sum()))} of it was paid at the till ({types}); an invoice part "
                "paid is not made"
            )
    total = int(lines["gross"].sum())
    if total <= 0:
        return f"it totals {format_ore(total)}: a return on account needs a credit note, which is not made"
    return ""


def _order(
    vendor: Vendor,
    day: SalesDay,
    head: object,
    lines: pd.DataFrame,
    customers: dict[str, dict[str, str]],
    number: str,
    zone: ZoneInfo,
) -> WebOrder | str:
    """The credit sale as an order (prices including VAT, the POS's own line amounts), or why not."""
    from pandas import isna

    def text(value: object) -> str:
        return "" if value is None or isna(value) else str(value)

    mapping = vendor.mapping
    web_lines: list[WebLine] = []
    for row in lines.itertuples(index=False):
        code = text(row.art_group_code)
        key = mapping.key_for(str(row.art_group_id), code)
        if key is None:
            return f"accounting key {row.art_group_id!r} has no account"
        if not key.vat:
            label = key.description or "no VAT"
            return f"line {row.description!r} is under {row.art_group_id!r} ({label}), which is not invoice revenue"
        rate = int(row.vat_rate_bp)
        vat_code = sales_vat_code(text(row.std_vat_code), rate)
        try:
            quantity = Decimal(text(row.quantity) or "1")
        except ArithmeticError:  # decimal.InvalidOperation: the line then goes as one unit of its amount
            quantity = Decimal(1)
        gross = int(row.gross)
        unit = (Decimal(gross) / 100 / quantity) if quantity else Decimal(gross) / 100
        web_lines.append(
            WebLine(
                kind="item",
                description=text(row.description) or text(row.article_id) or "Vare",
                quantity=quantity,
                unit_price=unit,
                amount=gross,
                vat_rate=Decimal(rate) / 100,
                sku=text(row.article_id),
                account=key.account_for(rate, vat_code),
                vat_code=vat_code,
            )
        )
    customer_id = str(head.customer_id)  # type: ignore[attr-defined]
    row = customers.get(customer_id, {})
    org = (row.get("org_number") or "").replace(" ", "")
    customer = WebCustomer(
        shop_id=customer_id,
        name=row.get("name") or f"Kunde {customer_id}",
        is_company=bool(org),
        org_number=org if len(org) == 9 and org.isdigit() else None,
        email=row.get("email") or None,
        address1=row.get("address") or "",
        postcode=row.get("postcode") or "",
        city=row.get("city") or "",
    )
    sold = dt.datetime.combine(day.business_day, dt.time(12), zone)  # dated the business day (module doc)
    total = sum(line.amount for line in web_lines)
    trans = str(head.trans_id)  # type: ignore[attr-defined]
    return _pos_order(vendor.id, number, trans, sold, total, int(lines["vat"].sum()), customer, tuple(web_lines))


def _pos_order(
    vendor_id: str,
    number: str,
    trans_id: str,
    sold: dt.datetime,
    total: int,
    vat_total: int,
    customer: WebCustomer,
    lines: tuple[WebLine, ...],
) -> WebOrder:
    """A credit sale in the webshop flow's shape: sold (its one status) on account, prices incl. VAT."""
    return WebOrder(
        webshop_id=pos_shop_id(vendor_id),
        number=number,
        shop_id=trans_id,
        created_at=sold,
        updated_at=sold,
        status="sold",
        history=(("sold", sold),),
        prices_include_vat=True,
        currency="NOK",
        payment_method=ON_ACCOUNT,
        payment_title="Kundekonto",
        captured=None,
        total=total,
        vat_total=vat_total,
        customer=customer,
        lines=lines,
    )


def _customers(day: SalesDay) -> dict[str, dict[str, str]]:
    if day.customers is None or day.customers.empty:
        return {}
    rows = day.customers.fillna("").astype(str).to_dict("records")
    return {row["customer_id"]: row for row in rows}


# ---- in the voucher's meta: what the post step invoices, and what the reconciliation adds back ----


def order_to_json(order: WebOrder) -> dict:
    """An order as plain JSON (money as øre, decimals as text), for the voucher's meta."""
    c = order.customer
    return {
        "number": order.number,
        "shop_id": order.shop_id,
        "sold": order.created_at.isoformat(),
        "total": order.total,
        "vat_total": order.vat_total,
        "customer": {
            "shop_id": c.shop_id,
            "name": c.name,
            "is_company": c.is_company,
            "org_number": c.org_number,
            "email": c.email,
            "address1": c.address1,
            "postcode": c.postcode,
            "city": c.city,
        },
        "lines": [
            {
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "amount": line.amount,
                "vat_rate": str(line.vat_rate),
                "sku": line.sku,
                "account": line.account,
                "vat_code": line.vat_code,
            }
            for line in order.lines
        ],
    }


def order_from_json(vendor_id: str, data: dict) -> WebOrder:
    lines = tuple(
        WebLine(
            kind="item",
            description=line["description"],
            quantity=Decimal(line["quantity"]),
            unit_price=Decimal(line["unit_price"]),
            amount=int(line["amount"]),
            vat_rate=Decimal(line["vat_rate"]),
            sku=line["sku"],
            account=line["account"],
            vat_code=line["vat_code"],
        )
        for line in data["lines"]
    )
    sold = dt.datetime.fromisoformat(data["sold"])
    customer = WebCustomer(**data["customer"])
    return _pos_order(
        vendor_id, data["number"], data["shop_id"], sold, int(data["total"]), int(data["vat_total"]), customer, lines
    )


def meta_for(sales: CreditSales, vendor: Vendor) -> dict[str, str]:
    """The voucher meta of a day with invoiced credit sales: the orders (for the post step) and
    their payments per ledger account (for the reconciliation against the Z report)."""
    if not sales.orders:
        return {}
    per_account: dict[str, int] = {}
    for (ptype, pcode), amount in sorted(sales.payments.items()):
        account = vendor.mapping.payment_account(ptype, pcode) or f"(unmapped {ptype or pcode})"
        per_account[account] = per_account.get(account, 0) + amount
    return {
        "credit_invoices": json.dumps([order_to_json(o) for o in sales.orders], sort_keys=True),
        "invoiced_payments": json.dumps(per_account, sort_keys=True),
    }


def orders_in(meta: dict[str, str], vendor_id: str) -> list[WebOrder]:
    """The credit sales a voucher's day invoices (empty for every other day)."""
    return [order_from_json(vendor_id, data) for data in json.loads(meta.get("credit_invoices") or "[]")]
