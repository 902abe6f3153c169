"""The Tripletex sandbox's webshop side: customers, products, orders, invoices and payment types.

Served under `/v2` with the same auth, envelopes, `fields` filter and ApiError bodies as the rest of
the sandbox (`tripletex.py`, whose `_api_router` calls `add_invoicing_routes`):

- `GET /customer`, `GET /customer/{id}`, `POST /customer`
- `GET /order`, `GET /order/{id}`, `POST /order`, `PUT /order/{id}/:invoice`
- `GET /invoice`, `GET /invoice/{id}`, `PUT /invoice/{id}/:payment`, `PUT /invoice/{id}/:createCreditNote`
- `GET /invoice/paymentType`, `GET /invoice/paymentType/{id}`
- `GET /product`, `GET /product/{id}`, `POST /product`

What the spec (`tests/contracts/specs/tripletex/openapi.json`) and the brief (`apis.md` §8) settle
is followed: `GET /order` needs `orderDateFrom`/`orderDateTo` and `GET /invoice` needs
`invoiceDateFrom`/`invoiceDateTo` (422 without; the "To" date is exclusive); `GET /customer` hides
inactive customers unless asked (`isInactive` defaults to false); `customerAccountNumber` is a list
of customer numbers; with `isPrioritizeAmountsIncludingVat=true` order lines give prices incl. VAT
only, else excl. VAT only (422 otherwise); `PUT /order/{id}/:invoice` needs `invoiceDate`,
`sendToCustomer` defaults to true, `paymentTypeId` and `paidAmount` come together, the order is
closed and a closed order cannot be invoiced again; the invoice number is the company's own series;
a company without a bank account number gets 422 "Faktura kan ikke opprettes før selskapet har
registrert et bankkontonummer." and the same order can be invoiced once that is fixed; payment type
ids differ per company; `PUT /invoice/{id}/:payment` takes its three values in the query only;
`Order.number` is not unique (undocumented, so not enforced); an order line may name a `product`,
and a `Product` carries its `account` and `vatType` (the spec's schemas; `OrderLine` has no account,
so a product is how a line's revenue reaches an account other than the VAT type's).
`PUT /invoice/{id}/:createCreditNote` needs `date`, takes `comment`, `creditNoteEmail`,
`sendToCustomer` (default true) and `sendType` in the query, and makes a new invoice, the credit
note, for the whole invoice; a credit note has `isCreditNote` true and `creditedInvoice` = the id
of the invoice it credits, and the credited invoice `isCredited` true; "the credit note will not be
sent if the customer send type is email and [creditNoteEmail] is empty".

An invoice is booked through the store's own voucher machinery (`TripletexStore.create_voucher`,
so the sandbox's VAT rows, numbering, `/ledger/posting` and `/balanceSheet` see it): one voucher
"Faktura <n>" with row 1 debiting 1500 Kundefordringer (with the customer on the posting) the
gross total and one row per order line crediting the line's revenue account (its product's
account, else the VAT type's, below) with the line's gross and vatType (the VAT row 0 is then
generated as for any voucher); each payment is a voucher "Innbetaling faktura <n>" debiting the
payment type's account and crediting 1500.

INFERRED (neither the spec nor the brief says so):
- a `customerNumber` already held by a customer of the company, active or inactive, is refused:
  422 on `customerNumber`, "Kundenummeret er allerede i bruk.";
- a customer number left out (or 0) is the company's next one: the highest number in use + 1, at
  least 10000 (with the seeded inactive 100001 that is 100002); after the admin has set a next
  customer number, the first free number from there, the setting moving on;
- `GET /customer?isInactive=true` gives the inactive customers only (the spec says "Equals"), so
  finding every used number takes two searches; `customerName` matches a part of the name, any
  case; `organizationNumber`, `email`, `invoiceEmail` match exactly;
- e-mail fields must look like an address (one "@", a dot in the domain, no spaces), "Ugyldig
  e-postadresse."; a customer without a postal address gets an empty one; country id 161 (Norway)
  is shown when none is given; a customer's invoices fall due in 14 days;
- an order needs a customer of the company ("Kunden finnes ikke."), `orderDate` and
  `deliveryDate`; every line needs a `vatType` of an outgoing (or "0"/none) VAT type; `count`
  defaults to 1, `discount` to 0 (0-100 %); a `product` on a line must be a product of the company
  (422 on `orderLines.product.id`, "Produktet finnes ikke."); an order may be stored without lines,
  but invoicing it is 422;
- line amounts, in øre, half an øre away from zero: with prices incl. VAT, gross =
  round(count x unitPriceIncl x (100 - discount)/100) and net = round(gross x 100/(100 + rate));
  with prices excl. VAT, net = round(count x unitPriceExcl x (100 - discount)/100), VAT =
  round(net x rate/100), gross = net + VAT. The price not given is shown derived from the other,
  rounded to 2 decimals. The ledger's VAT row follows the voucher rule (VAT out of each line's
  gross), which can differ from net/VAT above by an øre only when a line's VAT is exactly half an
  øre;
- revenue account per VAT type (from the seeded chart, each locked to that type): 3 -> 3000,
  31 -> 3030, 33 -> 3040, 5 -> 3100, 6 -> 3200; 52 and 0 -> 3900 (unlocked); a type without an
  account in the chart is refused when the order is created;
- the invoice: amount = sum of line gross, amountExcludingVat = sum of line net, no round-off to
  whole kroner, invoiceDueDate = invoiceDate + 14 days, KID = the invoice number followed by its
  MOD10 (Luhn) check digit, amountOutstanding = amount - payments (may go below zero on
  overpayment); a closed order is refused: 422 on `id`, "Ordren er allerede fakturert.";
  an order without lines: 422 on `orderLines`, "Ordren har ingen ordrelinjer å fakturere.";
  `paymentTypeId` without `paidAmount` or the reverse: 422 "Både paymentTypeId og paidAmount må
  oppgis."; `paymentTypeId` 0 (with `paidAmount` 0 or none) means none; an unknown payment
  type: 422 "Betalingstypen finnes ikke."; `paymentTypeIdRestAmount` > 0 books a second payment
  of the rest (amount - paidAmount); `createOnAccount`, `amountOnAccount`, `createBackorder` etc.
  are accepted and ignored; the e-mail is recorded only once the invoice is booked (a refusal
  sends nothing);
- the invoice number: the company's next number (from 1, or from what the admin set), skipping
  numbers already used;
- sending: with `sendToCustomer` true the sandbox records one send (admin `GET
  /_sandbox/invoicing`, "emails"), by `sendType` or else the customer's `invoiceSendMethod`; for
  EMAIL the address is `overrideEmailAddress`, else the order's `receiverEmail`, else the
  customer's `invoiceEmail`, else `email` (null when none: the invoice is still created);
  `sendToCustomer=false` records nothing;
- payment types (the spec's `PaymentType` schema, which `GET /invoice/paymentType` answers; not
  `PaymentTypeOut`): seeded per company with ids `PAYMENT_TYPE_ID_BASE + i` shifted by
  `COMPANY_ID_STRIDE` per company, like the charts; `debitAccount` is where the money goes,
  `creditAccount` is 1500; `description` and `query` match a part of the description, any case;
- a payment (`:payment` or prepaid) must be non-zero with at most two decimals; payment dated
  `paymentDate` (prepaid: the invoice date);
- a credit note (`:createCreditNote`): its number is the company's next invoice number (the same
  series as invoices); its voucher "Kreditnota <n>" reverses every row of the invoice's voucher
  (1500 credited with the customer on the posting, each revenue row debited with its vatType), dated
  `date`; amounts are the invoice's negated, its lines the invoice's order lines with count and
  amounts negated; it names the invoice's order in `orders` (so an order's invoices include its
  credit notes); invoiceDueDate = `date`, no KID; `comment` is shown as its `comment`. What was still
  outstanding on the invoice is settled by the note (both drop by it); what was paid stays on the
  note as a negative amountOutstanding (owed back to the customer). Refused with 422 on `id`:
  crediting an invoice already credited, "Fakturaen er allerede kreditert.", or a credit note, "En
  kreditnota kan ikke krediteres."; 422 on `date`, "Kreditnotaen kan ikke dateres før fakturaen.";
  the bank-account rule of invoices does not apply. The send: `sendToCustomer` true records one send
  like an invoice's (`"credit_note": true` on the record) by `sendType`, else the customer's
  `invoiceSendMethod`, to `creditNoteEmail` for EMAIL, and none for EMAIL without
  `creditNoteEmail` (the spec's words); `sendType` takes the spec's wider enum of this call;
- `POST /customer`, `POST /order`, `PUT /order/{id}/:invoice`, `PUT /invoice/{id}/:payment` and
  `PUT /invoice/{id}/:createCreditNote` declare no `fields` in the spec, so they answer the
  default rendering (as `POST /ledger/voucher`);
- products (the spec's `Product`; `GET /product` filters `productNumber` (a list of numbers, given
  comma-separated or repeated), `ids`, `number` (deprecated, the same), `name` (contains, any case),
  `isInactive`, `vatTypeId`, `accountId`): `isInactive` has no default in the spec, so left out it
  gives active and inactive products alike; `name` is required; a `number` already held by a
  product of the company, active or inactive, is refused: 422 on `number`, "Produktnummeret er
  allerede i bruk." (exact match after trimming; an empty number is never a collision and is not
  assigned one); `account` must be an active account of the company from 3000 to 3999 ("Kontoen
  med id <id> finnes ikke." as for postings, "Konto <n> er inaktiv.", "Kontoen må være en
  inntektskonto (3000-3999)."); `vatType` must be an outgoing (or none) VAT type as on order
  lines, and left out it is the account's VAT type (none given: "3"); a VAT type other than the
  one a vatLocked account is locked to is refused with the voucher postings' message (422 on
  `vatType.id`, "Kontoen <n> <name> er låst til mva-kode <code>: <name>."); `description`,
  `orderLineDescription`, `ean`, `isInactive` and the two prices are kept (one not given is shown
  derived from the other, 2 decimals, or 0), every other field is accepted and ignored; `POST /product` declares
  no `fields`, so it answers the default rendering; ids are per store (unique across companies);
- an order line with a product: no `vatType` given means the product's; no (or an empty)
  `description` means the product's `orderLineDescription`, else its name; the price is still
  required (the product's price is not taken over: sandbox limitation); an inactive product is
  accepted; when the product has an account, the line's revenue goes there (instead of the VAT
  type's account below) and a line VAT type that account is not locked to is refused when the
  order is created (422 on `orderLines.vatType.id`, the voucher postings' message); a product
  without account books as a line without product;
- each company starts with customers made "by hand" in Tripletex (`SEEDED_CUSTOMERS`): 10000-10002
  and an inactive 100001, so a client numbering from 100000 that does not search inactive
  customers collides.

Admin (`add_invoicing_admin_routes`, under `/_sandbox`): `GET /_sandbox/invoicing?company_id=`
(customers, products, orders, invoices, payment types, sent e-mails, settings) and `POST /_sandbox/invoicing`
(`{"company_id", "bank_account_registered", "next_invoice_number", "next_customer_number"}`).
`POST /_sandbox/reset` empties it all and seeds again; with a state file it survives restarts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kassebro.sandbox.amounts import Ore, from_ore, round_half_up, to_ore
from kassebro.sandbox.tripletex import (
    COMPANY_ID_STRIDE,
    DEFAULT_FIELDS,
    Login,
    TripletexError,
    TxJSONResponse,
    VatType,
    _base,
    _bool_param,
    _currency,
    _date_param,
    _int_param,
    _json_body,
    _list_param,
    _listing,
    _parse_date,
    _ref_id,
    _single,
    _to_decimal,
    _vm,
    apply_fields,
    not_found,
    parse_fields,
    validation_failed,
)

if TYPE_CHECKING:
    from kassebro.sandbox.tripletex import Account, CompanyBooks, StoredPosting, StoredVoucher, TripletexStore

BANK_ACCOUNT_MISSING = "Faktura kan ikke opprettes før selskapet har registrert et bankkontonummer."
CUSTOMER_NUMBER_START = 10_000
INVOICE_DUE_DAYS = 14
NORWAY_COUNTRY_ID = 161
RECEIVABLE_ACCOUNT = 1500
# VAT type number -> revenue account number (INFERRED, module doc).
REVENUE_ACCOUNTS: dict[str, int] = {"3": 3000, "31": 3030, "33": 3040, "5": 3100, "6": 3200, "52": 3900, "0": 3900}
# (description, debit account number): what a shop's Tripletex typically has (INFERRED).
PAYMENT_TYPES: tuple[tuple[str, int], ...] = (
    ("Betalt til bank", 1920),
    ("Kontant", 1900),
    ("Vipps", 1945),
    ("Klarna", 1949),
    ("Bankkort", 1580),
    ("Gavekort", 2900),
)
PAYMENT_TYPE_ID_BASE = 37_310_001
# A product without vatType and without account: high rate (INFERRED, module doc).
DEFAULT_PRODUCT_VAT = "3"
PRODUCT_ACCOUNTS = range(3000, 4000)
SEEDED_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "number": 10_000,
        "name": "Nordlys Catering AS",
        "organization_number": "915000001",
        "email": "post@nordlys-catering.no",
        "invoice_email": "faktura@nordlys-catering.no",
        "invoice_send_method": "EHF",
        "address": {"addressLine1": "Strandgata 12", "postalCode": "9008", "city": "Tromsø"},
    },
    {
        "number": 10_001,
        "name": "Kari Nordmann",
        "email": "kari.nordmann@example.no",
        "is_private_individual": True,
        "address": {"addressLine1": "Bakkeveien 3", "postalCode": "0150", "city": "Oslo"},
    },
    {
        "number": 10_002,
        "name": "Fjordkontoret AS",
        "email": "regnskap@fjordkontoret.no",
        "address": {"addressLine1": "Kaiveien 1", "postalCode": "5003", "city": "Bergen"},
    },
    {
        "number": 100_001,
        "name": "Ola Nettbutikk (gammel kunde)",
        "email": "ola.gammel@example.no",
        "is_private_individual": True,
        "is_inactive": True,
    },
)
INVOICE_SEND_METHODS = ("EMAIL", "EHF", "EFAKTURA", "AVTALEGIRO", "VIPPS", "PAPER", "MANUAL")
SEND_TYPES = ("EMAIL", "EHF", "AVTALEGIRO", "EFAKTURA", "VIPPS", "PAPER", "MANUAL")
# `:createCreditNote`'s sendType enum in the spec (more than `:invoice`'s)
CREDIT_NOTE_SEND_TYPES = (
    *SEND_TYPES,
    "DIRECT",
    "AUTOINVOICE_EHF_OUTBOUND",
    "AUTOINVOICE_EHF_INCOMING",
    "PEPPOL_EHF_INCOMING",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TWO_PLACES = Decimal("0.01")


# --------------------------------------------------------------------------------------------
# What is stored (JSON-safe: decimals as strings, money as øre)
# --------------------------------------------------------------------------------------------


@dataclass
class StoredCustomer:
    id: int
    company_id: int
    number: int
    name: str
    address_id: int
    organization_number: str = ""
    email: str = ""
    invoice_email: str = ""
    phone_number: str = ""
    is_private_individual: bool = False
    invoice_send_method: str = "EMAIL"
    is_inactive: bool = False
    address: dict[str, Any] = field(default_factory=dict)  # addressLine1/2, postalCode, city, countryId
    version: int = 0


@dataclass
class StoredProduct:
    id: int
    company_id: int
    name: str
    number: str
    vat_type_id: int
    account_id: int | None = None
    description: str = ""
    order_line_description: str = ""
    ean: str = ""
    price_excl: str | None = None
    price_incl: str | None = None
    is_inactive: bool = False
    version: int = 0


@dataclass
class StoredOrderLine:
    id: int
    description: str
    count: str
    unit_price_excl: str | None
    unit_price_incl: str | None
    vat_type_id: int
    discount: str
    net: Ore
    gross: Ore
    product_id: int | None = None


@dataclass
class StoredOrder:
    id: int
    company_id: int
    customer_id: int
    number: str
    order_date: str
    delivery_date: str
    reference: str = ""
    invoice_comment: str = ""
    delivery_comment: str = ""
    receiver_email: str = ""
    including_vat: bool = False
    lines: list[StoredOrderLine] = field(default_factory=list)
    is_closed: bool = False
    invoice_id: int | None = None
    version: int = 0


@dataclass
class StoredInvoice:
    id: int
    company_id: int
    number: int
    date: str
    due_date: str
    customer_id: int
    order_id: int
    voucher_id: int
    kid: str
    amount: Ore
    amount_excl: Ore
    paid: Ore = 0
    payment_voucher_ids: list[int] = field(default_factory=list)
    payment_type_id: int = 0
    prepaid: Ore = 0
    version: int = 0
    credit_note_of: int | None = None  # a credit note: the id of the invoice it credits
    credited_by: int | None = None  # a credited invoice: the id of its credit note
    settled: Ore = 0  # what a credit note and its invoice settled of each other (the note's is negative)
    comment: str = ""


@dataclass(frozen=True)
class PaymentType:
    id: int
    company_id: int
    description: str
    debit_account: int  # account number
    sequence: int


@dataclass
class CompanySettings:
    bank_account_registered: bool = True
    next_invoice_number: int = 1
    next_customer_number: int | None = None  # None: the highest in use + 1, at least 10000


def kid_for(number: int) -> str:
    """The invoice number followed by its MOD10 (Luhn) check digit (INFERRED KID layout)."""
    digits = str(number)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def line_amounts(
    count: Decimal, unit: Decimal, discount: Decimal, vat: VatType, *, including_vat: bool
) -> tuple[Ore, Ore]:
    """(net, gross) of an order line in øre, rounded half up (INFERRED, module doc)."""
    rate = Fraction(Decimal(vat.percentage))
    base = Fraction(count) * Fraction(unit) * 100 * (100 - Fraction(discount)) / 100  # øre
    if including_vat:
        gross = round_half_up(base)
        return round_half_up(Fraction(gross) * 100 / (100 + rate)), gross
    net = round_half_up(base)
    return net, net + round_half_up(Fraction(net) * rate / 100)


def _text(raw: dict[str, Any], key: str, messages: list[dict[str, Any]], field_name: str = "", path: str = "") -> str:
    """A text field ("" when absent; a number is taken as its digits, as `Order.number` often is)."""
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        messages.append(_vm(field_name or key, "Ugyldig verdi.", path or field_name or key))
        return ""
    return str(value)


def _flag(raw: dict[str, Any], key: str, messages: list[dict[str, Any]], default: bool = False) -> bool:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        messages.append(_vm(key, "Ugyldig verdi.", key))
        return default
    return value


# --------------------------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------------------------


class Invoicing:
    """Customers, orders, invoices, payment types and sent e-mails of every company of a store.

    Lives on the store (`store.invoicing`), is replaced (and seeded again) by `store.reset()`, and
    saved with the store's state (`dump`/`load`). Every change holds the store's lock and ends with
    `store._save()`, so a save-then-drop fault leaves exactly what the call stored.
    """

    def __init__(self, store: TripletexStore) -> None:
        self.store = store
        self.customers: dict[int, StoredCustomer] = {}
        self.orders: dict[int, StoredOrder] = {}
        self.invoices: dict[int, StoredInvoice] = {}
        self.emails: list[dict[str, Any]] = []
        self.settings: dict[int, CompanySettings] = {c: CompanySettings() for c in store.companies}
        self._next_customer_id = 108_000_001
        self._next_address_id = 412_000_001
        self._next_order_id = 20_500_001
        self._next_line_id = 61_200_001
        self._next_invoice_id = 30_700_001
        self.products: dict[int, StoredProduct] = {}
        self._next_product_id = 94_100_001
        self.payment_types: dict[int, PaymentType] = {}
        for index, company_id in enumerate(store.companies):  # the default company first, as the charts
            numbers = store.books(company_id).accounts_by_number
            for i, (description, account) in enumerate(PAYMENT_TYPES):
                if account in numbers:
                    pid = PAYMENT_TYPE_ID_BASE + i + index * COMPANY_ID_STRIDE
                    self.payment_types[pid] = PaymentType(pid, company_id, description, account, i + 1)
            for seed in SEEDED_CUSTOMERS:
                self._add_customer(company_id, **seed)

    # ---- persistence -------------------------------------------------------------------------

    def customer_ids(self, company_id: int) -> set[int]:
        """The ids of the company's customers (a voucher posting may name one of them)."""
        return {c.id for c in self.customers.values() if c.company_id == company_id}

    def dump(self) -> dict[str, Any]:
        return {
            "customers": [asdict(c) for c in self.customers.values()],
            "products": [asdict(p) for p in self.products.values()],
            "orders": [asdict(o) for o in self.orders.values()],
            "invoices": [asdict(i) for i in self.invoices.values()],
            "emails": list(self.emails),
            "settings": {str(c): asdict(s) for c, s in self.settings.items()},
            "next_ids": {
                "customer": self._next_customer_id,
                "address": self._next_address_id,
                "order": self._next_order_id,
                "line": self._next_line_id,
                "invoice": self._next_invoice_id,
                "product": self._next_product_id,
            },
        }

    def load(self, data: dict[str, Any]) -> None:
        self.customers = {c["id"]: StoredCustomer(**c) for c in data.get("customers", [])}
        self.products = {p["id"]: StoredProduct(**p) for p in data.get("products", [])}
        self.orders = {}
        for raw in data.get("orders", []):
            lines = [StoredOrderLine(**line) for line in raw.pop("lines", [])]
            self.orders[raw["id"]] = StoredOrder(**raw, lines=lines)
        self.invoices = {i["id"]: StoredInvoice(**i) for i in data.get("invoices", [])}
        self.emails = list(data.get("emails", []))
        for company, raw in data.get("settings", {}).items():
            if int(company) in self.settings:
                self.settings[int(company)] = CompanySettings(**raw)
        ids = data.get("next_ids", {})
        self._next_customer_id = ids.get("customer", self._next_customer_id)
        self._next_address_id = ids.get("address", self._next_address_id)
        self._next_order_id = ids.get("order", self._next_order_id)
        self._next_line_id = ids.get("line", self._next_line_id)
        self._next_invoice_id = ids.get("invoice", self._next_invoice_id)
        self._next_product_id = ids.get("product", self._next_product_id)

    # ---- lookups -----------------------------------------------------------------------------

    def customers_of(self, company_id: int) -> list[StoredCustomer]:
        return sorted((c for c in self.customers.values() if c.company_id == company_id), key=lambda c: c.id)

    def customer(self, customer_id: int, company_id: int) -> StoredCustomer:
        found = self.customers.get(customer_id)
        if found is None or found.company_id != company_id:
            raise not_found()
        return found

    def products_of(self, company_id: int) -> list[StoredProduct]:
        return sorted((p for p in self.products.values() if p.company_id == company_id), key=lambda p: p.id)

    def product(self, product_id: int, company_id: int) -> StoredProduct:
        found = self.products.get(product_id)
        if found is None or found.company_id != company_id:
            raise not_found()
        return found

    def orders_of(self, company_id: int) -> list[StoredOrder]:
        return sorted((o for o in self.orders.values() if o.company_id == company_id), key=lambda o: o.id)

    def order(self, order_id: int, company_id: int) -> StoredOrder:
        found = self.orders.get(order_id)
        if found is None or found.company_id != company_id:
            raise not_found()
        return found

    def invoices_of(self, company_id: int) -> list[StoredInvoice]:
        return sorted((i for i in self.invoices.values() if i.company_id == company_id), key=lambda i: i.id)

    def invoice(self, invoice_id: int, company_id: int) -> StoredInvoice:
        found = self.invoices.get(invoice_id)
        if found is None or found.company_id != company_id:
            raise not_found()
        return found

    def payment_types_of(self, company_id: int) -> list[PaymentType]:
        return sorted((p for p in self.payment_types.values() if p.company_id == company_id), key=lambda p: p.id)

    def payment_type(self, payment_type_id: int, company_id: int) -> PaymentType:
        found = self.payment_types.get(payment_type_id)
        if found is None or found.company_id != company_id:
            raise not_found()
        return found

    def emails_of(self, company_id: int) -> list[dict[str, Any]]:
        return [e for e in self.emails if e["company_id"] == company_id]

    # ---- customers ---------------------------------------------------------------------------

    def _add_customer(self, company_id: int, *, number: int, name: str, **details: Any) -> StoredCustomer:
        address = {"addressLine1": "", "addressLine2": "", "postalCode": "", "city": "", "countryId": None}
        address.update(details.pop("address", {}) or {})
        customer = StoredCustomer(
            id=self._next_customer_id,
            company_id=company_id,
            number=number,
            name=name,
            address_id=self._next_address_id,
            address=address,
            **details,
        )
        self._next_customer_id += 1
        self._next_address_id += 1
        self.customers[customer.id] = customer
        return customer

    def _next_number(self, company_id: int) -> int:
        settings = self.settings[company_id]
        used = {c.number for c in self.customers_of(company_id)}
        if settings.next_customer_number is not None:
            number = settings.next_customer_number
        else:
            number = max(CUSTOMER_NUMBER_START, max(used, default=0) + 1)
        while number in used:
            number += 1
        if settings.next_customer_number is not None:
            settings.next_customer_number = number + 1
        return number

    def create_customer(self, body: Any, company_id: int) -> StoredCustomer:
        if not isinstance(body, dict):
            raise TripletexError(422, 22000, "Feil i JSON.", developer_message="Expected an object")
        messages: list[dict[str, Any]] = []
        name = body.get("name")
        if name is None or (isinstance(name, str) and not name.strip()):
            messages.append(_vm("name", "Kan ikke være null.", "name"))
        elif not isinstance(name, str):
            messages.append(_vm("name", "Ugyldig verdi.", "name"))
        number = body.get("customerNumber")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
            messages.append(_vm("customerNumber", "Ugyldig verdi.", "customerNumber"))
            number = None
        details: dict[str, Any] = {
            "organization_number": _text(body, "organizationNumber", messages).replace(" ", ""),
            "email": _text(body, "email", messages).strip(),
            "invoice_email": _text(body, "invoiceEmail", messages).strip(),
            "phone_number": _text(body, "phoneNumber", messages),
            "is_private_individual": _flag(body, "isPrivateIndividual", messages),
            "is_inactive": _flag(body, "isInactive", messages),
        }
        for key, value in (("email", details["email"]), ("invoiceEmail", details["invoice_email"])):
            if value and not _EMAIL.match(value):
                messages.append(_vm(key, "Ugyldig e-postadresse.", key))  # sandbox wording
        method = body.get("invoiceSendMethod") or "EMAIL"
        if method not in INVOICE_SEND_METHODS:
            messages.append(_vm("invoiceSendMethod", "Ugyldig verdi.", "invoiceSendMethod"))
        details["invoice_send_method"] = method
        address: dict[str, Any] = {}
        raw_address = body.get("postalAddress")
        if raw_address is not None and not isinstance(raw_address, dict):
            messages.append(_vm("postalAddress", "Ugyldig verdi.", "postalAddress"))
        elif isinstance(raw_address, dict):
            for key in ("addressLine1", "addressLine2", "postalCode", "city"):
                address[key] = _text(raw_address, key, messages, f"postalAddress.{key}")
            country = _ref_id(raw_address.get("country"))
            if country is False:
                messages.append(_vm("postalAddress.country.id", "Ugyldig verdi.", "postalAddress.country.id"))
            else:
                address["countryId"] = country
        details["address"] = address
        with self.store._lock:
            if number and any(c.number == number for c in self.customers_of(company_id)):
                messages.append(_vm("customerNumber", "Kundenummeret er allerede i bruk.", "customerNumber"))
            if messages:
                raise validation_failed(messages)
            assert isinstance(name, str)
            number = number or self._next_number(company_id)
            customer = self._add_customer(company_id, number=number, name=name.strip(), **details)
            self.store._save()
            return customer

    # ---- products ----------------------------------------------------------------------------

    def create_product(self, body: Any, company_id: int) -> StoredProduct:
        """`POST /product` (INFERRED rules, module doc): a name, a number unique in the company, an
        active revenue account of the company and an outgoing VAT type it is not locked against."""
        if not isinstance(body, dict):
            raise TripletexError(422, 22000, "Feil i JSON.", developer_message="Expected an object")
        books = self.store.books(company_id)
        messages: list[dict[str, Any]] = []
        name = body.get("name")
        if name is None or (isinstance(name, str) and not name.strip()):
            messages.append(_vm("name", "Kan ikke være null.", "name"))
        elif not isinstance(name, str):
            messages.append(_vm("name", "Ugyldig verdi.", "name"))
        number = _text(body, "number", messages).strip()
        details: dict[str, Any] = {
            "description": _text(body, "description", messages),
            "order_line_description": _text(body, "orderLineDescription", messages),
            "ean": _text(body, "ean", messages).strip(),
            "is_inactive": _flag(body, "isInactive", messages),
        }
        for key, attr in (("priceExcludingVatCurrency", "price_excl"), ("priceIncludingVatCurrency", "price_incl")):
            price = None if body.get(key) is None else _to_decimal(body.get(key))
            if body.get(key) is not None and price is None:
                messages.append(_vm(key, "Ugyldig tall.", key))
            details[attr] = None if price is None else str(price)
        account: Account | None = None
        account_id = _ref_id(body.get("account"))
        if account_id is False or (account_id is not None and account_id not in books.accounts):
            given = body["account"].get("id") if isinstance(body.get("account"), dict) else None
            messages.append(_vm("account.id", f"Kontoen med id {given} finnes ikke.", "account.id"))  # as postings
        elif account_id is not None:
            account = books.accounts[int(account_id)]
            if account.is_inactive:
                messages.append(_vm("account.id", f"Konto {account.number} er inaktiv.", "account.id"))  # as postings
            elif account.number not in PRODUCT_ACCOUNTS:
                message = "Kontoen må være en inntektskonto (3000-3999)."  # sandbox wording
                messages.append(_vm("account.id", message, "account.id"))
        vat: VatType | None = None
        vat_id = _ref_id(body.get("vatType"))
        if vat_id is False or (vat_id is not None and vat_id not in self.store.vat_types):
            messages.append(_vm("vatType.id", "Ugyldig mva-kode.", "vatType.id"))
        elif vat_id is not None:
            vat = self.store.vat_types[int(vat_id)]
        else:  # left out: the account's VAT type, else high rate
            vat = self.store.vat_by_number.get(account.vat_type if account is not None else DEFAULT_PRODUCT_VAT)
            if vat is None:
                messages.append(_vm("vatType", "Kan ikke være null.", "vatType"))
        if vat is not None and vat.direction == "INCOMING":
            messages.append(_vm("vatType.id", "Mva-koden kan ikke brukes på salg.", "vatType.id"))  # as order lines
        elif vat is not None and account is not None:
            refusal = self.store.vat_lock_refusal(account, vat)
            if refusal is not None:
                messages.append(_vm("vatType.id", refusal, "vatType.id"))
        with self.store._lock:
            if number and any(p.number == number for p in self.products_of(company_id)):
                messages.append(_vm("number", "Produktnummeret er allerede i bruk.", "number"))  # sandbox wording
            if messages:
                raise validation_failed(messages)
            assert isinstance(name, str) and vat is not None
            product = StoredProduct(
                id=self._next_product_id,
                company_id=company_id,
                name=name.strip(),
                number=number,
                vat_type_id=vat.id,
                account_id=account.id if account is not None else None,
                **details,
            )
            self._next_product_id += 1
            self.products[product.id] = product
            self.store._save()
            return product

    # ---- orders ------------------------------------------------------------------------------

    def create_order(self, body: Any, company_id: int) -> StoredOrder:
        if not isinstance(body, dict):
            raise TripletexError(422, 22000, "Feil i JSON.", developer_message="Expected an object")
        books = self.store.books(company_id)
        messages: list[dict[str, Any]] = []
        customer_id = _ref_id(body.get("customer"))
        if customer_id is None:
            messages.append(_vm("customer", "Kan ikke være null.", "customer"))
        elif customer_id is False or self.customers.get(int(customer_id)) is None:
            messages.append(_vm("customer.id", "Kunden finnes ikke.", "customer.id"))  # sandbox wording
        elif self.customers[int(customer_id)].company_id != company_id:
            messages.append(_vm("customer.id", "Kunden finnes ikke.", "customer.id"))
        dates: dict[str, str] = {}
        for key in ("orderDate", "deliveryDate"):
            if body.get(key) is None:
                messages.append(_vm(key, "Kan ikke være null.", key))
                continue
            parsed = _parse_date(body.get(key))
            if parsed is None:
                messages.append(_vm(key, "Ugyldig dato.", key))
            else:
                dates[key] = parsed.isoformat()
        texts = {
            key: _text(body, key, messages)
            for key in ("number", "reference", "invoiceComment", "deliveryComment", "receiverEmail")
        }
        if texts["receiverEmail"] and not _EMAIL.match(texts["receiverEmail"].strip()):
            messages.append(_vm("receiverEmail", "Ugyldig e-postadresse.", "receiverEmail"))  # sandbox wording
        including = _flag(body, "isPrioritizeAmountsIncludingVat", messages)
        raw_lines = body.get("orderLines") or []
        if not isinstance(raw_lines, list) or not all(isinstance(line, dict) for line in raw_lines):
            raise TripletexError(422, 22000, "Feil i JSON.", developer_message="orderLines must be a list of objects")
        parsed_lines = [
            self._check_line(i, raw, including, messages, books.accounts_by_number, company_id)
            for i, raw in enumerate(raw_lines)
        ]
        if messages:
            raise validation_failed(messages)
        with self.store._lock:
            lines = []
            for line in parsed_lines:
                assert line is not None
                lines.append(StoredOrderLine(id=self._next_line_id, **line))
                self._next_line_id += 1
            order = StoredOrder(
                id=self._next_order_id,
                company_id=company_id,
                customer_id=int(customer_id),  # type: ignore[arg-type]
                number=texts["number"],
                order_date=dates["orderDate"],
                delivery_date=dates["deliveryDate"],
                reference=texts["reference"],
                invoice_comment=texts["invoiceComment"],
                delivery_comment=texts["deliveryComment"],
                receiver_email=texts["receiverEmail"].strip(),
                including_vat=including,
                lines=lines,
            )
            self._next_order_id += 1
            self.orders[order.id] = order
            self.store._save()
            return order

    def _check_line(
        self,
        i: int,
        raw: dict[str, Any],
        including: bool,
        messages: list[dict[str, Any]],
        accounts_by_number: dict[int, Any],
        company_id: int,
    ) -> dict[str, Any] | None:
        start = len(messages)
        path = f"orderLines[{i}]"

        def number(key: str, default: Decimal | None = None) -> Decimal | None:
            value = raw.get(key)
            if value is None:
                return default
            parsed = _to_decimal(value)
            if parsed is None:
                messages.append(_vm(f"orderLines.{key}", "Ugyldig tall.", f"{path}.{key}"))
            return parsed

        product: StoredProduct | None = None
        product_id = _ref_id(raw.get("product"))
        if product_id is not None:
            product = None if product_id is False else self.products.get(int(product_id))
            if product is None or product.company_id != company_id:
                product = None
                message = "Produktet finnes ikke."  # sandbox wording
                messages.append(_vm("orderLines.product.id", message, f"{path}.product.id"))
        description = _text(raw, "description", messages, "orderLines.description", f"{path}.description")
        if not description and product is not None:
            description = product.order_line_description or product.name
        count = number("count", Decimal(1))
        discount = number("discount", Decimal(0))
        if discount is not None and not (0 <= discount <= 100):
            messages.append(_vm("orderLines.discount", "Rabatten må være mellom 0 og 100.", f"{path}.discount"))
        excl = number("unitPriceExcludingVatCurrency")
        incl = number("unitPriceIncludingVatCurrency")
        wanted, unwanted = ("unitPriceIncludingVatCurrency", "unitPriceExcludingVatCurrency")
        if not including:
            wanted, unwanted = unwanted, wanted
        if raw.get(unwanted) is not None:
            kind = "inkl." if including else "eks."
            messages.append(
                _vm(
                    f"orderLines.{unwanted}",
                    f"Ordren prioriterer beløp {kind} mva.: {unwanted} kan ikke oppgis, bare {wanted}.",
                    f"{path}.{unwanted}",
                )
            )  # sandbox wording
        elif raw.get(wanted) is None:
            messages.append(_vm(f"orderLines.{wanted}", "Kan ikke være null.", f"{path}.{wanted}"))
        vat: VatType | None = None
        vat_id = _ref_id(raw.get("vatType"))
        if vat_id is None and product is not None:
            vat_id = product.vat_type_id  # the product's, when the line gives none
        if vat_id is None:
            messages.append(_vm("orderLines.vatType", "Kan ikke være null.", f"{path}.vatType"))
        elif vat_id is False or vat_id not in self.store.vat_types:
            messages.append(_vm("orderLines.vatType.id", "Ugyldig mva-kode.", f"{path}.vatType.id"))
        else:
            vat = self.store.vat_types[int(vat_id)]
            if vat.direction == "INCOMING":
                messages.append(
                    _vm("orderLines.vatType.id", "Mva-koden kan ikke brukes på salg.", f"{path}.vatType.id")
                )  # sandbox wording
            elif product is not None and product.account_id is not None:
                account = self.store.books(company_id).accounts[product.account_id]
                refusal = self.store.vat_lock_refusal(account, vat)
                if refusal is not None:
                    messages.append(_vm("orderLines.vatType.id", refusal, f"{path}.vatType.id"))
            elif REVENUE_ACCOUNTS.get(vat.number) not in accounts_by_number:
                messages.append(
                    _vm(
                        "orderLines.vatType.id",
                        f"Sandkassen har ingen inntektskonto for mva-kode {vat.number}.",
                        f"{path}.vatType.id",
                    )
                )  # sandbox limitation
        if len(messages) > start:
            return None
        assert vat is not None and count is not None and discount is not None
        unit = incl if including else excl
        assert unit is not None
        net, gross = line_amounts(count, unit, discount, vat, including_vat=including)
        return {
            "description": description,
            "count": str(count),
            "unit_price_excl": None if excl is None else str(excl),
            "unit_price_incl": None if incl is None else str(incl),
            "vat_type_id": vat.id,
            "discount": str(discount),
            "net": net,
            "gross": gross,
            "product_id": product.id if product is not None else None,
        }

    # ---- invoices ----------------------------------------------------------------------------

    def invoice_order(
        self,
        order_id: int,
        company_id: int,
        *,
        invoice_date: dt.date,
        send_to_customer: bool,
        send_type: str | None,
        payment_type_id: int | None,
        paid_amount: Decimal | None,
        rest_payment_type_id: int | None,
        override_email: str | None,
        invoice_number: int = 0,
    ) -> StoredInvoice:
        """`PUT /order/{id}/:invoice` (and `POST /invoice` for an existing order, which may set the
        number: 0 = generated): check everything first, then book, so a refusal changes nothing."""
        with self.store._lock:
            order = self.order(order_id, company_id)
            books = self.store.books(company_id)
            messages: list[dict[str, Any]] = []
            payment_type_id = payment_type_id or None
            if payment_type_id is None and paid_amount == 0:
                paid_amount = None  # paymentTypeId=0&paidAmount=0: not prepaid
            if (payment_type_id is None) != (paid_amount is None):
                missing = "paidAmount" if paid_amount is None else "paymentTypeId"
                messages.append(_vm(missing, "Både paymentTypeId og paidAmount må oppgis.", missing))
            payments: list[tuple[PaymentType, Ore]] = []
            if payment_type_id is not None and paid_amount is not None:
                paid = self._check_payment(payment_type_id, paid_amount, company_id, messages, "paymentTypeId")
                if paid is not None:
                    payments.append(paid)
            if order.is_closed:
                messages.append(_vm("id", "Ordren er allerede fakturert.", "id"))  # sandbox wording
            elif not order.lines:
                messages.append(_vm("orderLines", "Ordren har ingen ordrelinjer å fakturere.", "orderLines"))
            if invoice_number and invoice_number in {i.number for i in self.invoices_of(company_id)}:
                # INFERRED: a number already used is refused (sandbox wording)
                messages.append(_vm("invoiceNumber", "Fakturanummeret er allerede i bruk.", "invoiceNumber"))
            if messages:
                raise validation_failed(messages)
            if not self.settings[company_id].bank_account_registered:
                raise validation_failed([_vm(None, BANK_ACCOUNT_MISSING)])  # type: ignore[arg-type]
            if RECEIVABLE_ACCOUNT not in books.accounts_by_number:
                raise validation_failed([_vm("customer", "Sandkassen mangler konto 1500.")])  # sandbox limitation
            amount = sum(line.gross for line in order.lines)
            if rest_payment_type_id:
                rest = amount - sum(p[1] for p in payments)
                if rest:
                    checked = self._check_payment(
                        rest_payment_type_id, from_ore(rest), company_id, messages, "paymentTypeIdRestAmount"
                    )
                    if checked is None:
                        raise validation_failed(messages)
                    payments.append(checked)

            number = invoice_number or self._take_invoice_number(company_id)
            text = f"Faktura {number}"
            postings = [(RECEIVABLE_ACCOUNT, amount, None, order.customer_id, text)]
            for line in order.lines:
                vat = self.store.vat_types[line.vat_type_id]
                revenue = self._revenue_account(line, vat, books)
                postings.append((revenue, -line.gross, vat.id, None, line.description or text))
            booked: list[StoredVoucher] = []
            try:
                booked.append(self._book(company_id, invoice_date, text, postings, str(number)))
                for payment_type, paid in payments:
                    booked.append(self._book_payment(order.customer_id, number, payment_type, paid, invoice_date))
            except TripletexError:
                for voucher in booked:
                    self.store.vouchers.pop(voucher.id, None)
                if not invoice_number:
                    self.settings[company_id].next_invoice_number = number
                raise
            invoice = StoredInvoice(
                id=self._next_invoice_id,
                company_id=company_id,
                number=number,
                date=invoice_date.isoformat(),
                due_date=(invoice_date + dt.timedelta(days=INVOICE_DUE_DAYS)).isoformat(),
                customer_id=order.customer_id,
                order_id=order.id,
                voucher_id=booked[0].id,
                kid=kid_for(number),
                amount=amount,
                amount_excl=sum(line.net for line in order.lines),
                paid=sum(p[1] for p in payments),
                payment_voucher_ids=[v.id for v in booked[1:]],
                payment_type_id=payments[0][0].id if payments else 0,
                prepaid=payments[0][1] if payments else 0,
            )
            self._next_invoice_id += 1
            self.invoices[invoice.id] = invoice
            order.is_closed = True
            order.invoice_id = invoice.id
            order.version += 1
            if send_to_customer:
                self._record_send(invoice, order, send_type, override_email)
            self.store._save()
            return invoice

    def _revenue_account(self, line: StoredOrderLine, vat: VatType, books: CompanyBooks) -> int:
        """The account number a line's revenue is credited to: its product's, else the VAT type's."""
        product = self.products.get(line.product_id) if line.product_id is not None else None
        if product is not None and product.account_id is not None:
            return int(books.accounts[product.account_id].number)
        return REVENUE_ACCOUNTS[vat.number]

    def register_payment(
        self, invoice_id: int, company_id: int, *, date: dt.date, payment_type_id: int, paid_amount: Decimal
    ) -> StoredInvoice:
        """`PUT /invoice/{id}/:payment`: book the payment, lower what is outstanding."""
        with self.store._lock:
            invoice = self.invoice(invoice_id, company_id)
            messages: list[dict[str, Any]] = []
            checked = self._check_payment(payment_type_id, paid_amount, company_id, messages, "paymentTypeId")
            if checked is None:
                raise validation_failed(messages)
            payment_type, paid = checked
            voucher = self._book_payment(invoice.customer_id, invoice.number, payment_type, paid, date)
            invoice.paid += paid
            invoice.payment_voucher_ids.append(voucher.id)
            invoice.version += 1
            self.store._save()
            return invoice

    def credit_invoice(
        self,
        invoice_id: int,
        company_id: int,
        *,
        date: dt.date,
        comment: str,
        send_to_customer: bool,
        send_type: str | None,
        credit_note_email: str | None,
    ) -> StoredInvoice:
        """`PUT /invoice/{id}/:createCreditNote`: a credit note for the whole invoice, booked as the
        invoice's voucher reversed; the invoice is marked credited. Checked first, so a refusal
        changes nothing (INFERRED rules: module doc)."""
        with self.store._lock:
            invoice = self.invoice(invoice_id, company_id)
            messages: list[dict[str, Any]] = []
            if invoice.credit_note_of is not None:
                messages.append(_vm("id", "En kreditnota kan ikke krediteres.", "id"))  # sandbox wording
            elif invoice.credited_by is not None:
                messages.append(_vm("id", "Fakturaen er allerede kreditert.", "id"))  # sandbox wording
            if date.isoformat() < invoice.date:
                messages.append(_vm("date", "Kreditnotaen kan ikke dateres før fakturaen.", "date"))  # sandbox wording
            if messages:
                raise validation_failed(messages)
            order = self.orders[invoice.order_id]
            accounts = self.store.books(company_id).accounts
            number = self._take_invoice_number(company_id)
            text = f"Kreditnota {number}"
            postings: list[tuple[int, Ore, int | None, int | None, str]] = []
            for p in self.store.vouchers[invoice.voucher_id].postings:  # the invoice's rows, reversed
                if p.row > 0:
                    account = accounts[p.account_id].number
                    receivable = account == RECEIVABLE_ACCOUNT
                    vat_id = None if receivable else (p.vat_type_id or None)
                    postings.append((account, -p.gross, vat_id, p.customer_id, text if receivable else p.description))
            try:
                voucher = self._book(company_id, date, text, postings, str(number))
            except TripletexError:
                self.settings[company_id].next_invoice_number = number
                raise
            # what was still owed on the invoice is settled by the note; what was paid stays on the
            # note as owed back to the customer (a negative amount outstanding)
            settled = min(max(invoice.amount - invoice.paid - invoice.settled, 0), invoice.amount)
            credit = StoredInvoice(
                id=self._next_invoice_id,
                company_id=company_id,
                number=number,
                date=date.isoformat(),
                due_date=date.isoformat(),
                customer_id=invoice.customer_id,
                order_id=invoice.order_id,
                voucher_id=voucher.id,
                kid="",
                amount=-invoice.amount,
                amount_excl=-invoice.amount_excl,
                credit_note_of=invoice.id,
                settled=-settled,
                comment=comment,
            )
            self._next_invoice_id += 1
            self.invoices[credit.id] = credit
            invoice.credited_by = credit.id
            invoice.settled += settled
            invoice.version += 1
            if send_to_customer:
                method = send_type or self.customers[invoice.customer_id].invoice_send_method
                if method != "EMAIL" or credit_note_email:  # the spec: e-mail without creditNoteEmail is not sent
                    self._record_send(credit, order, send_type, credit_note_email)
            self.store._save()
            return credit

    def _check_payment(
        self, payment_type_id: int, amount: Decimal, company_id: int, messages: list[dict[str, Any]], key: str
    ) -> tuple[PaymentType, Ore] | None:
        start = len(messages)
        found = self.payment_types.get(payment_type_id)
        if found is None or found.company_id != company_id:
            messages.append(_vm(key, "Betalingstypen finnes ikke.", key))  # sandbox wording
        if amount != amount.quantize(_TWO_PLACES):
            messages.append(_vm("paidAmount", "Beløpet kan ikke ha mer enn 2 desimaler.", "paidAmount"))
        elif amount == 0:
            messages.append(_vm("paidAmount", "Beløpet kan ikke være 0.", "paidAmount"))  # sandbox wording
        if len(messages) > start or found is None:
            return None
        return found, to_ore(amount)

    def _take_invoice_number(self, company_id: int) -> int:
        settings = self.settings[company_id]
        used = {i.number for i in self.invoices_of(company_id)}
        number = settings.next_invoice_number
        while number in used:
            number += 1
        settings.next_invoice_number = number + 1
        return number

    def _book(
        self,
        company_id: int,
        date: dt.date,
        description: str,
        postings: list[tuple[int, Ore, int | None, int | None, str]],
        invoice_number: str,
    ) -> StoredVoucher:
        """A voucher through the store's own `create_voucher` (its checks, VAT rows and numbering)."""
        accounts = self.store.books(company_id).accounts_by_number
        body = {
            "date": date.isoformat(),
            "description": description,
            "postings": [
                {
                    "row": row,
                    "date": date.isoformat(),
                    "description": text,
                    "account": {"id": accounts[number].id},
                    "amountGross": from_ore(amount),
                    "amountGrossCurrency": from_ore(amount),
                    **({"vatType": {"id": vat_id}} if vat_id is not None else {}),
                    **({"customer": {"id": customer_id}} if customer_id is not None else {}),
                    **({"invoiceNumber": invoice_number} if number == RECEIVABLE_ACCOUNT else {}),
                }
                for row, (number, amount, vat_id, customer_id, text) in enumerate(postings, start=1)
            ],
        }
        return self.store.create_voucher(body, send_to_ledger=True, company_id=company_id)

    def _book_payment(
        self, customer_id: int, invoice_number: int, payment_type: PaymentType, paid: Ore, date: dt.date
    ) -> StoredVoucher:
        text = f"Innbetaling faktura {invoice_number}"
        postings = [
            (payment_type.debit_account, paid, None, None, f"{text} ({payment_type.description})"),
            (RECEIVABLE_ACCOUNT, -paid, None, customer_id, text),
        ]
        return self._book(payment_type.company_id, date, text, postings, str(invoice_number))

    def _record_send(
        self, invoice: StoredInvoice, order: StoredOrder, send_type: str | None, override: str | None
    ) -> None:
        customer = self.customers[invoice.customer_id]
        method = send_type or customer.invoice_send_method
        to = None
        if method == "EMAIL":
            to = override or order.receiver_email or customer.invoice_email or customer.email or None
        self.emails.append(
            {
                "company_id": invoice.company_id,
                "invoice_id": invoice.id,
                "invoice_number": invoice.number,
                "order_id": order.id,
                "customer_id": customer.id,
                "send_type": method,
                "to": to,
                "credit_note": invoice.credit_note_of is not None,
                "time": dt.datetime.now().isoformat(timespec="seconds"),
            }
        )

    # ---- admin -------------------------------------------------------------------------------

    def configure(self, company_id: int, options: dict[str, Any]) -> CompanySettings:
        """Set a company's bank-account flag, next invoice number and next customer number."""
        settings = self.settings[company_id]
        registered = options.get("bank_account_registered")
        invoice_number = options.get("next_invoice_number")
        customer_number = options.get("next_customer_number", settings.next_customer_number)
        if registered is not None and not isinstance(registered, bool):
            raise ValueError("bank_account_registered must be true or false")
        for name, value in (("next_invoice_number", invoice_number), ("next_customer_number", customer_number)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number from 1")
        with self.store._lock:
            if registered is not None:
                settings.bank_account_registered = registered
            if invoice_number is not None:
                settings.next_invoice_number = invoice_number
            settings.next_customer_number = customer_number
            self.store._save()
        return settings

    # ---- rendering (full depth; the fields filter prunes) ------------------------------------

    def _account(self, company_id: int, number: int, base: str) -> dict[str, Any] | None:
        account = self.store.books(company_id).accounts_by_number.get(number)
        return self.store.render_account(account, base) if account else None

    def render_address(self, customer: StoredCustomer, base: str) -> dict[str, Any]:
        a = customer.address
        country = a.get("countryId") or NORWAY_COUNTRY_ID
        parts = [a.get("addressLine1", ""), a.get("addressLine2", ""), f"{a.get('postalCode', '')} {a.get('city', '')}"]
        text = ", ".join(p.strip() for p in parts if p.strip())
        return {
            "id": customer.address_id,
            "version": 0,
            "url": f"{base}/address/{customer.address_id}",
            "addressLine1": a.get("addressLine1", ""),
            "addressLine2": a.get("addressLine2", ""),
            "postalCode": a.get("postalCode", ""),
            "city": a.get("city", ""),
            "country": {"id": country, "url": f"{base}/country/{country}"},
            "displayName": text,
            "addressAsString": text,
        }

    def render_customer(self, customer: StoredCustomer, base: str) -> dict[str, Any]:
        return {
            "id": customer.id,
            "version": customer.version,
            "url": f"{base}/customer/{customer.id}",
            "name": customer.name,
            "organizationNumber": customer.organization_number,
            "supplierNumber": 0,
            "customerNumber": customer.number,
            "isSupplier": False,
            "isCustomer": True,
            "isInactive": customer.is_inactive,
            "accountManager": None,
            "department": None,
            "email": customer.email,
            "invoiceEmail": customer.invoice_email,
            "overdueNoticeEmail": "",
            "bankAccounts": [],
            "phoneNumber": customer.phone_number,
            "phoneNumberMobile": "",
            "description": "",
            "language": "NO",
            "displayName": f"{customer.name} ({customer.number})",
            "isPrivateIndividual": customer.is_private_individual,
            "singleCustomerInvoice": False,
            "invoiceSendMethod": customer.invoice_send_method,
            "emailAttachmentType": "LINK",
            "postalAddress": self.render_address(customer, base),
            "physicalAddress": None,
            "deliveryAddress": None,
            "category1": None,
            "category2": None,
            "category3": None,
            "invoicesDueIn": INVOICE_DUE_DAYS,
            "invoicesDueInType": "DAYS",
            "currency": _currency(base),
            "bankAccountPresentation": [],
            "ledgerAccount": self._account(customer.company_id, RECEIVABLE_ACCOUNT, base),
            "isFactoring": False,
            "invoiceSendSMSNotification": False,
            "isAutomaticSoftReminderEnabled": False,
            "isAutomaticReminderEnabled": False,
            "isAutomaticNoticeOfDebtCollectionEnabled": False,
            "discountPercentage": Decimal("0"),
            "website": "",
        }

    def render_product(self, product: StoredProduct, base: str) -> dict[str, Any]:
        vat = self.store.vat_types[product.vat_type_id]
        rate = Decimal(vat.percentage)
        excl = None if product.price_excl is None else Decimal(product.price_excl)
        incl = None if product.price_incl is None else Decimal(product.price_incl)
        if excl is None and incl is not None:
            excl = (incl * 100 / (100 + rate)).quantize(_TWO_PLACES, ROUND_HALF_UP)
        if incl is None and excl is not None:
            incl = (excl * (100 + rate) / 100).quantize(_TWO_PLACES, ROUND_HALF_UP)
        excl, incl = excl if excl is not None else Decimal("0"), incl if incl is not None else Decimal("0")
        account = self.store.books(product.company_id).accounts.get(product.account_id or 0)
        zero = Decimal("0")
        return {
            "id": product.id,
            "version": product.version,
            "url": f"{base}/product/{product.id}",
            "name": product.name,
            "number": product.number,
            "displayNumber": product.number,
            "description": product.description,
            "orderLineDescription": product.order_line_description,
            "ean": product.ean,
            "elNumber": "",
            "nrfNumber": "",
            "costExcludingVatCurrency": zero,
            "expenses": zero,
            "expensesInPercent": zero,
            "costPrice": zero,
            "profit": excl,
            "profitInPercent": zero,
            "priceExcludingVatCurrency": excl,
            "priceIncludingVatCurrency": incl,
            "isInactive": product.is_inactive,
            "discountGroup": None,
            "productUnit": None,
            "isStockItem": False,
            "vatType": self.store.render_vat(vat, base),
            "currency": _currency(base),
            "department": None,
            "account": self.store.render_account(account, base) if account is not None else None,
            "discountPrice": excl,
            "supplier": None,
            "resaleProduct": None,
            "isDeletable": False,
            "hasSupplierProductConnected": False,
            "weight": zero,
            "weightUnit": "kg",
            "volume": zero,
            "volumeUnit": "cm3",
            "hsnCode": "",
            "image": None,
            "markupListPercentage": zero,
            "markupNetPercentage": zero,
            "displayName": f"{product.number} {product.name}".strip(),
            "mainSupplierProduct": None,
            "isRoundPriceIncVat": False,
            "priceInTargetCurrency": excl,
            "purchasePriceCurrency": zero,
            "minStockLevel": zero,
        }

    def render_line(self, order: StoredOrder, line: StoredOrderLine, index: int, base: str) -> dict[str, Any]:
        vat = self.store.vat_types[line.vat_type_id]
        rate = Decimal(vat.percentage)
        excl = None if line.unit_price_excl is None else Decimal(line.unit_price_excl)
        incl = None if line.unit_price_incl is None else Decimal(line.unit_price_incl)
        if excl is None and incl is not None:
            excl = (incl * 100 / (100 + rate)).quantize(_TWO_PLACES, ROUND_HALF_UP)
        if incl is None and excl is not None:
            incl = (excl * (100 + rate) / 100).quantize(_TWO_PLACES, ROUND_HALF_UP)
        return {
            "id": line.id,
            "version": order.version,
            "url": f"{base}/order/orderline/{line.id}",
            "product": (
                self.render_product(self.products[line.product_id], base) if line.product_id in self.products else None
            ),
            "inventory": None,
            "description": line.description,
            "displayName": line.description,
            "count": Decimal(line.count),
            "unitCostCurrency": Decimal("0"),
            "unitPriceExcludingVatCurrency": excl,
            "currency": _currency(base),
            "markup": Decimal("0"),
            "discount": Decimal(line.discount),
            "vatType": self.store.render_vat(vat, base),
            "amountExcludingVatCurrency": from_ore(line.net),
            "amountIncludingVatCurrency": from_ore(line.gross),
            "order": {"id": order.id, "url": f"{base}/order/{order.id}"},
            "unitPriceIncludingVatCurrency": incl,
            "isSubscription": False,
            "sortIndex": index,
            "isCharged": order.is_closed,
        }

    def render_order(self, order: StoredOrder, base: str) -> dict[str, Any]:
        customer = self.customers[order.customer_id]
        invoice = self.invoices.get(order.invoice_id) if order.invoice_id else None
        return {
            "id": order.id,
            "version": order.version,
            "url": f"{base}/order/{order.id}",
            "customer": self.render_customer(customer, base),
            "contact": None,
            "attn": None,
            "displayName": f"{order.number} {customer.name}".strip(),
            "receiverEmail": order.receiver_email,
            "overdueNoticeEmail": "",
            "number": order.number,
            "reference": order.reference,
            "ourContact": None,
            "ourContactEmployee": None,
            "department": None,
            "orderDate": order.order_date,
            "project": None,
            "invoiceComment": order.invoice_comment,
            "currency": _currency(base),
            "invoicesDueIn": INVOICE_DUE_DAYS,
            "invoicesDueInType": "DAYS",
            "isShowOpenPostsOnInvoices": False,
            "isClosed": order.is_closed,
            "deliveryDate": order.delivery_date,
            "deliveryAddress": None,
            "deliveryComment": order.delivery_comment,
            "isPrioritizeAmountsIncludingVat": order.including_vat,
            "orderLineSorting": "ID",
            "orderGroups": [],
            "orderLines": [self.render_line(order, line, i, base) for i, line in enumerate(order.lines)],
            "isSubscription": False,
            "preliminaryInvoice": (
                {"id": invoice.id, "url": f"{base}/invoice/{invoice.id}"} if invoice is not None else None
            ),
            "attachment": [],
            "sendMethodDescription": customer.invoice_send_method,
            "canCreateBackorder": False,
            "invoiceOnAccountVatHigh": True,
            "totalInvoicedOnAccountAmountAbsoluteCurrency": Decimal("0.00"),
            "invoiceSendSMSNotification": False,
            "markUpOrderLines": Decimal("0"),
            "discountPercentage": Decimal("0"),
            "customerName": customer.name,
        }

    def render_invoice(self, invoice: StoredInvoice, base: str) -> dict[str, Any]:
        order = self.orders[invoice.order_id]
        voucher = self.store.vouchers.get(invoice.voucher_id)
        postings: list[dict[str, Any]] = []
        for voucher_id in (invoice.voucher_id, *invoice.payment_voucher_ids):
            booked = self.store.vouchers.get(voucher_id)
            if booked is None:
                continue
            receivable: list[StoredPosting] = [
                p
                for p in booked.postings
                if p.row > 0
                and self.store.books(invoice.company_id).accounts[p.account_id].number == RECEIVABLE_ACCOUNT
            ]
            postings += [self.store.render_posting(booked, p, base) for p in receivable]
        outstanding = from_ore(invoice.amount - invoice.paid - invoice.settled)
        amount, excl = from_ore(invoice.amount), from_ore(invoice.amount_excl)
        lines = [self.render_line(order, line, i, base) for i, line in enumerate(order.lines)]
        if invoice.credit_note_of is not None:  # the invoice's lines with the count negated (INFERRED)
            for line in lines:
                for key in ("count", "amountExcludingVatCurrency", "amountIncludingVatCurrency"):
                    line[key] = -line[key]
        return {
            "id": invoice.id,
            "version": invoice.version,
            "url": f"{base}/invoice/{invoice.id}",
            "invoiceNumber": invoice.number,
            "invoiceDate": invoice.date,
            "customer": self.render_customer(self.customers[invoice.customer_id], base),
            "creditedInvoice": invoice.credit_note_of,
            "isCredited": invoice.credited_by is not None,
            "invoiceDueDate": invoice.due_date,
            "kid": invoice.kid,
            "invoiceComment": order.invoice_comment,
            "comment": invoice.comment,
            "orders": [self.render_order(order, base)],
            "orderLines": lines,
            "travelReports": [],
            "projectInvoiceDetails": [],
            "voucher": (
                self.store.render_voucher(voucher, base)
                if voucher is not None
                else {"id": invoice.voucher_id, "url": f"{base}/ledger/voucher/{invoice.voucher_id}"}
            ),
            "deliveryDate": order.delivery_date,
            "amount": amount,
            "amountCurrency": amount,
            "amountExcludingVat": excl,
            "amountExcludingVatCurrency": excl,
            "amountRoundoff": Decimal("0.00"),
            "amountRoundoffCurrency": Decimal("0.00"),
            "amountOutstanding": outstanding,
            "amountCurrencyOutstanding": outstanding,
            "amountOutstandingTotal": outstanding,
            "amountCurrencyOutstandingTotal": outstanding,
            "sumRemits": Decimal("0.00"),
            "currency": _currency(base),
            "isCreditNote": invoice.credit_note_of is not None,
            "isCharged": True,
            "isApproved": True,
            "postings": postings,
            "reminders": [],
            "invoiceRemarks": "",
            "invoiceRemark": None,
            "paymentTypeId": invoice.payment_type_id,
            "paidAmount": from_ore(invoice.prepaid),
            "isPeriodizationPossible": False,
            "documentId": None,
            "ehfSendStatus": "DO_NOT_SEND",
        }

    def render_payment_type(self, payment_type: PaymentType, base: str) -> dict[str, Any]:
        return {
            "id": payment_type.id,
            "version": 0,
            "url": f"{base}/invoice/paymentType/{payment_type.id}",
            "description": payment_type.description,
            "displayName": payment_type.description,
            "debitAccount": self._account(payment_type.company_id, payment_type.debit_account, base),
            "creditAccount": self._account(payment_type.company_id, RECEIVABLE_ACCOUNT, base),
            "vatType": None,
            "sequence": payment_type.sequence,
            "customer": None,
            "supplier": None,
            "currencyId": 1,
            "currencyCode": "NOK",
        }


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------


def _default(value: dict[str, Any], status: int = 200) -> TxJSONResponse:
    """The default rendering, whatever `fields` says (operations without `fields` in the spec)."""
    return TxJSONResponse({"value": apply_fields(value, DEFAULT_FIELDS)}, status_code=status)


def _decimal_param(request: Request, name: str, *, required: bool = False) -> Decimal | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if required:
            raise validation_failed([_vm(name, "Kan ikke være null.", name)])
        return None
    value = _to_decimal(raw)
    if value is None:
        raise validation_failed([_vm(name, "Ugyldig tall.", name)])
    return value


def _repeated_param(request: Request, name: str) -> list[str] | None:
    """A list given repeated (`?productNumber=a&productNumber=b`, an array in the spec) or
    comma-separated; None when absent or empty."""
    values = [part.strip() for raw in request.query_params.getlist(name) for part in raw.split(",")]
    return [v for v in values if v] or None


def _contains(needle: str | None, *haystack: str) -> bool:
    return not needle or any(needle.lower() in h.lower() for h in haystack)


def add_invoicing_routes(router: APIRouter, store: TripletexStore, auth: Any) -> None:
    """Register the webshop endpoints on the `/v2` router (`auth` is the session dependency)."""

    def state() -> Invoicing:
        return store.invoicing  # replaced on reset, so looked up per call

    # ---- customers ---------------------------------------------------------------------------

    @router.get("/customer")
    async def customers(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "id")
        numbers = _list_param(request, "customerAccountNumber")
        q = request.query_params
        inactive = _bool_param(request, "isInactive", False)
        values = [
            c
            for c in state().customers_of(login.company.id)
            if (ids is None or str(c.id) in ids)
            and (numbers is None or str(c.number) in numbers)
            and (not q.get("organizationNumber") or c.organization_number == q["organizationNumber"])
            and (not q.get("email") or c.email.lower() == q["email"].lower())
            and (not q.get("invoiceEmail") or c.invoice_email.lower() == q["invoiceEmail"].lower())
            and _contains(q.get("customerName"), c.name)
            and c.is_inactive == inactive
        ]
        base = _base(request)
        return _listing(request, values, render=lambda c: state().render_customer(c, base))

    @router.get("/customer/{customer_id}")
    async def customer(request: Request, customer_id: int, login: Login = auth) -> Response:
        found = state().customer(customer_id, login.company.id)
        return _single(request, state().render_customer(found, _base(request)))

    @router.post("/customer", status_code=201)
    async def create_customer(request: Request, login: Login = auth) -> Response:
        created = state().create_customer(await _json_body(request), login.company.id)
        return _default(state().render_customer(created, _base(request)), 201)

    # ---- products ----------------------------------------------------------------------------

    @router.get("/product")
    async def products(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "ids")
        numbers = _repeated_param(request, "productNumber")
        old_numbers = _list_param(request, "number")  # deprecated in the spec, the same filter
        q = request.query_params
        inactive = _bool_param(request, "isInactive")  # no default in the spec: both when left out
        values = [
            p
            for p in state().products_of(login.company.id)
            if (ids is None or str(p.id) in ids)
            and (numbers is None or p.number in numbers)
            and (old_numbers is None or p.number in old_numbers)
            and _contains(q.get("name"), p.name)
            and (inactive is None or p.is_inactive == inactive)
            and (not q.get("vatTypeId") or str(p.vat_type_id) == q["vatTypeId"].strip())
            and (not q.get("accountId") or str(p.account_id) == q["accountId"].strip())
        ]
        base = _base(request)
        return _listing(request, values, render=lambda p: state().render_product(p, base))

    @router.get("/product/{product_id}")
    async def product(request: Request, product_id: int, login: Login = auth) -> Response:
        found = state().product(product_id, login.company.id)
        return _single(request, state().render_product(found, _base(request)))

    @router.post("/product", status_code=201)
    async def create_product(request: Request, login: Login = auth) -> Response:
        created = state().create_product(await _json_body(request), login.company.id)
        return _default(state().render_product(created, _base(request)), 201)

    # ---- orders ------------------------------------------------------------------------------

    @router.get("/order")
    async def orders(request: Request, login: Login = auth) -> Response:
        date_from = _date_param(request, "orderDateFrom", required=True)
        date_to = _date_param(request, "orderDateTo", required=True)
        assert date_from is not None and date_to is not None
        ids = _list_param(request, "id")
        customer_ids = _list_param(request, "customerId")
        number = request.query_params.get("number")
        closed = _bool_param(request, "isClosed")
        subscription = _bool_param(request, "isSubscription")
        values = [
            o
            for o in state().orders_of(login.company.id)
            if date_from.isoformat() <= o.order_date < date_to.isoformat()
            and (ids is None or str(o.id) in ids)
            and (customer_ids is None or str(o.customer_id) in customer_ids)
            and (not number or o.number == number)
            and _contains(request.query_params.get("deliveryComment"), o.delivery_comment)
            and (closed is None or o.is_closed == closed)
            and not subscription
        ]
        base = _base(request)
        return _listing(request, values, render=lambda o: state().render_order(o, base))

    @router.post("/order", status_code=201)
    async def create_order(request: Request, login: Login = auth) -> Response:
        created = state().create_order(await _json_body(request), login.company.id)
        return _default(state().render_order(created, _base(request)), 201)

    @router.get("/order/{order_id}")
    async def order(request: Request, order_id: int, login: Login = auth) -> Response:
        found = state().order(order_id, login.company.id)
        return _single(request, state().render_order(found, _base(request)))

    @router.put("/order/{order_id}/:invoice")
    async def invoice_order(request: Request, order_id: int, login: Login = auth) -> Response:
        state().order(order_id, login.company.id)  # 404 before the query's checks
        invoice_date = _date_param(request, "invoiceDate", required=True)
        assert invoice_date is not None
        send_type = request.query_params.get("sendType") or None
        if send_type is not None and send_type not in SEND_TYPES:
            raise validation_failed([_vm("sendType", "Ugyldig verdi.", "sendType")])
        invoice = state().invoice_order(
            order_id,
            login.company.id,
            invoice_date=invoice_date,
            send_to_customer=bool(_bool_param(request, "sendToCustomer", True)),
            send_type=send_type,
            payment_type_id=_int_param(request, "paymentTypeId"),
            paid_amount=_decimal_param(request, "paidAmount"),
            rest_payment_type_id=_int_param(request, "paymentTypeIdRestAmount"),
            override_email=request.query_params.get("overrideEmailAddress") or None,
        )
        return _default(state().render_invoice(invoice, _base(request)))

    # ---- invoices ----------------------------------------------------------------------------

    @router.post("/invoice", status_code=201)
    async def create_invoice(request: Request, login: Login = auth) -> Response:
        """An invoice for an order that exists (the sandbox does not take orders embedded as new
        objects, which the spec also allows); `invoiceNumber` 0 or absent = generated."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise validation_failed([_vm(None, "Ugyldig JSON.")])  # type: ignore[arg-type]
        orders = body.get("orders") or []
        order_ids = [o.get("id") for o in orders if isinstance(o, dict)]
        if len(orders) != 1 or not isinstance(order_ids[0], int):
            message = "Nøyaktig én eksisterende ordre (id) må oppgis."  # sandbox limitation and wording
            raise validation_failed([_vm("orders", message, "orders")])
        invoice_date = _parse_date(body.get("invoiceDate"))
        if invoice_date is None:
            raise validation_failed([_vm("invoiceDate", "Kan ikke være null.", "invoiceDate")])
        number = body.get("invoiceNumber") or 0
        if not isinstance(number, int) or number < 0:
            raise validation_failed([_vm("invoiceNumber", "Ugyldig verdi.", "invoiceNumber")])
        state().order(order_ids[0], login.company.id)  # 404 for an order of another company
        invoice = state().invoice_order(
            order_ids[0],
            login.company.id,
            invoice_date=invoice_date,
            send_to_customer=bool(_bool_param(request, "sendToCustomer", True)),
            send_type=None,
            payment_type_id=_int_param(request, "paymentTypeId"),
            paid_amount=_decimal_param(request, "paidAmount"),
            rest_payment_type_id=None,
            override_email=None,
            invoice_number=number,
        )
        return _default(state().render_invoice(invoice, _base(request)), 201)

    @router.get("/invoice/paymentType")
    async def payment_types(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "id")
        description = request.query_params.get("description")
        query = request.query_params.get("query")
        values = [
            p
            for p in state().payment_types_of(login.company.id)
            if (ids is None or str(p.id) in ids)
            and _contains(description, p.description)
            and _contains(query, p.description)
        ]
        base = _base(request)
        return _listing(request, values, render=lambda p: state().render_payment_type(p, base))

    @router.get("/invoice/paymentType/{payment_type_id}")
    async def payment_type(request: Request, payment_type_id: int, login: Login = auth) -> Response:
        found = state().payment_type(payment_type_id, login.company.id)
        return _single(request, state().render_payment_type(found, _base(request)))

    @router.get("/invoice")
    async def invoices(request: Request, login: Login = auth) -> Response:
        date_from = _date_param(request, "invoiceDateFrom", required=True)
        date_to = _date_param(request, "invoiceDateTo", required=True)
        assert date_from is not None and date_to is not None
        ids = _list_param(request, "id")
        voucher_ids = _list_param(request, "voucherId")
        customer_ids = _list_param(request, "customerId")
        number = request.query_params.get("invoiceNumber")
        kid = request.query_params.get("kid")
        values = [
            i
            for i in state().invoices_of(login.company.id)
            if date_from.isoformat() <= i.date < date_to.isoformat()
            and (ids is None or str(i.id) in ids)
            and (voucher_ids is None or str(i.voucher_id) in voucher_ids)
            and (customer_ids is None or str(i.customer_id) in customer_ids)
            and (not number or str(i.number) == number.strip())
            and (not kid or i.kid == kid.strip())
        ]
        base = _base(request)
        return _listing(request, values, render=lambda i: state().render_invoice(i, base))

    @router.get("/invoice/{invoice_id}")
    async def invoice(request: Request, invoice_id: int, login: Login = auth) -> Response:
        found = state().invoice(invoice_id, login.company.id)
        return _single(request, state().render_invoice(found, _base(request)))

    @router.put("/invoice/{invoice_id}/:payment")
    async def payment(request: Request, invoice_id: int, login: Login = auth) -> Response:
        state().invoice(invoice_id, login.company.id)
        date = _date_param(request, "paymentDate", required=True)
        payment_type_id = _int_param(request, "paymentTypeId")
        if payment_type_id is None:
            raise validation_failed([_vm("paymentTypeId", "Kan ikke være null.", "paymentTypeId")])
        paid = _decimal_param(request, "paidAmount", required=True)
        assert date is not None and paid is not None
        updated = state().register_payment(
            invoice_id, login.company.id, date=date, payment_type_id=payment_type_id, paid_amount=paid
        )
        return _default(state().render_invoice(updated, _base(request)))

    @router.put("/invoice/{invoice_id}/:createCreditNote")
    async def credit_note(request: Request, invoice_id: int, login: Login = auth) -> Response:
        state().invoice(invoice_id, login.company.id)  # 404 before the query's checks
        date = _date_param(request, "date", required=True)
        assert date is not None
        send_type = request.query_params.get("sendType") or None
        if send_type is not None and send_type not in CREDIT_NOTE_SEND_TYPES:
            raise validation_failed([_vm("sendType", "Ugyldig verdi.", "sendType")])
        credit = state().credit_invoice(
            invoice_id,
            login.company.id,
            date=date,
            comment=request.query_params.get("comment") or "",
            send_to_customer=bool(_bool_param(request, "sendToCustomer", True)),
            send_type=send_type,
            credit_note_email=(request.query_params.get("creditNoteEmail") or "").strip() or None,
        )
        return _default(state().render_invoice(credit, _base(request)))


def add_invoicing_admin_routes(router: APIRouter, store: TripletexStore) -> None:
    """`GET /_sandbox/invoicing` (what a company has) and `POST /_sandbox/invoicing` (its settings)."""

    def company_of(request: Request, body: dict[str, Any] | None = None) -> int | Response:
        raw = (body or {}).get("company_id", request.query_params.get("company_id"))
        if raw is None or raw == "":
            return store.default_company_id
        company_id = int(raw) if str(raw).isdigit() else -1
        if company_id not in store.companies:
            return JSONResponse({"error": f"no company {raw}"}, status_code=404)
        return company_id

    def settings_json(company_id: int) -> dict[str, Any]:
        return {"company_id": company_id, **asdict(store.invoicing.settings[company_id])}

    @router.get("/invoicing")
    async def invoicing(request: Request) -> Response:
        company_id = company_of(request)
        if isinstance(company_id, Response):
            return company_id
        state: Invoicing = store.invoicing
        base = f"{request.headers.get('host', 'localhost')}/v2"
        with_lines = parse_fields("*,orderLines(*),postalAddress(*)")
        return TxJSONResponse(
            {
                "company_id": company_id,
                "settings": settings_json(company_id),
                "customers": [
                    apply_fields(state.render_customer(c, base), with_lines) for c in state.customers_of(company_id)
                ],
                "orders": [apply_fields(state.render_order(o, base), with_lines) for o in state.orders_of(company_id)],
                "invoices": [
                    apply_fields(state.render_invoice(i, base), with_lines) for i in state.invoices_of(company_id)
                ],
                "payment_types": [
                    {"id": p.id, "description": p.description, "debit_account": p.debit_account}
                    for p in state.payment_types_of(company_id)
                ],
                "products": [
                    {
                        "id": p.id,
                        "number": p.number,
                        "name": p.name,
                        "account": store.books(company_id).accounts[p.account_id].number if p.account_id else None,
                        "vat_type": store.vat_types[p.vat_type_id].number,
                        "is_inactive": p.is_inactive,
                    }
                    for p in state.products_of(company_id)
                ],
                "emails": state.emails_of(company_id),
            }
        )

    @router.post("/invoicing")
    async def configure(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError as exc:
            return JSONResponse({"error": f"not JSON: {exc}"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        company_id = company_of(request, body)
        if isinstance(company_id, Response):
            return company_id
        try:
            store.invoicing.configure(company_id, body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(settings_json(company_id))
