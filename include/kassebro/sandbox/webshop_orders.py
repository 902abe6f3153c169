"""Demo web orders for the webshop sandboxes: one system-neutral model, rendered by each emulator in
its own shape (`woocommerce.py`, `mystore.py`).

`generate_orders(seed, first_day, days, per_day, customers=40)` is deterministic: the same arguments
give the same orders (every draw comes from `random.Random` seeded with a string, which does not
depend on PYTHONHASHSEED). What the orders hold, and how often:

- Customers (`customer_pool`): Norwegian names, street addresses and real postcode/city pairs, phone
  numbers +47 4../9..; about 1 in 8 is a company (an AS with a 9-digit organisation number whose
  mod-11 check digit is valid, an invoice e-mail). About 7 in 10 have an account with the shop,
  the others check out as guests (same e-mail every time, no customer id). The customer of an
  order is drawn with weights 1/(i+1)^0.7, so a few customers come back for several orders.
- Lines: 1-4 products of a small catalogue at mixed VAT rates, one order can hold all three:
  25 % goods, 15 % food (næringsmidler), 0 % books (fritatt, zero-rated). Companies buy 2-12 of
  each; half the companies have a 10 % agreement discount on every line, private customers get a
  20 % campaign discount on about 1 line in 12 (`Line.discount_percent`).
- Shipping: "Posten Servicepakke" 99.00 (companies "Posten Bedriftspakke" 149.00), free shipping
  ("Gratis frakt" 0.00) for private orders of goods for 1,500.00 or more, none for about 1 order in
  12 (picked up in the shop). Shipping is at 25 %.
- Fee: "Fakturagebyr" 39.00 at 25 % on every "invoice" (Faktura) order. 25 % was CHOSEN: an
  invoice fee the seller charges together with the goods is part of the consideration for the
  goods, so it carries VAT (not 0 %).
- Coupon on about 1 private order in 7: "velkommen10" (10 % off every line) or "sommer100"
  (100.00 off, only on goods for 500.00 or more), shared over the lines in proportion to their
  amounts, each share rounded half up and the last øre put on the largest line (`Line.coupon`).
- Payment methods (`PAYMENT_METHODS`): "card", "vipps", "klarna", "giftcard" (paid at checkout,
  captured), "invoice" (Faktura, the customer pays later) for private customers; "b2b" (invoice to
  a company, paid by bank transfer) for 3 in 4 company orders, card for the rest. About 1 captured
  order in 20 has a capture difference (`capture_delta`, a few øre up to 4.90 either way): what
  was captured is the total plus the delta; the others were captured at exactly the total.
- History (`WebOrder.history`, neutral statuses `STATUSES`): "new" when placed (07:00-23:30 Oslo
  time), "processing" 1-4 minutes later once paid (or, for an invoice, accepted; b2b: 20 min-4 h later,
  approved by hand),
  "completed" (shipped) 4-72 hours after that. About 1 in 16 is "cancelled" instead (half before
  payment, half after); of the completed, about 1 in 25 is fully refunded 2-10 days later (status
  "refunded") and 1 in 20 partly (one line returned, the status stays "completed").
  `now` cuts the story: an order placed after `now` is not generated, a later event not applied,
  so the last days hold orders still "processing".

Amounts are whole øre (int). Prices are in the shop's own convention (`prices_include_vat`, True
by default): with VAT included, every price, line amount, shipping, fee and coupon amount is gross;
for a shop that keeps prices excluding VAT the very same figures are net (a B2B shop's round net
prices). How each shop then splits VAT and adds up its totals is that shop's convention, stated in
its module; both use `split`: VAT per line (or shipping, fee, discount), rounded to the øre half
up, out of a gross amount (x rate / (100 + rate)) or on top of a net one (x rate / 100).
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from zoneinfo import ZoneInfo

from kassebro.sandbox.amounts import Ore, from_ore, percent, round_half_up, vat_in_gross, vat_on_net

OSLO = ZoneInfo("Europe/Oslo")
UTC = dt.UTC
VAT_RATES = (25, 15, 0)
PAYMENT_METHODS = ("card", "vipps", "klarna", "giftcard", "invoice", "b2b")
CAPTURED_METHODS = frozenset({"card", "vipps", "klarna", "giftcard"})  # taken at checkout
STATUSES = ("new", "processing", "completed", "cancelled", "refunded")


# --------------------------------------------------------------------------------------------
# Arithmetic every rendering shares
# --------------------------------------------------------------------------------------------


def money(ore: Ore) -> str:
    """Øre -> kroner with two decimals as a string: 12345 -> "123.45", -5 -> "-0.05"."""
    return format(from_ore(ore), "f")


def split(amount: Ore, rate: int, prices_include_vat: bool) -> tuple[Ore, Ore]:
    """(net, VAT) of an amount in the shop's convention; the VAT rounded to the øre, half up (half
    an øre away from zero, so a negative amount splits as its positive would)."""
    if prices_include_vat:
        vat = round_half_up(vat_in_gross(amount, percent(rate)))
        return amount - vat, vat
    return amount, round_half_up(vat_on_net(amount, percent(rate)))


def gross(amount: Ore, rate: int, prices_include_vat: bool) -> Ore:
    """An amount in the shop's convention, VAT included."""
    net, vat = split(amount, rate, prices_include_vat)
    return net + vat


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    product_id: int
    sku: str
    name: str
    price: Ore  # the list price, in the shop's convention
    vat_rate: int  # percent


_CATALOG = (
    ("KJK-020", "Kokkekniv 20 cm", 79900, 25),
    ("TXT-114", "Ullpledd Fjell", 89900, 25),
    ("KRS-330", "Kaffekopp i steintøy", 14900, 25),
    ("LYS-006", "Stearinlys 6-pk", 8990, 25),
    ("SKI-105", "Festevoks blå", 18900, 25),
    ("SEK-030", "Tursekk 30 l", 129900, 25),
    ("KAF-500", "Kaffe hele bønner 500 g", 14990, 15),
    ("SJO-200", "Mørk sjokolade 200 g", 5990, 15),
    ("HON-350", "Lynghonning 350 g", 11900, 15),
    ("TE-100", "Earl Grey te 100 g", 7900, 15),
    ("OST-500", "Gudbrandsdalsost 500 g", 10990, 15),
    ("BOK-1001", "Nordisk hverdagsmat (kokebok)", 39900, 0),
    ("BOK-1002", "Turguide Jotunheimen", 32900, 0),
    ("BOK-1003", "Strikk fra hele landet", 44900, 0),
)
CATALOG = tuple(Product(101 + i, sku, name, price, rate) for i, (sku, name, price, rate) in enumerate(_CATALOG))


@dataclass(frozen=True)
class Address:
    address1: str
    address2: str
    postcode: str
    city: str
    country: str = "NO"


@dataclass(frozen=True)
class Customer:
    """`id` is the shop's customer number; a guest (`account` False) has one in the pool only so
    the sandboxes can tell them apart, the shops show none."""

    id: int
    account: bool
    kind: str  # "private" | "company"
    first_name: str
    last_name: str
    email: str
    phone: str
    address: Address
    registered: dt.datetime  # UTC
    company: str = ""
    org_number: str = ""
    invoice_email: str = ""


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: int
    discount_percent: int = 0  # the line's own discount (agreement, campaign)
    coupon: Ore = 0  # the line's share of the order's coupon, in the shop's convention

    @property
    def amount(self) -> Ore:
        """quantity x price less the line's discount, rounded half up: before any coupon."""
        return round_half_up(Fraction(self.quantity * self.product.price * (100 - self.discount_percent), 100))


@dataclass(frozen=True)
class Charge:
    """Shipping or a fee: `code` is the method ("flat_rate", "free_shipping", "invoice_fee")."""

    code: str
    name: str
    price: Ore  # in the shop's convention
    vat_rate: int = 25


@dataclass(frozen=True)
class Coupon:
    code: str
    kind: str  # "percent" | "fixed"
    value: int  # percent, or øre in the shop's convention


@dataclass(frozen=True)
class Refund:
    """`amount` VAT included; None = the whole order (its total, as the shop renders it). A
    partial refund returns `line` (index into the order's lines) at what the customer paid for it."""

    at: dt.datetime  # UTC
    reason: str
    amount: Ore | None = None
    line: int | None = None


@dataclass(frozen=True)
class WebOrder:
    id: int
    customer: Customer
    created: dt.datetime  # UTC
    history: tuple[tuple[str, dt.datetime], ...]  # (neutral status, UTC), the first one "new"
    prices_include_vat: bool
    lines: tuple[Line, ...]
    shipping: Charge | None
    fees: tuple[Charge, ...]
    coupon: Coupon | None
    payment_method: str
    transaction_id: str
    capture_delta: Ore = 0
    refunds: tuple[Refund, ...] = ()
    customer_note: str = ""
    ship_to: Address | None = None  # None = the customer's own address

    @property
    def guest(self) -> bool:
        return not self.customer.account

    @property
    def status(self) -> str:
        return self.history[-1][0]

    @property
    def modified(self) -> dt.datetime:
        return max([t for _, t in self.history] + [r.at for r in self.refunds])

    @property
    def captured(self) -> bool:
        """Whether money was taken at checkout (and not released by a cancellation)."""
        reached = {status for status, _ in self.history}
        return self.payment_method in CAPTURED_METHODS and "processing" in reached and self.status != "cancelled"

    @property
    def shipping_address(self) -> Address:
        return self.ship_to or self.customer.address


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Kari", "Ola", "Ingrid", "Lars", "Sigrid", "Håkon", "Marte", "Jonas", "Ragnhild", "Eirik", "Nora",
    "Magnus", "Solveig", "Anders", "Åse", "Bjørn", "Tone", "Øystein", "Hanne", "Sander", "Liv", "Henrik",
)  # fmt: skip
LAST_NAMES = (
    "Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
    "Jensen", "Karlsen", "Berg", "Haugen", "Hagen", "Bakken", "Solberg", "Strand", "Lie", "Dahl", "Sæther",
)  # fmt: skip
STREETS = (
    "Storgata", "Kirkegata", "Bakkeveien", "Skolegata", "Fjordveien", "Granveien", "Solbakken", "Parkveien",
    "Elvegata", "Furulia", "Kongens gate", "Strandveien", "Markveien", "Løkkeveien",
)  # fmt: skip
PLACES = (
    ("0150", "Oslo"), ("0468", "Oslo"), ("0661", "Oslo"), ("5003", "Bergen"), ("5145", "Fyllingsdalen"),
    ("7011", "Trondheim"), ("4006", "Stavanger"), ("9008", "Tromsø"), ("3015", "Drammen"),
    ("4612", "Kristiansand"), ("1532", "Moss"), ("2317", "Hamar"), ("6002", "Ålesund"), ("8006", "Bodø"),
    ("3111", "Tønsberg"), ("1606", "Fredrikstad"), ("2815", "Gjøvik"), ("1338", "Sandvika"),
)  # fmt: skip
COMPANY_WORDS = ("Fjord", "Nordlys", "Tind", "Havbris", "Bjørke", "Solsiden", "Furu", "Vestkyst", "Granli", "Elve")
COMPANY_TRADES = ("Interiør AS", "Kafé AS", "Regnskap AS", "Bygg AS", "Hytteutleie AS", "Catering AS", "Blomster AS")


def org_number(rng: random.Random) -> str:
    """A 9-digit organisation number (first digit 8 or 9) with a valid mod-11 check digit."""
    while True:
        digits = [rng.choice((8, 9))] + [rng.randint(0, 9) for _ in range(7)]
        remainder = sum(d * w for d, w in zip(digits, (3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
        check = 0 if remainder == 0 else 11 - remainder
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _ascii(text: str) -> str:
    text = text.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a").replace(" ", "")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _address(rng: random.Random) -> Address:
    postcode, city = rng.choice(PLACES)
    extra = rng.choice(("", "", "", f"H0{rng.randint(1, 4)}0{rng.randint(1, 4)}", "Inngang B"))
    return Address(f"{rng.choice(STREETS)} {rng.randint(1, 120)}", extra, postcode, city)


def customer_pool(seed: int, size: int = 40, *, before: dt.date | None = None) -> list[Customer]:
    """`size` customers, ids 1..size; registered 1-700 days before `before` (default 2026-01-01)."""
    rng = random.Random(f"webshop-customers:{seed}")
    start = dt.datetime.combine(before or dt.date(2026, 1, 1), dt.time(12), OSLO).astimezone(UTC)
    pool = []
    for number in range(1, size + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = rng.random() < 0.12
        phone = f"+47 {rng.choice('49')}{rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(100, 999)}"
        common = {
            "id": number,
            "account": company or rng.random() < 0.65,
            "first_name": first,
            "last_name": last,
            "phone": phone,
            "address": _address(rng),
            "registered": start - dt.timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86399)),
        }
        if company:
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_TRADES)}"
            domain = _ascii(name.removesuffix(" AS")) + ".example.no"
            pool.append(
                Customer(
                    **common,
                    kind="company",
                    email=f"{_ascii(first)}@{domain}",
                    company=name,
                    org_number=org_number(rng),
                    invoice_email=f"faktura@{domain}",
                )
            )
        else:
            email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99)}@example.no"
            pool.append(Customer(**common, kind="private", email=email))
    return pool


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------

NOTES = ("Kan leveres i postkassen.", "Ring før levering.", "Gave: ikke legg ved kvittering.", "Hentes etter kl 16.")
REFUND_REASONS = ("Kunden angret kjøpet", "Skadet vare", "Feil vare levert")
LINE_REFUND_REASONS = ("Retur av vare", "Skadet vare ved levering")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _share_coupon(lines: list[Line], coupon: Coupon | None) -> list[Line]:
    if coupon is None:
        return lines
    amounts = [line.amount for line in lines]
    if coupon.kind == "percent":
        shares = [round_half_up(Fraction(a * coupon.value, 100)) for a in amounts]
    else:
        total = sum(amounts)
        shares = [round_half_up(Fraction(a * coupon.value, total)) for a in amounts]
        largest = amounts.index(max(amounts))
        shares[largest] += coupon.value - sum(shares)
    return [replace(line, coupon=share) for line, share in zip(lines, shares, strict=True)]


def _transaction_id(rng: random.Random, method: str, order_id: int) -> str:
    if method == "card":
        return "pi_3" + "".join(rng.choice(_ALNUM) for _ in range(23))
    if method == "vipps":
        return f"fjord-{order_id}-{rng.randint(1000, 9999)}"
    if method == "klarna":
        hexes = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        return f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
    if method == "giftcard":
        return "GK-" + "".join(rng.choice(_ALNUM[:26]) for _ in range(4)) + f"-{rng.randint(1000, 9999)}"
    return ""  # invoice, b2b: nothing taken at checkout


def _one_order(
    rng: random.Random,
    order_id: int,
    created: dt.datetime,
    pool: Sequence[Customer],
    weights: Sequence[float],
    prices_include_vat: bool,
) -> WebOrder:
    """Every draw for one order, in a fixed sequence (so `now` never changes what later orders get)."""
    customer = rng.choices(pool, weights)[0]
    company = customer.kind == "company"
    count = rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0]
    lines = []
    for product in rng.sample(CATALOG, count):
        quantity = rng.randint(2, 12) if company else rng.choices((1, 2, 3, 4, 6), (70, 18, 6, 3, 3))[0]
        campaign = rng.random() < 0.08
        discount = (10 if customer.id % 2 == 0 else 0) if company else (20 if campaign else 0)
        lines.append(Line(product, quantity, discount))
    if company:
        method = rng.choices(("b2b", "card"), (75, 25))[0]
    else:
        method = rng.choices(("card", "vipps", "klarna", "invoice", "giftcard"), (36, 30, 16, 10, 8))[0]
    goods = sum(line.amount for line in lines)
    coupon_draw, fixed_draw = rng.random(), rng.random()
    coupon = None
    if not company and coupon_draw < 0.14:
        big = goods >= 50000 and fixed_draw < 0.5
        coupon = Coupon("sommer100", "fixed", 10000) if big else Coupon("velkommen10", "percent", 10)
    shipping_draw = rng.random()
    if shipping_draw < 0.08:
        shipping = None
    elif company:
        shipping = Charge("flat_rate", "Posten Bedriftspakke", 14900)
    elif goods >= 150000:
        shipping = Charge("free_shipping", "Gratis frakt", 0)
    else:
        shipping = Charge("flat_rate", "Posten Servicepakke", 9900)
    fees = (Charge("invoice_fee", "Fakturagebyr", 3900),) if method == "invoice" else ()

    minutes = rng.randint(20, 240) if method == "b2b" else rng.randint(1, 4)
    processing = created + dt.timedelta(minutes=minutes, seconds=rng.randint(0, 59))
    fate, cancel_early = rng.random(), rng.random() < 0.5
    shipped = processing + dt.timedelta(hours=rng.randint(4, 72), minutes=rng.randint(0, 59))
    later = shipped + dt.timedelta(days=rng.randint(2, 10), hours=rng.randint(0, 10))
    history: list[tuple[str, dt.datetime]] = [("new", created)]
    refunds: list[Refund] = []
    delta = rng.choice((1, -1)) * rng.choice((1, 2, 5, 10, 50, 100, 490)) if rng.random() < 0.05 else 0
    delta = delta if method in CAPTURED_METHODS else 0  # nothing captured, no difference
    lines = _share_coupon(lines, coupon)
    returned, reason = rng.randrange(len(lines)), rng.random()
    if fate < 0.0625:
        if cancel_early:
            history.append(("cancelled", created + dt.timedelta(minutes=rng.randint(15, 90))))
        else:
            history += [("processing", processing), ("cancelled", processing + dt.timedelta(hours=rng.randint(2, 30)))]
    else:
        history += [("processing", processing), ("completed", shipped)]
        if fate > 0.96 and delta == 0:
            refunds.append(Refund(later, REFUND_REASONS[int(reason * len(REFUND_REASONS))]))
            history.append(("refunded", later))
        elif fate > 0.91 and len(lines) > 1:
            line = lines[returned]  # refunded at what was paid for it: after its coupon share, VAT included
            amount = gross(line.amount - line.coupon, line.product.vat_rate, prices_include_vat)
            refunds.append(Refund(later, LINE_REFUND_REASONS[int(reason * 2)], amount, returned))
    note = rng.choice(NOTES) if rng.random() < 0.1 else ""
    ship_to = _address(rng) if rng.random() < 0.1 else None
    return WebOrder(
        id=order_id,
        customer=customer,
        created=created,
        history=tuple(history),
        prices_include_vat=prices_include_vat,
        lines=tuple(lines),
        shipping=shipping,
        fees=fees,
        coupon=coupon,
        payment_method=method,
        transaction_id=_transaction_id(rng, method, order_id),
        capture_delta=delta,
        refunds=tuple(refunds),
        customer_note=note,
        ship_to=ship_to,
    )


def _until(order: WebOrder, now: dt.datetime | None) -> WebOrder | None:
    """The order as it stands at `now`: None if placed later, later events left out."""
    if now is None:
        return order
    if order.created > now:
        return None
    history = tuple((s, t) for s, t in order.history if t <= now)
    return replace(order, history=history, refunds=tuple(r for r in order.refunds if r.at <= now))


def generate_orders(
    seed: int,
    first_day: dt.date,
    days: int,
    per_day: int,
    customers: int | Sequence[Customer] = 40,
    *,
    prices_include_vat: bool = True,
    first_id: int = 1001,
    now: dt.datetime | None = None,
) -> list[WebOrder]:
    """`per_day` orders on each of `days` days from `first_day` (Oslo time), ids from `first_id`.

    Args:
      customers: the size of a pool drawn from `seed` (`customer_pool`), or the pool itself (a
        shop adding orders later passes its own, so its customers come back).
      prices_include_vat: False for a shop keeping prices excluding VAT (same figures, net).
      now: the moment the orders are seen (aware datetime); orders placed after it are left out
        (ids stay consecutive), later status changes and refunds not applied. None = the whole story.
    """
    if isinstance(customers, int):
        pool = customer_pool(seed, customers, before=first_day)
    else:
        pool = list(customers)
    if not pool:
        raise ValueError("no customers to place orders")
    rng = random.Random(f"webshop-orders:{seed}")
    weights = [1 / (i + 1) ** 0.7 for i in range(len(pool))]
    orders: list[WebOrder] = []
    next_id = first_id
    for offset in range(days):
        midnight = dt.datetime.combine(first_day + dt.timedelta(days=offset), dt.time(), OSLO)
        moments = sorted(rng.randint(7 * 3600, 23 * 3600 + 1800) for _ in range(per_day))
        for seconds in moments:
            created = (midnight + dt.timedelta(seconds=seconds)).astimezone(UTC)
            order = _until(_one_order(rng, next_id, created, pool, weights, prices_include_vat), now)
            if order is not None:
                orders.append(order)
                next_id += 1
    return orders
