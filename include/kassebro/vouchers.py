"""Canonical sales frames -> one balanced voucher per vendor and business day (the booking rules).

The rules, and why, are in docs/booking-rules.md. In short:

- Revenue is grouped per (account, VAT code, department, project) in gross, because every target
  ledger recomputes VAT from gross and a VAT code. Returns get their own lines unless the mapping
  nets them. A bill discount is spread over the receipt's VAT rates, then over the accounts within
  a rate, pro rata to gross with largest-remainder rounding, before grouping.
- The øre difference between the POS's VAT and the recomputation is reported on the voucher and
  must stay within `vat_tolerance_ore` per VAT code.
- Tips, gift cards sold and deposits are not revenue: their accounts, no VAT code. Payments are one
  net line per payment account (gift cards and credit notes redeemed are payments to liabilities).
- What a receipt's payments do not cover goes to the receivable (credit sales) or, for a cash
  count, to the cash difference account; cash rounding gets its own line. The voucher sums to 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from kassebro.booking.allocation import largest_remainder
from kassebro.config import LedgerMap, Vendor
from kassebro.errors import Issue, ValidationFailed
from kassebro.frames import SalesDay
from kassebro.money import format_ore, vat_from_gross
from kassebro.voucher import Voucher, VoucherLine, external_ref

# VAT rate (basis points) -> standard tax code for sales, used when a POS leaves the code out.
_SALES_CODE_BY_RATE = {2500: "3", 1500: "31", 1200: "33", 1100: "33", 0: "6"}

CREDIT_SALE_CODES = frozenset({"11002", "11015", "11017"})
"""Transaction codes (code list 11) whose unpaid part is a receivable: credit sale, cash and credit
sale, credit sale and return."""
CASH_DIFFERENCE_CODES = frozenset({"11008"})
"""Transaction code of a cash count: its payments are the difference counted minus expected."""

NO_VAT_CODE = "none"
"""The per-code VAT figures' key for POS VAT found on lines booked without a VAT code."""

_BUCKET = ["account", "book_vat", "vat_rate_bp", "department", "project", "kind"]
_RECEIPT = ["register_id", "trans_id"]
_MAX_LISTED = 20  # rows named in one issue before "... and N more"

# Order of roles among lines on the same account (the voucher is sorted by account first).
_ROLE_RANK = {"revenue": 0, "return": 1, "tips": 2, "payment": 3, "receivable": 4, "rounding": 5, "cash": 6}


def _std_code(code: str, rate_bp: int) -> str:
    return code or _SALES_CODE_BY_RATE.get(rate_bp, "")


@dataclass
class _Bucket:
    """One revenue voucher line in the making."""

    gross: int = 0
    pos_vat: int = 0
    label: str = ""


@dataclass
class _Build:
    vendor: Vendor
    day: SalesDay
    issues: list[Issue] = field(default_factory=list)
    lines: list[tuple[str, VoucherLine]] = field(default_factory=list)  # (role, line)

    @property
    def mapping(self) -> LedgerMap:
        return self.vendor.mapping

    @property
    def source(self) -> str:
        return f"{self.vendor.id}/{self.day.business_day.isoformat()}"

    def issue(self, rule: str, message: str) -> None:
        self.issues.append(Issue(self.source, rule, message))

    def add(self, role: str, account: str, amount: int, vat_code: str | None, text: str, dept: str, proj: str) -> None:
        if amount:
            self.lines.append((role, VoucherLine(account, amount, vat_code, text, dept or None, proj or None)))

    @property
    def department(self) -> str:
        return self.vendor.department or ""

    @property
    def project(self) -> str:
        return self.vendor.project or ""


def build_voucher(day: SalesDay, vendor: Vendor) -> Voucher:
    """Build the day's balanced voucher, or raise ValidationFailed listing every rule it breaks.

    An empty day gives a voucher with no lines: it is recorded, never posted. Building the same
    day twice gives the same voucher (lines sorted; same digest).
    """
    build = _Build(vendor, day)
    vat_figures = _revenue(build)
    _tips(build)
    _payments(build)
    _receipt_differences(build)
    _rounding(build)
    _check_vat(build, vat_figures)
    if build.issues:
        raise ValidationFailed(
            sorted(build.issues, key=lambda i: (i.rule, i.message)),
            headline=f"vendor {vendor.id}, business day {day.business_day}: cannot book",
        )
    lines = sorted(
        build.lines,
        key=lambda rl: (
            rl[1].account,
            _ROLE_RANK[rl[0]],
            rl[1].vat_code or "",
            rl[1].department or "",
            rl[1].project or "",
            rl[1].description,
            rl[1].amount,
        ),
    )
    voucher_lines = tuple(line for _, line in lines)
    total = sum(line.amount for line in voucher_lines)
    if total != 0:  # cannot happen when every receipt is classified; kept as the last guard
        raise ValidationFailed(
            Issue(build.source, "voucher_balances", f"postings sum to {format_ore(total)}, not 0.00"),
            headline=f"vendor {vendor.id}, business day {day.business_day}: voucher does not balance",
        )
    vat_difference = sum(fig["difference"] for fig in vat_figures.values())
    return Voucher(
        vendor_id=vendor.id,
        business_day=day.business_day,
        external_ref=external_ref(vendor.id, day.business_day),
        description=f"POS dagsoppgjør {vendor.name} {day.business_day.isoformat()}",
        lines=voucher_lines,
        vat_difference=vat_difference,
        meta={"vat_by_code": json.dumps(vat_figures, sort_keys=True)} if vat_figures else {},
    )


# ---------------------------------------------------------------------------------------------
# Revenue

_RAW = ["art_group_id", "art_group_code", "std_vat_code", "vat_rate_bp", "line_type", "cost_centre", "project"]
"""What a sales line's bucket depends on: the raw columns grouped once, resolved in Python."""


def _dims(build: _Build, cost_centre: object, project: object) -> tuple[str, str]:
    """Department and project: the vendor's, or the line's own when the mapping says so."""
    department, proj = build.department, build.project
    if build.mapping.use_line_projects:
        department = str(cost_centre) if isinstance(cost_centre, str) and cost_centre else department
        proj = str(project) if isinstance(project, str) and project else proj
    return department, proj


class _Resolver:
    """Raw line columns -> revenue bucket key (account, VAT code, rate, department, project, kind)."""

    def __init__(self, build: _Build) -> None:
        self.build = build
        self.unmapped: set[tuple[str, str]] = set()
        self.labels: dict[tuple, str] = {}
        self._cache: dict[tuple, tuple | None] = {}

    def bucket(self, raw: tuple) -> tuple | None:
        """Memoised: a big day has a few dozen distinct raw keys but thousands of receipts."""
        if raw not in self._cache:
            self._cache[raw] = self._bucket(raw)
        return self._cache[raw]

    def _bucket(self, raw: tuple) -> tuple | None:
        group, code, std, rate, line_type, cost_centre, project = raw
        group, code, rate = str(group), "" if pd.isna(code) else str(code), int(rate)
        key = self.build.mapping.key_for(group, code)
        if key is None:
            self.unmapped.add((group, code))
            return None
        vat_code = _std_code("" if pd.isna(std) else str(std), rate) if key.vat else ""
        department, proj = _dims(self.build, cost_centre, project)
        kind = "return" if line_type == "return" and not self.build.mapping.net_returns else "sale"
        std_code = _std_code("" if pd.isna(std) else str(std), rate)
        bucket = (key.account_for(rate, std_code), vat_code, rate, department, proj, kind)
        if not key.vat:
            label = self.labels.get(bucket)
            self.labels[bucket] = key.description if label is None else min(label, key.description)
        return bucket

    def report_unmapped(self, sales: pd.DataFrame) -> None:
        for group, code in sorted(self.unmapped):
            frame = sales[(sales["art_group_id"] == group) & (sales["art_group_code"].fillna("") == code)]
            products = sorted(set(frame["description"].astype(str)) | set(frame["article_id"].astype(str)))
            self.build.issue(
                "key_mapped",
                f"accounting key {group!r} (SAF-T code {code or 'none'}) has no account; "
                f"products under it: {', '.join(p for p in products if p)[:300]}",
            )


def _revenue(build: _Build) -> dict[str, dict[str, int]]:
    """Add the revenue lines; return the VAT figures per VAT code (POS, recomputed, difference)."""
    sales = build.day.lines[build.day.lines["line_type"] != "tip"]
    resolver = _Resolver(build)
    buckets: dict[tuple, _Bucket] = {}
    grouped = sales.groupby(_RAW, sort=True, dropna=False)[["gross", "vat"]].sum()
    for raw, gross, vat in zip(grouped.index, grouped["gross"], grouped["vat"], strict=True):
        key = resolver.bucket(raw)
        if key is not None:
            bucket = buckets.setdefault(key, _Bucket())
            bucket.gross += int(gross)
            bucket.pos_vat += int(vat)
    resolver.report_unmapped(sales)
    _spread_bill_discounts(build, sales, resolver, buckets)

    figures: dict[str, dict[str, int]] = {}
    for (account, vat_code, rate, dept, proj, kind), bucket in sorted(buckets.items()):
        recomputed = vat_from_gross(bucket.gross, rate) if vat_code else 0
        if vat_code or bucket.pos_vat:
            fig = figures.setdefault(vat_code or NO_VAT_CODE, {"pos": 0, "recomputed": 0, "difference": 0})
            fig["pos"] += bucket.pos_vat
            fig["recomputed"] += recomputed
            fig["difference"] += bucket.pos_vat - recomputed
        word = "Retur" if kind == "return" else "Salg"
        if vat_code:
            text = f"{word} {rate / 100:g} % mva ({account})"
        else:
            label = resolver.labels.get((account, vat_code, rate, dept, proj, kind)) or "uten mva"
            text = f"{word} {label} ({account})"
        build.add(
            "return" if kind == "return" else "revenue", account, -bucket.gross, vat_code or None, text, dept, proj
        )
    return figures


def _spread_bill_discounts(build: _Build, sales: pd.DataFrame, resolver: _Resolver, buckets: dict) -> None:
    """Take each receipt's bill discount off its revenue buckets, by VAT rate, then by account.

    The discount goes on the receipt's buckets whose gross has the sign of the receipt's revenue
    (a sale's discount on its sale lines, a return's on its return lines), on keys with a VAT code
    when the receipt has any, else on its keys without VAT. Stage 1 splits it over (VAT code, rate)
    pro rata to gross, stage 2 splits each rate's part over the buckets of that rate (accounts,
    dimensions); both by largest remainder, so the parts sum exactly to the discount and the
    per-rate figures do not depend on how the accounts are mapped. The POS VAT of a bucket drops by
    the VAT of its part (vat_from_gross), since the lines' VAT is before the bill discount.
    """
    receipts = build.day.receipts
    discounted = receipts.loc[receipts["bill_discount"] != 0, [*_RECEIPT, "bill_discount"]]
    if discounted.empty:
        return
    discounts = discounted.groupby(_RECEIPT, sort=True)["bill_discount"].sum()
    keyed = sales[pd.MultiIndex.from_frame(sales[_RECEIPT]).isin(discounts.index)]
    per_receipt = keyed.groupby([*_RECEIPT, *_RAW], sort=True, dropna=False)["gross"].sum()
    by_receipt: dict[tuple[str, str], dict[tuple, int]] = {}
    for raw, gross in per_receipt.items():
        key = resolver.bucket(tuple(raw[2:]))
        if key is not None:
            parts = by_receipt.setdefault((str(raw[0]), str(raw[1])), {})
            parts[key] = parts.get(key, 0) + int(gross)
    for (register, trans), discount in discounts.items():
        discount = int(discount)
        if discount == 0:
            continue
        parts = by_receipt.get((str(register), str(trans)), {})
        total = sum(parts.values())
        sign = (total > 0) - (total < 0) or ((discount > 0) - (discount < 0))
        candidates = [(k, g) for k, g in sorted(parts.items()) if g * sign > 0]
        candidates = [(k, g) for k, g in candidates if k[1]] or candidates
        if not candidates:
            if not resolver.unmapped:  # else the receipt's lines may be the unmapped ones
                build.issue(
                    "bill_discount",
                    f"receipt {trans} on register {register} has a bill discount of {format_ore(discount)} "
                    "but no sales line to spread it over",
                )
            continue
        rates: dict[tuple[str, int], list[tuple[tuple, int]]] = {}
        for k, g in candidates:
            rates.setdefault((k[1], k[2]), []).append((k, abs(g)))
        rate_keys = sorted(rates)
        rate_parts = largest_remainder(discount, [sum(w for _, w in rates[r]) for r in rate_keys])
        for rate_key, rate_part in zip(rate_keys, rate_parts, strict=True):
            members = rates[rate_key]
            for (bucket_key, _w), part in zip(
                members, largest_remainder(rate_part, [w for _, w in members]), strict=True
            ):
                bucket = buckets[bucket_key]
                bucket.gross -= part
                if bucket_key[1]:
                    bucket.pos_vat -= vat_from_gross(part, bucket_key[2])


def _check_vat(build: _Build, figures: dict[str, dict[str, int]]) -> None:
    tolerance = build.mapping.vat_tolerance_ore
    over = {code: fig for code, fig in figures.items() if abs(fig["difference"]) > tolerance}
    if over:
        detail = "; ".join(
            f"VAT code {code}: POS {format_ore(fig['pos'])}, recomputed from gross {format_ore(fig['recomputed'])}, "
            f"difference {format_ore(fig['difference'])}"
            for code, fig in sorted(figures.items())
        )
        build.issue(
            "vat_difference",
            f"POS VAT differs from VAT recomputed from gross by more than {format_ore(tolerance)} "
            f"for code(s) {', '.join(sorted(over))}: {detail}",
        )


# ---------------------------------------------------------------------------------------------
# Not revenue, payments, receivables, rounding, cash differences


def _tips(build: _Build) -> None:
    tips = build.day.lines[build.day.lines["line_type"] == "tip"]
    if tips.empty:
        return
    per_dims: dict[tuple[str, str], int] = {}
    grouped = tips.groupby(["cost_centre", "project"], sort=True, dropna=False)["gross"].sum()
    for (cost_centre, project), gross in grouped.items():
        dims = _dims(build, cost_centre, project)
        per_dims[dims] = per_dims.get(dims, 0) + int(gross)
    for (department, project), gross in sorted(per_dims.items()):
        build.add("tips", build.mapping.tips_account, -gross, None, "Tips til ansatte", department, project)


def _payments(build: _Build) -> None:
    """One net line per payment account: cash net of change, gift cards and credit notes redeemed."""
    per_account: dict[str, list] = {}
    for (ptype, pcode), amount in (
        build.day.payments.groupby(["payment_type", "payment_code"], sort=True, dropna=False)["amount"].sum().items()
    ):
        account = build.mapping.payment_account(str(ptype), str(pcode))
        if account is None:
            build.issue("payment_mapped", f"payment type {ptype!r} (SAF-T code {pcode or 'none'}) has no account")
            continue
        entry = per_account.setdefault(account, [0, []])
        entry[0] += int(amount)
        entry[1].append(str(ptype))
    for account, (amount, types) in sorted(per_account.items()):
        build.add("payment", account, amount, None, f"Betaling {', '.join(types)}", build.department, build.project)


def _receipt_differences(build: _Build) -> None:
    """Book what a receipt's payments do not cover: receivable (credit sale) or cash difference.

    difference = payments - (lines - bill discount + rounding); 0 for an ordinary receipt.
    """
    day = build.day
    stacked = pd.concat(
        [
            pd.DataFrame({"register_id": day.payments["register_id"], "trans_id": day.payments["trans_id"]}).assign(
                difference=day.payments["amount"].to_numpy()
            ),
            pd.DataFrame({"register_id": day.lines["register_id"], "trans_id": day.lines["trans_id"]}).assign(
                difference=-day.lines["gross"].to_numpy()
            ),
            pd.DataFrame({"register_id": day.receipts["register_id"], "trans_id": day.receipts["trans_id"]}).assign(
                difference=(day.receipts["bill_discount"] - day.receipts["rounding"]).to_numpy()
            ),
        ],
        ignore_index=True,
    )
    if stacked.empty:
        return
    differences = stacked.groupby(_RECEIPT, sort=True)["difference"].sum()
    differences = differences[differences != 0]
    if differences.empty:
        return
    heads = day.receipts.drop_duplicates(_RECEIPT).set_index(_RECEIPT)[["trans_code", "customer_id"]]
    joined = differences.to_frame().join(heads, how="left").fillna({"trans_code": "", "customer_id": ""})
    open_rows = [
        (str(register), str(trans), int(difference), str(code), str(customer))
        for (register, trans), difference, code, customer in zip(
            joined.index, joined["difference"], joined["trans_code"], joined["customer_id"], strict=True
        )
    ]
    receivable: dict[str, int] = {}
    cash: list[tuple[str, str, int]] = []
    unbalanced: list[str] = []
    no_customer: list[str] = []
    for register, trans, difference, code, customer in open_rows:
        if code in CREDIT_SALE_CODES:
            if customer:
                receivable[customer] = receivable.get(customer, 0) - difference
            else:
                no_customer.append(f"receipt {trans} on register {register} ({format_ore(-difference)} unpaid)")
        elif code in CASH_DIFFERENCE_CODES:
            cash.append((str(register), str(trans), difference))
        else:
            unbalanced.append(_receipt_detail(day, str(register), str(trans), difference))
    if unbalanced:
        build.issue("receipt_balances", f"{len(unbalanced)} receipt(s) do not balance: {_listing(unbalanced)}")
    if no_customer:
        build.issue("credit_sale_customer", f"credit sale(s) without a customer: {_listing(no_customer)}")
    for customer, amount in sorted(receivable.items()):
        build.add(
            "receivable",
            build.mapping.receivable_account,
            amount,
            None,
            f"Kredittsalg kunde {customer}",
            build.department,
            build.project,
        )
    if cash:
        gross = sum(abs(d) for _, _, d in cash)
        limit = build.mapping.max_cash_difference_ore
        if gross > limit:
            listed = [f"receipt {t} on register {r}: {format_ore(d)}" for r, t, d in cash]
            build.issue(
                "cash_difference_limit",
                f"cash differences of {format_ore(gross)} in all exceed the maximum {format_ore(limit)}: "
                f"{_listing(listed)}",
            )
        amount = -sum(d for _, _, d in cash)
        build.add(
            "cash",
            build.mapping.cash_difference_account,
            amount,
            None,
            "Kassedifferanse",
            build.department,
            build.project,
        )


def _receipt_detail(day: SalesDay, register: str, trans: str, difference: int) -> str:
    def total(frame: pd.DataFrame, column: str) -> int:
        rows = (frame["register_id"] == register) & (frame["trans_id"] == trans)
        return int(frame.loc[rows, column].sum())

    return (
        f"receipt {trans} on register {register}: lines {format_ore(total(day.lines, 'gross'))} - bill discount "
        f"{format_ore(total(day.receipts, 'bill_discount'))} + rounding {format_ore(total(day.receipts, 'rounding'))} "
        f"!= payments {format_ore(total(day.payments, 'amount'))} (difference {format_ore(difference)})"
    )


def _rounding(build: _Build) -> None:
    mapping = build.mapping
    rounding = int(build.day.receipts["rounding"].sum())
    if abs(rounding) > mapping.max_rounding_ore:
        build.issue(
            "rounding_limit",
            f"cash rounding {format_ore(rounding)} exceeds the maximum {format_ore(mapping.max_rounding_ore)}",
        )
    build.add("rounding", mapping.rounding_account, -rounding, None, "Øreavrunding", build.department, build.project)


def _listing(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown}; ... and {len(items) - _MAX_LISTED} more"
