"""Realistic, XSD-valid SAF-T Cash Register demo files: a café, a bar and a shop.

The demo, the sandbox and the tests need POS exports that look like the real thing and hold the
traps a real day holds, without any real shop's data. Each call writes one file per business day
(named like the official convention, `SAF-T Cash Register_<orgnr>_<YYYYMMDDhhmmss>.xml`), with a
Z report per register whose totals (per VAT code, payment type and article group) equal the
transactions exactly, because both are summed from the same receipts.

Determinism: everything comes from `random.Random` seeded with (profile, orgnr, day, register),
and the file's creation time is derived from the day, so writing a day twice gives identical
bytes. Transaction numbers (`nr`) are gap-free per register and continue from day to day (the
count of every earlier day since 2015-01-01 is derived from a hash, not stored).

What the profiles hold and how it is written:

- **cafe**: coffee, tea, pastries, food, soft drinks. A receipt is eaten in (all lines VAT code
  "1", 25 %) or taken away (code "2", 15 %): the same article group (KAFFE) at two rates. Paid by
  debit card, Vipps (mobile, 12011) or cash.
- **bar**: beer, wine, drinks, food at 25 %, open 15:00 to 02:30; the Z report runs about 03:00
  the next morning, so the vendor's `day_start_hour` is 5 (`DemoProfile.day_start_hour`). Tips
  are added to card payments, written the SAF-T way: a ctLine of `lineType` TIP (a basic of type
  10, predefined 10001 "tip") carrying a `raise` of that type, without VAT or article group; the
  card payment includes it; the Z report counts it in `reportTip`, not in the VAT totals.
- **shop**: goods at 25 %, food at 15 %, closed on Sundays (an empty day: no transactions, no Z
  report). Returns are their own transactions (transType RETURN -> 11006) whose lines have
  `amntTp` D and negative amounts, refunded by a negative payment, as in Skatteetaten's 2021
  example. Gift cards sold are lines in article group GAVEKORT with VAT code "5" = standard code
  "6" (outside the VAT Act, 0 %): a gift card is a liability, VAT arises when it is redeemed.
  Redeemed gift cards are payments of type GAVEKORT -> 12005 "Gift token".
- **Bill discounts** (shop): some receipts mix goods (25 %) and food (15 %) and get 10-20 % off
  the bill, written as a transaction-level `discount` (dscTp RABATT, basic type 08). The lines
  keep their full price; `transAmntIn` is after the discount; the transaction's `vat` elements and
  the Z report's per-VAT-code sales are after it, the discount split over the codes pro rata by
  gross with largest remainder (`core.allocation.split_over_codes`, the split validation checks) and
  each code's VAT recomputed on its discounted gross. The Z report's article-group totals are the
  lines' (before the discount, which `reportDiscountAmnt` holds).
- **Credit sales** (shop): transType CREDSAL (11002) with `custSupID` of a customer in
  `customersSuppliers`, paid by payment type KUNDEKONTO (12006 "customer account"), so the receipt
  balances and the booking sends it to the receivable; the Z report counts them in
  `reportCreditSales` and under KUNDEKONTO in its payments.
- **Cost centres** (café): every line carries `costID` SALONG (eaten in) or DISK (taken away),
  declared as basics of type 01.
- **Cash difference** (all profiles): about one register-day in four ends with a CASHDIFF
  (11008) transaction: no lines, a cash payment of the difference (negative when short), amntTp D
  when short. It is the day's last number; the Z report's CASH total includes it.
- **Periods**: `write_period` writes many days into one file (one `cashregister` per register with
  every day's Z report, then every day's transactions), streamed.
- **Cash rounding** (all profiles): cash is rounded to whole kroner (50 øre up), and the
  transaction carries `rounding/roundingAmnt` = cash paid minus lines (e.g. -0.40), as in the
  2021 official example. Card payments are exact.
- **Amounts** are integer øre; a line's VAT = round half up(gross * rate / (100 + rate)), net =
  gross - VAT.
- **Z report conventions**: `z_amounts="gross"` (default) writes each `reportCashSaleVat/cashSaleAmnt`
  gross, as Skatteetaten's 2016 example does; `z_amounts="net"` writes it net of VAT, as the 2021
  example does. `totalCashSaleAmnt` is gross either way, so a reader can tell them apart.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from kassebro.core.allocation import split_over_codes
from kassebro.core.money import vat_from_gross

__all__ = ["PROFILES", "DemoProfile", "file_name", "write_day", "write_large_day", "write_period", "write_range"]

NAMESPACE = "urn:StandardAuditFile-Taxation-CashRegister:NO"
_NR_EPOCH = dt.date(2015, 1, 1)
_ENTRY_DATE = "2015-01-01"  # dateOfEntry of all master data: fixed, so files stay identical


@dataclass(frozen=True)
class Article:
    art_id: str
    group: str  # article group basicID
    desc: str
    price: int  # gross unit price in øre


@dataclass(frozen=True)
class DemoProfile:
    """A kind of business: its master data, opening hours and how its receipts look.

    Times are minutes after midnight of the business day (more than 1440 = after midnight).
    """

    name: str
    description: str
    registers: int
    open_minute: int
    close_minute: int
    z_minute: int
    day_start_hour: int
    receipts_per_register: tuple[int, int]
    groups: tuple[tuple[str, str, str], ...]  # (basicID, predefined 04 code, description)
    articles: tuple[Article, ...]
    payments: tuple[tuple[str, float], ...]  # (payment basicID, weight)
    vat_codes: tuple[str, ...]  # own VAT codes used, see _VAT_CODES
    opening_float: int = 200000
    closed_weekdays: tuple[int, ...] = ()  # date.weekday() values without sales
    extra: dict[str, float] = field(default_factory=dict)


# own VAT code -> (rate in basis points, standard code, description)
_VAT_CODES: dict[str, tuple[int, str, str]] = {
    "1": (2500, "3", "Utgående mva 25 %"),
    "2": (1500, "31", "Utgående mva 15 % (næringsmidler)"),
    "5": (0, "6", "Utenfor mva-loven (gavekort)"),
}

# payment basicID -> (predefined 12 code, description)
_PAYMENT_TYPES: dict[str, tuple[str, str]] = {
    "CASH": ("12001", "Kontant"),
    "BANK": ("12002", "Bankkort"),
    "CREDIT": ("12003", "Kredittkort"),
    "VIPPS": ("12011", "Vipps"),
    "GAVEKORT": ("12005", "Gavekort"),
    "KUNDEKONTO": ("12006", "Kundekonto (faktura)"),
}

# The shop's credit customers (custSupID, name): credit sales name one of them.
# (custSupID, name, organisation number, e-mail, (street, number, postcode, city))
_CUSTOMERS: tuple[tuple[str, str, str, str, tuple[str, str, str, str]], ...] = (
    ("K1001", "Bedriften AS", "913572468", "faktura@bedriften.example.no", ("Strandgaten", "12", "5013", "Bergen")),
    ("K1002", "Foreningen Lag", "", "kasserer@foreningen.example.no", ("Kirkeveien", "3", "0368", "Oslo")),
)

# Café cost centres (costID, basic type 01): eaten in or taken away.
_COST_CENTRES = {"1": ("SALONG", "Servering i salong"), "2": ("DISK", "Takeaway fra disk")}

_OTHER_BASICS: tuple[tuple[str, str, str, str], ...] = (
    ("05", "SAL", "", "Salgslinje"),
    ("05", "RET", "", "Returlinje"),
    ("10", "TIP", "10001", "Tips"),
    ("11", "CASHSAL", "11001", "Kontantsalg"),
    ("11", "RETURN", "11006", "Retur"),
    ("11", "CASHDIFF", "11008", "Kassedifferanse"),
    ("13", "ZREP", "13009", "Z-rapport"),
)

PROFILES: dict[str, DemoProfile] = {
    "cafe": DemoProfile(
        name="cafe",
        description="Café: coffee eaten in (25 %) or taken away (15 %), pastries, card/Vipps/cash",
        registers=1,
        open_minute=7 * 60,
        close_minute=18 * 60,
        z_minute=18 * 60 + 15,
        day_start_hour=0,
        receipts_per_register=(90, 160),
        groups=(
            ("KAFFE", "04012", "Kaffe og te"),
            ("BAKST", "04006", "Bakst"),
            ("MAT", "04006", "Mat"),
            ("DRIKKE", "04011", "Mineralvann"),
        ),
        articles=(
            Article("101", "KAFFE", "Kaffe", 4200),
            Article("102", "KAFFE", "Cappuccino", 5200),
            Article("103", "KAFFE", "Caffè latte", 5500),
            Article("104", "KAFFE", "Te", 3500),
            Article("201", "BAKST", "Kanelbolle", 3900),
            Article("202", "BAKST", "Skolebrød", 4200),
            Article("203", "BAKST", "Croissant", 3600),
            Article("301", "MAT", "Ciabatta med skinke og ost", 8900),
            Article("302", "MAT", "Havregrøt", 6900),
            Article("401", "DRIKKE", "Eplemost", 3800),
        ),
        payments=(("BANK", 0.6), ("VIPPS", 0.25), ("CASH", 0.15)),
        vat_codes=("1", "2"),
        extra={"take_away": 0.45},
    ),
    "bar": DemoProfile(
        name="bar",
        description="Bar open past midnight: beer, wine, food at 25 %, tips on card payments",
        registers=2,
        open_minute=15 * 60,
        close_minute=26 * 60 + 30,
        z_minute=27 * 60,
        day_start_hour=5,
        receipts_per_register=(70, 140),
        groups=(
            ("OL", "04007", "Øl"),
            ("VIN", "04008", "Vin"),
            ("DRINK", "04009", "Brennevin"),
            ("MAT", "04006", "Mat"),
            ("MINERAL", "04011", "Mineralvann"),
        ),
        articles=(
            Article("1001", "OL", "Pils 0,5 l", 9800),
            Article("1002", "OL", "IPA 0,4 l", 11900),
            Article("2001", "VIN", "Husets rødvin, glass", 13500),
            Article("2002", "VIN", "Husets hvitvin, flaske", 59000),
            Article("3001", "DRINK", "Gin og tonic", 15500),
            Article("4001", "MAT", "Nachos", 13900),
            Article("4002", "MAT", "Burger", 21900),
            Article("5001", "MINERAL", "Cola", 4900),
        ),
        payments=(("BANK", 0.55), ("CREDIT", 0.15), ("VIPPS", 0.15), ("CASH", 0.15)),
        vat_codes=("1",),
        opening_float=300000,
        extra={"tip": 0.35},
    ),
    "shop": DemoProfile(
        name="shop",
        description="Shop: goods 25 %, food 15 %, returns, gift cards sold and redeemed, cash rounding",
        registers=2,
        open_minute=10 * 60,
        close_minute=20 * 60,
        z_minute=20 * 60 + 10,
        day_start_hour=0,
        receipts_per_register=(40, 90),
        groups=(
            ("VARER", "04003", "Varesalg"),
            ("MAT", "04006", "Mat og drikke"),
            ("GAVEKORT", "04999", "Gavekort (solgt)"),
        ),
        articles=(
            Article("10001", "VARER", "Notatbok A5", 4990),
            Article("10002", "VARER", "Kopp, steintøy", 12900),
            Article("10003", "VARER", "Stearinlys 4 pk", 1990),
            Article("10004", "VARER", "Servietter", 3490),
            Article("10005", "VARER", "Pute, lin", 34900),
            Article("20001", "MAT", "Sjokolade 100 g", 3990),
            Article("20002", "MAT", "Kaffe 500 g", 8990),
            Article("20003", "MAT", "Saft 1 l", 4450),
            Article("90200", "GAVEKORT", "Gavekort 200 kr", 20000),
            Article("90500", "GAVEKORT", "Gavekort 500 kr", 50000),
        ),
        payments=(("BANK", 0.55), ("VIPPS", 0.2), ("CASH", 0.25)),
        vat_codes=("1", "2", "5"),
        closed_weekdays=(6,),
        extra={"return": 0.06, "gift_sale": 0.04, "gift_redeem": 0.05, "bill_discount": 0.05, "credit": 0.02},
    ),
}

_GROUP_VAT = {"MAT": "2", "GAVEKORT": "5"}  # shop: food 15 %, gift cards outside VAT; else 25 %


# ---------------------------------------------------------------------------------------------
# Receipts


@dataclass
class _Line:
    line_type: str  # SAL, RET or TIP
    article: Article | None
    qty: int
    gross: int
    vat_code: str  # "" for tips
    vat: int
    cost_centre: str = ""

    @property
    def net(self) -> int:
        return self.gross - self.vat


@dataclass
class _Receipt:
    time: dt.datetime  # local wall clock
    trans_type: str  # CASHSAL, CREDSAL, RETURN or CASHDIFF
    lines: list[_Line]
    payments: list[tuple[str, int]]
    rounding: int | None  # None: no rounding element (no cash involved)
    discount: int = 0  # bill discount in øre (positive), not in the lines' gross
    customer: str = ""  # custSupID of a credit sale

    @property
    def total(self) -> int:
        """transAmntIn: the lines after the bill discount (a cash difference: its payments)."""
        if self.trans_type == "CASHDIFF":
            return sum(amount for _method, amount in self.payments)
        return sum(line.gross for line in self.lines) - self.discount

    def by_vat_code(self) -> dict[str, tuple[int, int]]:
        """Own VAT code -> (gross, VAT) after the bill discount, as the Z report and the
        transaction's `vat` elements show them. Without a discount: the lines' sums. With one:
        the discount split over the codes by gross (core.allocation.split_over_codes, the split
        kassebro's z_vat_totals rule makes), VAT recomputed on each code's discounted gross."""
        sums: dict[str, list[int]] = {}
        for line in self.lines:
            if line.line_type != "TIP":
                code = sums.setdefault(line.vat_code, [0, 0])
                code[0] += line.gross
                code[1] += line.vat
        if not self.discount:
            return {code: (gross, vat) for code, (gross, vat) in sorted(sums.items())}
        keys = {code: (code, _VAT_CODES[code][1], _VAT_CODES[code][0]) for code in sums}
        shares = split_over_codes(self.discount, {keys[code]: abs(sums[code][0]) for code in sums})
        result = {}
        for code in sorted(sums):
            gross = sums[code][0] - shares[keys[code]]
            result[code] = (gross, vat_from_gross(gross, _VAT_CODES[code][0]))
        return result

    @property
    def vat(self) -> int:
        return sum(vat for _gross, vat in self.by_vat_code().values())


def _round_krone(ore: int) -> int:
    """Cash rounding to whole kroner, 50 øre up (mirrored for refunds)."""
    if ore < 0:
        return -_round_krone(-ore)
    return (ore + 50) // 100 * 100


def _sale_line(article: Article, qty: int, vat_code: str, cost_centre: str = "") -> _Line:
    gross = article.price * qty
    rate = _VAT_CODES[vat_code][0]
    line_type = "RET" if qty < 0 else "SAL"
    return _Line(line_type, article, qty, gross, vat_code, vat_from_gross(gross, rate), cost_centre)


def _pick_payment(rng: random.Random, profile: DemoProfile, exclude: tuple[str, ...] = ()) -> str:
    options = [(p, w) for p, w in profile.payments if p not in exclude]
    return rng.choices([p for p, _ in options], weights=[w for _, w in options])[0]


def _settle(receipt: _Receipt, method: str, amount: int) -> None:
    """Add a payment of `amount` (what is still due) by `method`, rounding cash to kroner."""
    if method == "CASH":
        cash = _round_krone(amount)
        receipt.payments.append(("CASH", cash))
        receipt.rounding = (receipt.rounding or 0) + cash - amount
    else:
        receipt.payments.append((method, amount))


def _basket(rng: random.Random, articles: list[Article], min_lines: int, max_lines: int) -> list[tuple[Article, int]]:
    count = rng.randint(min_lines, max_lines)
    chosen = rng.sample(articles, min(count, len(articles)))
    return [(art, 1 if art.price > 10000 or rng.random() < 0.8 else rng.randint(2, 3)) for art in chosen]


def _make_receipt(rng: random.Random, profile: DemoProfile, time: dt.datetime, kind: str, min_lines: int) -> _Receipt:
    receipt = _Receipt(time, "CASHSAL", [], [], None)
    sellable = [a for a in profile.articles if a.group != "GAVEKORT"]
    if kind == "cash_difference":  # the count at closing: short (negative) or over, in cash
        receipt.trans_type = "CASHDIFF"
        receipt.payments.append(("CASH", rng.choice((-10000, -5000, -2000, -1000, 1000, 2000))))
        return receipt
    if profile.name == "cafe":
        vat_code = "2" if rng.random() < profile.extra["take_away"] else "1"
        for art, qty in _basket(rng, sellable, min_lines, 3 if min_lines == 1 else min_lines + 3):
            receipt.lines.append(_sale_line(art, qty, vat_code, _COST_CENTRES[vat_code][0]))
        _settle(receipt, _pick_payment(rng, profile), receipt.total)
        return receipt
    if profile.name == "bar":
        for art, qty in _basket(rng, sellable, min_lines, 4 if min_lines == 1 else min_lines + 3):
            receipt.lines.append(_sale_line(art, qty, "1"))
        method = "BANK" if kind == "tip" else _pick_payment(rng, profile)
        if method in ("BANK", "CREDIT") and (kind == "tip" or rng.random() < profile.extra["tip"]):
            tip = rng.choice((1000, 2000, 3000, 5000, 10000))
            receipt.lines.append(_Line("TIP", None, 1, tip, "", 0))
        _settle(receipt, method, receipt.total)
        return receipt
    # shop
    if kind == "return":
        receipt.trans_type = "RETURN"
        for art, _qty in _basket(rng, sellable, 1, 2):
            receipt.lines.append(_sale_line(art, -1, _GROUP_VAT.get(art.group, "1")))
        _settle(receipt, _pick_payment(rng, profile), receipt.total)
        return receipt
    if kind == "gift_sale":
        gift = rng.choice([a for a in profile.articles if a.group == "GAVEKORT"])
        receipt.lines.append(_sale_line(gift, 1, "5"))
        _settle(receipt, _pick_payment(rng, profile), receipt.total)
        return receipt
    if kind == "bill_discount":  # goods (25 %) and food (15 %) on one bill, 10-20 % off the bill
        goods = [a for a in sellable if a.group == "VARER"]
        food = [a for a in sellable if a.group == "MAT"]
        for art, qty in _basket(rng, goods, 1, 2) + _basket(rng, food, 1, 2):
            receipt.lines.append(_sale_line(art, qty, _GROUP_VAT.get(art.group, "1")))
        receipt.discount = receipt.total * rng.choice((10, 15, 20)) // 100
        _settle(receipt, _pick_payment(rng, profile), receipt.total)
        return receipt
    if kind == "credit":  # on account: paid by the customer-account payment type, invoiced later
        receipt.trans_type = "CREDSAL"
        receipt.customer = rng.choice(_CUSTOMERS)[0]
        for art, qty in _basket(rng, sellable, 2, 4):
            receipt.lines.append(_sale_line(art, qty, _GROUP_VAT.get(art.group, "1")))
        receipt.payments.append(("KUNDEKONTO", receipt.total))
        return receipt
    for art, qty in _basket(rng, sellable, min_lines, 4 if min_lines == 1 else min_lines + 3):
        receipt.lines.append(_sale_line(art, qty, _GROUP_VAT.get(art.group, "1")))
    due = receipt.total
    if kind == "cash" and due % 100 == 0:  # make sure the forced cash sale needs rounding
        receipt.lines.append(_sale_line(profile.articles[2], 1, "1"))
        due = receipt.total
    if kind == "gift_redeem":
        balance = rng.choice((20000, 50000))
        used = min(balance, due)
        receipt.payments.append(("GAVEKORT", used))
        due -= used
        if due:
            _settle(receipt, _pick_payment(rng, profile, exclude=("GAVEKORT",)), due)
        return receipt
    _settle(receipt, "CASH" if kind == "cash" else _pick_payment(rng, profile), due)
    return receipt


def _kinds(rng: random.Random, profile: DemoProfile, count: int, register_index: int) -> list[str]:
    """What each receipt of a register's day is; the shop's first register always shows every trap."""
    kinds = []
    for _ in range(count):
        roll = rng.random()
        kind = "sale"
        for name in ("return", "gift_sale", "gift_redeem", "bill_discount", "credit"):
            share = profile.extra.get(name, 0.0)
            if roll < share:
                kind = name
                break
            roll -= share
        kinds.append(kind)
    if register_index == 0 and count:
        forced = {
            "shop": ("cash", "return", "gift_sale", "gift_redeem", "cash", "bill_discount", "credit"),
            "bar": ("sale", "tip"),
        }
        for index, kind in enumerate(forced.get(profile.name, ())):
            if index * 3 < count:
                kinds[index * 3] = kind
    return kinds


def _has_cash_difference(profile: DemoProfile, orgnr: str, register: str, day: dt.date) -> bool:
    """About one register-day in four ends with a cash difference at the count (a hash: deterministic)."""
    return _digest_int("cashdiff", profile.name, orgnr, register, day) % 4 == 0


def _digest_int(*parts: object) -> int:
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _default_count(profile: DemoProfile, orgnr: str, register: str, day: dt.date) -> int:
    """Receipts of one register on one day when not given: a hash, so earlier days are cheap to count."""
    if day.weekday() in profile.closed_weekdays:
        return 0
    low, high = profile.receipts_per_register
    count = low + _digest_int("count", profile.name, orgnr, register, day) % (high - low + 1)
    return count * 5 // 4 if day.weekday() in (4, 5) else count  # Friday and Saturday are busier


def _nr_start(profile: DemoProfile, orgnr: str, register: str, day: dt.date) -> int:
    """First transaction number of the day: one more than all earlier days' receipts since 2015."""
    total, current = 1, _NR_EPOCH
    while current < day:
        total += _default_count(profile, orgnr, register, current)
        current += dt.timedelta(days=1)
    return total


@dataclass
class _RegisterPlan:
    register: str
    index: int
    count: int
    nr_start: int
    seed: str
    z_time: dt.datetime
    cash_difference: bool = False  # the day's last transaction is a cash difference


def _times(rng: random.Random, profile: DemoProfile, day: dt.date, count: int, zone: ZoneInfo) -> list[dt.datetime]:
    """Sale times between opening and closing, drawn in real (UTC) time and written as wall clock.

    So no time falls in the spring-forward gap, and on the autumn night the repeated hour is sold
    in twice, written without offset as a real POS does (readers take the first occurrence).
    """
    opens = _instant(day, profile.open_minute, zone)
    span = (_instant(day, profile.close_minute, zone) - opens).total_seconds()
    mode = span * 2 / 3
    offsets = sorted(int(rng.triangular(0, span, mode)) for _ in range(count))
    return [(opens + dt.timedelta(seconds=s)).astimezone(zone).replace(tzinfo=None) for s in offsets]


def _instant(day: dt.date, minute: int, zone: ZoneInfo) -> dt.datetime:
    """UTC instant of a wall time given as minutes after the day's midnight (past 1440: next day)."""
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def _receipts(
    plan: _RegisterPlan, profile: DemoProfile, day: dt.date, zone: ZoneInfo, min_lines: int
) -> Iterator[_Receipt]:
    """The register's receipts in order; the same plan always yields the same receipts."""
    rng = random.Random(plan.seed)
    times = _times(rng, profile, day, plan.count, zone)
    kinds = _kinds(rng, profile, plan.count, plan.index)
    if plan.cash_difference and plan.count >= 2:
        kinds[-1] = "cash_difference"
    for time, kind in zip(times, kinds, strict=True):
        yield _make_receipt(rng, profile, time, kind, min_lines)


# ---------------------------------------------------------------------------------------------
# Z report totals


@dataclass
class _Totals:
    receipts: int = 0
    cash_receipts: int = 0
    vat: dict[str, list[int]] = field(default_factory=dict)  # code -> [gross, vat]
    groups: dict[str, list[int]] = field(default_factory=dict)  # group -> [qty, gross]
    payments: dict[str, list[int]] = field(default_factory=dict)  # type -> [count, amount]
    tips: list[int] = field(default_factory=lambda: [0, 0])
    returns: list[int] = field(default_factory=lambda: [0, 0])
    sales: int = 0
    discounts: list[int] = field(default_factory=lambda: [0, 0])  # bill discounts: [count, amount]
    credit: list[int] = field(default_factory=lambda: [0, 0])  # credit sales: [count, amount]

    def add(self, receipt: _Receipt) -> None:
        if receipt.trans_type != "CASHDIFF":
            self.receipts += 1
        for code, (gross, vat_amount) in receipt.by_vat_code().items():
            vat = self.vat.setdefault(code, [0, 0])
            vat[0] += gross
            vat[1] += vat_amount
        if receipt.discount:
            self.discounts[0] += 1
            self.discounts[1] += receipt.discount
            self.sales -= receipt.discount
        if receipt.trans_type == "CREDSAL":
            self.credit[0] += 1
            self.credit[1] += receipt.total
        for line in receipt.lines:
            if line.line_type == "TIP":
                self.tips[0] += 1
                self.tips[1] += line.gross
                continue
            assert line.article is not None
            group = self.groups.setdefault(line.article.group, [0, 0])
            group[0] += line.qty
            group[1] += line.gross
            if line.gross < 0:
                self.returns[0] += 1
                self.returns[1] -= line.gross
            else:
                self.sales += line.gross
        for method, amount in receipt.payments:
            payment = self.payments.setdefault(method, [0, 0])
            payment[0] += 1
            payment[1] += amount
        if any(method == "CASH" for method, _ in receipt.payments):
            self.cash_receipts += 1


# ---------------------------------------------------------------------------------------------
# Writing


def _amount(ore: int) -> str:
    sign = "-" if ore < 0 else ""
    return f"{sign}{abs(ore) // 100}.{abs(ore) % 100:02d}"


def _rate(rate_bp: int) -> str:
    return f"{rate_bp // 100}.{rate_bp % 100:02d}"


def _el(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>"


def _block(name: str, *children: str) -> str:
    return f"<{name}>{''.join(children)}</{name}>"


def file_name(orgnr: str, created: dt.datetime) -> str:
    """The official file name convention: SAF-T Cash Register_<orgnr>_<YYYYMMDDhhmmss>.xml."""
    return f"SAF-T Cash Register_{orgnr}_{created:%Y%m%d%H%M%S}.xml"


def _header(
    profile: DemoProfile,
    orgnr: str,
    company_name: str,
    day: dt.date,
    created: dt.datetime,
    last: dt.date,
    last_day: dt.date | None = None,
) -> str:
    days = day.isoformat() if last_day in (None, day) else f"{day.isoformat()} to {last_day.isoformat()}"
    return _block(
        "header",
        _el("fiscalYear", str(day.year)),
        _el("startDate", day.isoformat()),
        _el("endDate", last.isoformat()),
        _el("curCode", "NOK"),
        _el("dateCreated", created.date().isoformat()),
        _el("timeCreated", created.time().isoformat()),
        _el("softwareDesc", "kassebro demo POS"),
        _el("softwareVersion", "1.0"),
        _el("softwareCompanyName", "kassebro"),
        _el("auditfileVersion", "1.0"),
        _el("headerComment", f"Demo data, profile {profile.name}, business day {days}"),
    )


def _master_data(profile: DemoProfile, orgnr: str, company_name: str) -> str:
    vat = "".join(
        _block(
            "vatCodeDetail",
            _el("vatCode", code),
            _el("dateOfEntry", _ENTRY_DATE),
            _el("vatDesc", _VAT_CODES[code][2]),
            _el("standardVatCode", _VAT_CODES[code][1]),
        )
        for code in profile.vat_codes
    )
    articles = "".join(
        _block(
            "article",
            _el("artID", a.art_id),
            _el("dateOfEntry", _ENTRY_DATE),
            _el("artGroupID", a.group),
            _el("artDesc", a.desc),
        )
        for a in profile.articles
    )
    basics = [("04", group_id, code, desc) for group_id, code, desc in profile.groups]
    basics += [("12", p, _PAYMENT_TYPES[p][0], _PAYMENT_TYPES[p][1]) for p in sorted(_used_payments(profile))]
    basics += list(_OTHER_BASICS)
    if profile.extra.get("credit"):
        basics.append(("11", "CREDSAL", "11002", "Kredittsalg"))
    if profile.extra.get("bill_discount"):
        basics.append(("08", "RABATT", "", "Rabatt på bong"))
    if profile.name == "cafe":
        basics += [("01", cost_id, "", desc) for cost_id, desc in _COST_CENTRES.values()]
    customers = ""
    if profile.extra.get("credit"):
        customers = _block(
            "customersSuppliers",
            "".join(
                _block(
                    "customerSupplier",
                    _el("custSupID", cust_id),
                    _el("custSupName", cust_name),
                    _el("custSupType", "Customer"),
                    _el("eMail", email),
                    _el("taxRegIdent", orgnr) if orgnr else "",
                    _block(
                        "streetAddress",
                        _el("streetname", street[0]),
                        _el("number", street[1]),
                        _el("city", street[3]),
                        _el("postalCode", street[2]),
                        _el("country", "NO"),
                    ),
                )
                for cust_id, cust_name, orgnr, email, street in _CUSTOMERS
            ),
        )
    basic_xml = "".join(
        _block(
            "basic",
            _el("basicType", basic_type),
            _el("basicID", basic_id),
            _el("predefinedBasicID", predefined) if predefined else "",
            _el("basicDesc", desc),
        )
        for basic_type, basic_id, predefined, desc in basics
    )
    return (
        _el("companyIdent", orgnr)
        + _el("companyName", company_name)
        + _el("taxRegistrationCountry", "NO")
        + _el("taxRegIdent", f"{orgnr}MVA")
        + customers
        + _block("vatCodeDetails", vat)
        + _block("articles", articles)
        + _block("basics", basic_xml)
    )


def _used_payments(profile: DemoProfile) -> set[str]:
    used = {p for p, _ in profile.payments}
    if profile.extra.get("gift_redeem"):
        used.add("GAVEKORT")
    if profile.extra.get("credit"):
        used.add("KUNDEKONTO")
    return used


def _z_event(
    profile: DemoProfile,
    orgnr: str,
    company_name: str,
    plan: _RegisterPlan,
    totals: _Totals,
    report_id: str,
    z_amounts: str = "gross",
) -> str:
    z_date, z_time = plan.z_time.date().isoformat(), plan.z_time.time().isoformat()
    groups = sorted(totals.groups.items()) or [(profile.groups[0][0], [0, 0])]
    group_xml = "".join(
        _block("reportArtGroup", _el("artGroupID", g), _el("artGroupNum", str(q)), _el("artGroupAmnt", _amount(a)))
        for g, (q, a) in groups
    )
    payments = sorted(totals.payments.items()) or [("CASH", [0, 0])]
    payment_xml = "".join(
        _block("reportPayment", _el("paymentType", p), _el("paymentNum", str(n)), _el("paymentAmnt", _amount(a)))
        for p, (n, a) in payments
    )
    vat_rows = []
    for code in profile.vat_codes:
        gross, vat = totals.vat.get(code, [0, 0])
        vat_rows.append(
            _block(
                "reportCashSaleVat",
                _el("vatCode", code),
                _el("vatPerc", _rate(_VAT_CODES[code][0])),
                _el("cashSaleAmnt", _amount(gross - vat if z_amounts == "net" else gross)),
                _el("vatAmnt", _amount(vat)),
                _el("vatAmntTp", "D" if gross < 0 else "C"),
            )
        )
    net_sales = sum(gross for gross, _ in totals.vat.values())
    tip_xml = (
        _block("reportTip", _el("tipNum", str(totals.tips[0])), _el("tipAmnt", _amount(totals.tips[1])))
        if profile.extra.get("tip")
        else ""
    )
    report = _block(
        "eventReport",
        _el("reportID", report_id),
        _el("reportType", "Z report"),
        _el("companyIdent", orgnr),
        _el("companyName", company_name),
        _el("reportDate", z_date),
        _el("reportTime", z_time),
        _el("registerID", plan.register),
        _block("reportTotalCashSales", _el("totalCashSaleAmnt", _amount(net_sales))),
        _block("reportArtGroups", group_xml),
        _block("reportPayments", payment_xml),
        tip_xml,
        _block("reportCashSalesVat", "".join(vat_rows)),
        _el("reportOpeningChangeFloat", _amount(profile.opening_float)),
        _el("reportReceiptNum", str(totals.receipts)),
        _el("reportOpenCashBoxNum", str(totals.cash_receipts)),
        _el("reportReceiptCopyNum", "0"),
        _el("reportReceiptCopyAmnt", "0.00"),
        _el("reportReceiptProformaNum", "0"),
        _el("reportReceiptProformaAmnt", "0.00"),
        _el("reportReturnNum", str(totals.returns[0])),
        _el("reportReturnAmnt", _amount(totals.returns[1])),
        _el("reportDiscountNum", str(totals.discounts[0])),
        _el("reportDiscountAmnt", _amount(totals.discounts[1])),
        _el("reportVoidTransNum", "0"),
        _el("reportVoidTransAmnt", "0.00"),
        _block(
            "reportCorrLines",
            _block("reportCorrLine", _el("corrLineType", "None"), _el("corrLineNum", "0"), _el("corrLineAmnt", "0.00")),
        ),
        _block(
            "reportPriceInquiries",
            _block(
                "reportPriceInquiry",
                _el("priceInquiryGroup", "None"),
                _el("priceInquiryNum", "0"),
                _el("priceInquiryAmnt", "0.00"),
            ),
        ),
        _block(
            "reportOtherCorrs",
            _block(
                "reportOtherCorr", _el("otherCorrType", "None"), _el("otherCorrNum", "0"), _el("otherCorrAmnt", "0.00")
            ),
        ),
        _el("reportReceiptDeliveryNum", "0"),
        _el("reportReceiptDeliveryAmnt", "0.00"),
        _el("reportTrainingNum", "0"),
        _el("reportTrainingAmnt", "0.00"),
        _block(
            "reportCreditSales",
            _el("creditSalesNum", str(totals.credit[0])),
            _el("creditSalesAmnt", _amount(totals.credit[1])),
        )
        if profile.extra.get("credit")
        else "",
        _el("reportGrandTotalSales", _amount(totals.sales)),
        _el("reportGrandTotalReturn", _amount(totals.returns[1])),
        _el("reportGrandTotalSalesNet", _amount(totals.sales - totals.returns[1])),
    )
    return _block(
        "event",
        _el("eventID", f"Z{report_id}"),
        _el("eventType", "ZREP"),
        _el("eventDate", z_date),
        _el("eventTime", z_time),
        _el("eventText", "Z-rapport"),
        report,
    )


def _transaction(receipt: _Receipt, nr: int, register: str, previous_signature: str) -> tuple[str, str]:
    """One cashtransaction element and its signature (chained, like a real POS's)."""
    trans_id = f"{register}-{nr}"
    total = receipt.total
    amnt_tp = "D" if total < 0 else "C"
    lines = []
    for line_no, line in enumerate(receipt.lines, start=1):
        line_tp = "D" if line.gross < 0 else "C"
        if line.line_type == "TIP":
            lines.append(
                _block(
                    "ctLine",
                    _el("nr", str(nr)),
                    _el("lineID", str(line_no)),
                    _el("lineType", "TIP"),
                    _el("lineAmntIn", _amount(line.gross)),
                    _el("lineAmntEx", _amount(line.gross)),
                    _el("amntTp", line_tp),
                    _el("cashTransLineDescr", "Tips"),
                    _block("raise", _el("raiseType", "TIP"), _el("raiseAmnt", _amount(line.gross))),
                )
            )
            continue
        assert line.article is not None
        rate = _VAT_CODES[line.vat_code][0]
        lines.append(
            _block(
                "ctLine",
                _el("nr", str(nr)),
                _el("lineID", str(line_no)),
                _el("lineType", line.line_type),
                _el("artGroupID", line.article.group),
                _el("artID", line.article.art_id),
                _el("qnt", str(line.qty)),
                _el("lineAmntIn", _amount(line.gross)),
                _el("lineAmntEx", _amount(line.net)),
                _el("amntTp", line_tp),
                _el("ppu", _amount(line.article.price)),
                _el("costID", line.cost_centre) if line.cost_centre else "",
                _block(
                    "vat",
                    _el("vatCode", line.vat_code),
                    _el("vatPerc", _rate(rate)),
                    _el("vatAmnt", _amount(line.vat)),
                    _el("vatAmntTp", line_tp),
                    _el("vatBasAmnt", _amount(line.net)),
                ),
            )
        )
    # Transaction-level VAT per code: after the bill discount (equal to the lines' sums without one).
    by_code = receipt.by_vat_code()
    vat_xml = "".join(
        _block(
            "vat",
            _el("vatCode", code),
            _el("vatPerc", _rate(_VAT_CODES[code][0])),
            _el("vatAmnt", _amount(vat)),
            _el("vatAmntTp", "D" if gross < 0 else "C"),
            _el("vatBasAmnt", _amount(gross - vat)),
        )
        for code, (gross, vat) in by_code.items()
    )
    vat_total = sum(vat for _gross, vat in by_code.values())
    discount = (
        _block("discount", _el("dscTp", "RABATT"), _el("dscAmnt", _amount(receipt.discount)))
        if receipt.discount
        else ""
    )
    rounding = (
        _block("rounding", _el("roundingAmnt", _amount(receipt.rounding))) if receipt.rounding is not None else ""
    )
    payments = "".join(
        _block("payment", _el("paymentType", method), _el("paidAmnt", _amount(amount)), _el("curCode", "NOK"))
        for method, amount in receipt.payments
    )
    date, time = receipt.time.date().isoformat(), receipt.time.time().isoformat()
    to_sign = f"{previous_signature};{date};{time};{nr};{_amount(total)};{_amount(total - vat_total)}"
    signature = base64.b64encode(hashlib.sha256(to_sign.encode()).digest()).decode()
    xml = _block(
        "cashtransaction",
        _el("nr", str(nr)),
        _el("transID", trans_id),
        _el("transType", receipt.trans_type),
        _el("transAmntIn", _amount(total)),
        _el("transAmntEx", _amount(total - vat_total)),
        _el("amntTp", amnt_tp),
        _el("custSupID", receipt.customer) if receipt.customer else "",
        _el("transDate", date),
        _el("transTime", time),
        "".join(lines),
        vat_xml,
        discount,
        rounding,
        payments,
        _el("signature", signature),
        _el("keyVersion", "1"),
        _el("receiptNum", "1"),
    )
    return xml, signature


def _write(
    out: IO[str],
    profile: DemoProfile,
    orgnr: str,
    company_name: str,
    days: list[tuple[dt.date, list[_RegisterPlan]]],
    zone: ZoneInfo,
    created: dt.datetime,
    min_lines: int,
    z_amounts: str = "gross",
    z_always: bool = False,
) -> None:
    """Write one file holding `days` (each with its register plans), one `cashregister` per register
    with every day's Z report first and then every day's transactions, as the XSD orders them."""
    # Pass 1: the Z totals (the Z report comes before the transactions in the file), and a Z time
    # after the register's last sale. Only the totals are kept: receipts are generated again below.
    totals: list[list[_Totals]] = []
    for day, plans in days:
        day_totals = []
        for plan in plans:
            total = _Totals()
            for receipt in _receipts(plan, profile, day, zone, min_lines):
                total.add(receipt)
                plan.z_time = max(plan.z_time, receipt.time + dt.timedelta(minutes=2))
            day_totals.append(total)
        totals.append(day_totals)
    first = days[0][0]
    last = max([days[-1][0]] + [p.z_time.date() for _day, plans in days for p in plans if p.count])
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<auditfile xmlns="{NAMESPACE}">\n')
    out.write(_header(profile, orgnr, company_name, first, created, last, days[-1][0]) + "\n")
    out.write("<company>" + _master_data(profile, orgnr, company_name) + "\n")
    out.write(f"<location>{_el('name', company_name)}\n")
    # Pass 2: the same receipts again, written one by one.
    for index in range(profile.registers):
        register = days[0][1][index].register
        out.write(f"<cashregister>{_el('registerID', register)}{_el('regDesc', f'Kasse {index + 1}')}\n")
        for (day, plans), day_totals in zip(days, totals, strict=True):
            plan = plans[index]
            if plan.count or z_always:
                report_id = f"{plan.register}-{day:%Y%m%d}"
                z_event = _z_event(profile, orgnr, company_name, plan, day_totals[index], report_id, z_amounts)
                out.write(z_event + "\n")
        for day, plans in days:
            plan = plans[index]
            signature = "0"
            for offset, receipt in enumerate(_receipts(plan, profile, day, zone, min_lines)):
                xml, signature = _transaction(receipt, plan.nr_start + offset, plan.register, signature)
                out.write(xml + "\n")
        out.write("</cashregister>\n")
    out.write("</location>\n</company>\n</auditfile>\n")


def _plans(profile: DemoProfile, orgnr: str, day: dt.date, receipts: int | None, zone: ZoneInfo) -> list[_RegisterPlan]:
    plans = []
    for index in range(profile.registers):
        register = f"{profile.name.upper()}-{index + 1:02d}"
        if receipts is None:
            count = _default_count(profile, orgnr, register, day)
        else:
            count = receipts // profile.registers + (1 if index < receipts % profile.registers else 0)
        rng = random.Random(f"kassebro-demo|z|{profile.name}|{orgnr}|{day}|{register}")
        z_at = _instant(day, profile.z_minute + rng.randint(0, 9), zone)
        plans.append(
            _RegisterPlan(
                register=register,
                index=index,
                count=count,
                nr_start=_nr_start(profile, orgnr, register, day),
                seed=f"kassebro-demo|{profile.name}|{orgnr}|{day}|{register}",
                z_time=z_at.astimezone(zone).replace(tzinfo=None),
                cash_difference=_has_cash_difference(profile, orgnr, register, day),
            )
        )
    return plans


def _write_file(
    path: Path,
    profile: DemoProfile,
    orgnr: str,
    company_name: str,
    days: list[tuple[dt.date, list[_RegisterPlan]]],
    zone: ZoneInfo,
    created: dt.datetime,
    min_lines: int = 1,
    z_amounts: str = "gross",
    z_always: bool = False,
) -> Path:
    if z_amounts not in ("gross", "net"):
        raise ValueError(f"z_amounts must be 'gross' or 'net', not {z_amounts!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # never leave a half-written .xml behind
    with open(partial, "w", encoding="utf-8", newline="\n") as out:
        _write(out, profile, orgnr, company_name, days, zone, created, min_lines, z_amounts, z_always)
    os.replace(partial, path)
    return path


def _profile(name: str) -> DemoProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown demo profile {name!r}; choose one of {sorted(PROFILES)}") from None


def write_day(
    profile: str,
    orgnr: str,
    company_name: str,
    day: dt.date,
    out_dir: Path,
    *,
    tz: str = "Europe/Oslo",
    receipts: int | None = None,
    z_amounts: str = "gross",
    z_without_sales: bool = False,
) -> Path:
    """Write one business day of `profile` for a company to out_dir and return the file's path.

    `receipts` is the day's total over all registers (default: a deterministic number per register
    from the profile's range, a quarter more on Fridays and Saturdays, none on the shop's Sundays).
    A register without sales writes no Z report, unless `z_without_sales` (a POS that closes the
    day with a Z report of zeros). The same arguments always give the same bytes.
    """
    demo = _profile(profile)
    zone = ZoneInfo(tz)
    created = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6, 0))
    plans = _plans(demo, orgnr, day, receipts, zone)
    path = Path(out_dir) / file_name(orgnr, created)
    return _write_file(
        path, demo, orgnr, company_name, [(day, plans)], zone, created, z_amounts=z_amounts, z_always=z_without_sales
    )


def write_range(
    profile: str,
    orgnr: str,
    name: str,
    first: dt.date,
    last: dt.date,
    out_dir: Path,
    *,
    tz: str = "Europe/Oslo",
    z_amounts: str = "gross",
) -> list[Path]:
    """Write every business day from first to last (inclusive), one file each."""
    days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    return [write_day(profile, orgnr, name, day, out_dir, tz=tz, z_amounts=z_amounts) for day in days]


def write_period(
    profile: str,
    orgnr: str,
    company_name: str,
    first: dt.date,
    last: dt.date,
    path: Path,
    *,
    tz: str = "Europe/Oslo",
    z_amounts: str = "gross",
    receipts: int | None = None,
) -> Path:
    """Write every business day from first to last (inclusive) into ONE file at `path`.

    Like a POS exporting a period: one `cashregister` per register holding every day's Z report,
    then every day's transactions (numbers continue from day to day). The days' receipts are the
    ones `write_day` writes (or `receipts` a day, numbered on from the first day's). Streams: only
    each day's Z totals are held, so memory does not grow with the number of days.
    """
    demo = _profile(profile)
    zone = ZoneInfo(tz)
    created = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(6, 0))
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    plans = [(day, _plans(demo, orgnr, day, receipts, zone)) for day in days]
    if receipts is not None:  # the numbers go on from each register's previous day, unbroken
        for (_day, before), (_next, after) in zip(plans, plans[1:], strict=False):
            for plan, following in zip(before, after, strict=True):
                following.nr_start = plan.nr_start + plan.count
    return _write_file(Path(path), demo, orgnr, company_name, plans, zone, created, z_amounts=z_amounts)


def write_large_day(
    path: Path,
    day: dt.date,
    receipts: int = 50_000,
    *,
    profile: str = "shop",
    orgnr: str = "999999999",
    company_name: str = "Stor Butikk AS",
    tz: str = "Europe/Oslo",
    min_lines: int = 3,
    z_amounts: str = "gross",
    registers: int | None = None,
) -> Path:
    """Write a big day for benchmarks: `receipts` receipts, sales of at least `min_lines` lines,
    spread over `registers` registers (default: the profile's).

    Streams receipt by receipt (generated twice: once for the Z totals, which come first in the
    file, once to write), so memory stays small whatever the size. With the defaults a receipt
    averages over 4 lines, so 50,000 receipts make a 200,000-line day.
    """
    demo = _profile(profile)
    if registers is not None:
        from dataclasses import replace

        demo = replace(demo, registers=registers)
    zone = ZoneInfo(tz)
    created = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6, 0))
    plans = _plans(demo, orgnr, day, receipts, zone)
    return _write_file(
        Path(path), demo, orgnr, company_name, [(day, plans)], zone, created, min_lines=min_lines, z_amounts=z_amounts
    )
