"""Canonical sales frames -> one balanced voucher per vendor and business day (the booking rules).

The rules, and why, are in docs/booking-rules.md. In short:

- Revenue is grouped per (account, VAT code, department, project) in gross, because every target
  ledger recomputes VAT from gross and a VAT code. Returns get their own lines unless the mapping
  nets them. A bill discount is spread over the receipt's VAT codes by the one allocator
  (`core.allocation.bill_discount_parts`, the split validation holds the Z report to), then
  each code's part over the accounts of its lines, pro rata to gross with largest remainder.
- The øre difference between the POS's VAT and the recomputation is reported on the voucher and
  must stay within the tolerance per VAT code, which grows with the day: half an øre per POS VAT
  figure (line or discount part), never less than `vat_tolerance_ore`.
- Limits that scale with the day: each receipt's cash rounding at most
  `max_rounding_per_receipt_ore` and the day's at most that times the receipts rounded (never
  less than `max_rounding_ore`); each cash count's difference at most `max_cash_difference_ore`.
- Tips, gift cards sold and deposits are not revenue: their accounts, no VAT code. Payments are one
  net line per payment account (gift cards and credit notes redeemed are payments to liabilities).
- What a receipt's payments do not cover goes to the receivable (credit sales) or, for a cash
  count, to the cash difference account; cash rounding gets its own line. The voucher sums to 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from kassebro.booking.voucher import Voucher, VoucherLine, external_ref
from kassebro.checks.report import CheckResult
from kassebro.config import LedgerMap, Vendor
from kassebro.core.allocation import DISCOUNT_KEY, bill_discount_parts, discounted_lines, largest_remainder
from kassebro.core.errors import Issue, ValidationFailed
from kassebro.core.frames import SalesDay
from kassebro.core.money import format_ore, vat_from_gross
from kassebro.core.saft_codes import CASH_DIFFERENCE_CODE, CREDIT_SALE_CODES, CUSTOMER_ACCOUNT_PAYMENT, sales_vat_code

CASH_DIFFERENCE_CODES = frozenset({CASH_DIFFERENCE_CODE})

NO_VAT_CODE = "none"
"""The per-code VAT figures' key for POS VAT found on lines booked without a VAT code."""

_BUCKET = ["account", "book_vat", "vat_rate_bp", "department", "project", "kind"]
_RECEIPT = ["register_id", "trans_id"]
_MAX_LISTED = 20  # rows named in one issue before "... and N more"

# Order of roles among lines on the same account (the voucher is sorted by account first).
_ROLE_RANK = {"revenue": 0, "return": 1, "tips": 2, "payment": 3, "receivable": 4, "rounding": 5, "cash": 6}


BOOKING_RULES: dict[str, str] = {
    "key_mapped": "every accounting key (article group) has an account",
    "payment_mapped": "every payment type has an account",
    "bill_discount": "every bill discount has sales lines to be taken off",
    "credit_sale_customer": "every credit sale names its customer",
    "credit_sale_invoiceable": "with credit_sales: invoice, every credit sale can be one invoice",
    "rounding_limit": "cash rounding within its limits",
    "cash_difference_limit": "cash differences within their limit",
    "vat_difference": "POS VAT within the tolerance of VAT recomputed from gross, per VAT code",
    "voucher_balances": "the voucher balances to 0.00",
}
"""The booking rules a day can break, with what it means when they hold (the report lists them all)."""


@dataclass
class _Bucket:
    """One revenue voucher line in the making."""

    gross: int = 0
    pos_vat: int = 0
    label: str = ""
    figures: int = 0  # POS VAT figures summed into it (lines and discount parts): the rounding they allow


@dataclass
class _Build:
    vendor: Vendor
    day: SalesDay
    issues: list[Issue] = field(default_factory=list)
    lines: list[tuple[str, VoucherLine]] = field(default_factory=list)  # (role, line)
    facts: dict[str, str] = field(default_factory=dict)  # rule -> what was measured, when it held

    @property
    def mapping(self) -> LedgerMap:
        return self.vendor.mapping

    @property
    def source(self) -> str:
        return f"{self.vendor.id}/{self.day.business_day.isoformat()}"

    def issue(self, rule: str, message: str) -> None:
        self.issues.append(Issue(self.source, rule, message))

    def add(
        self,
        role: str,
        account: str,
        amount: int,
        vat_code: str | None,
        text: str,
        dept: str,
        proj: str,
        customer: str | None = None,
    ) -> None:
        if amount:
            line = VoucherLine(account, amount, vat_code, text, dept or None, proj or None, customer)
            self.lines.append((role, line))

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
    build, voucher = _build(day, vendor)
    if voucher is None:
        raise ValidationFailed(
            sorted(build.issues, key=lambda i: (i.rule, i.message)),
            headline=f"vendor {vendor.id}, business day {day.business_day}: cannot book",
        )
    return voucher


def book(day: SalesDay, vendor: Vendor) -> tuple[Voucher | None, list[CheckResult]]:
    """The voucher (None when a booking rule fails) and one result per booking rule, for the report."""
    build, voucher = _build(day, vendor)
    failed: dict[str, list[str]] = {}
    for issue in sorted(build.issues, key=lambda i: (i.rule, i.message)):
        failed.setdefault(issue.rule, []).append(issue.message)
    results = [
        CheckResult(rule, True, build.facts.get(rule, meaning))
        for rule, meaning in BOOKING_RULES.items()
        if rule not in failed
    ]
    results += [CheckResult(rule, False, "\n".join(messages)) for rule, messages in failed.items()]
    return voucher, results


def _build(day: SalesDay, vendor: Vendor) -> tuple[_Build, Voucher | None]:
    invoiced = None
    if vendor.mapping.credit_sales == "invoice":  # invoiced credit sales book themselves: left out here
        from kassebro.booking.credit_invoices import credit_sales

        invoiced = credit_sales(day, vendor)
        day = _without(day, invoiced.receipts)
    build = _Build(vendor, day)
    if invoiced is not None:
        build.issues.extend(invoiced.issues)
        if invoiced.orders:
            build.facts["credit_sale_invoiceable"] = (
                f"{len(invoiced.orders)} credit sale(s), {format_ore(sum(o.total for o in invoiced.orders))}, "
                "become Tripletex invoices and are left out of the voucher"
            )
    vat_figures = _revenue(build)
    _tips(build)
    _payments(build)
    _receipt_differences(build)
    _rounding(build)
    _check_vat(build, vat_figures)
    if build.issues:
        return build, None
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
        build.issue("voucher_balances", f"postings sum to {format_ore(total)}, not 0.00")
        return build, None
    debit = sum(line.amount for line in voucher_lines if line.amount > 0)
    build.facts["voucher_balances"] = (
        f"the voucher balances: {len(voucher_lines)} lines, {format_ore(debit)} debit and credit"
    )
    vat_difference = sum(fig["difference"] for fig in vat_figures.values())
    return build, Voucher(
        vendor_id=vendor.id,
        business_day=day.business_day,
        external_ref=external_ref(vendor.id, day.business_day),
        description=f"POS dagsoppgjør {vendor.name} {day.business_day.isoformat()}",
        lines=voucher_lines,
        vat_difference=vat_difference,
        meta={**_meta(vat_figures, build), **(_invoiced_meta(invoiced, vendor) if invoiced else {})},
    )


def _invoiced_meta(invoiced: object, vendor: Vendor) -> dict[str, str]:
    from kassebro.booking.credit_invoices import meta_for

    return meta_for(invoiced, vendor)  # type: ignore[arg-type]


def _without(day: SalesDay, receipts: frozenset[tuple[str, str]]) -> SalesDay:
    """The day less these receipts (their lines, payments and receipt rows)."""
    if not receipts:
        return day
    from dataclasses import replace

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        keys = pd.Series(list(zip(frame["register_id"].astype(str), frame["trans_id"].astype(str), strict=True)))
        return frame[~keys.isin(receipts).to_numpy()]

    return replace(day, lines=keep(day.lines), receipts=keep(day.receipts), payments=keep(day.payments))


def _meta(vat_figures: dict, build: _Build) -> dict[str, str]:
    """What the voucher's lines alone do not say: the VAT figures per code, and the payments per
    account (an account may also carry other lines, e.g. gift cards sold and redeemed on one
    liability), which the reconciliation sets against the Z report's payments."""
    payments: dict[str, int] = {}
    for role, line in build.lines:
        if role == "payment":
            payments[line.account] = payments.get(line.account, 0) + line.amount
    meta = {"payments": json.dumps(payments, sort_keys=True)}
    if vat_figures:
        meta["vat_by_code"] = json.dumps(vat_figures, sort_keys=True)
    customers = sorted({line.customer for _, line in build.lines if line.customer})
    if customers:  # who each customer on a line is, as the source declares them, for the ledger's customer
        declared = _customer_rows(build.day)
        meta["customers"] = json.dumps(
            {c: declared.get(c, {"customer_id": c, "name": ""}) for c in customers}, sort_keys=True
        )
        meta["customer_number_start"] = str(build.mapping.customer_number_start)
    return meta


def _customer_rows(day: SalesDay) -> dict[str, dict[str, str]]:
    """The source's declared customers by id (SAF-T customersSuppliers), as plain strings."""
    if day.customers is None or day.customers.empty:
        return {}
    rows = day.customers.fillna("").astype(str).to_dict("records")
    return {row["customer_id"]: row for row in rows}


def _customer_names(day: SalesDay) -> dict[str, str]:
    return {c: row["name"] for c, row in _customer_rows(day).items() if row["name"]}


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
        vat_code = sales_vat_code("" if pd.isna(std) else str(std), rate) if key.vat else ""
        department, proj = _dims(self.build, cost_centre, project)
        kind = "return" if line_type == "return" and not self.build.mapping.net_returns else "sale"
        std_code = sales_vat_code("" if pd.isna(std) else str(std), rate)
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
    grouped = sales.groupby(_RAW, sort=True, dropna=False).agg(
        gross=("gross", "sum"), vat=("vat", "sum"), lines=("gross", "size")
    )
    for raw, gross, vat, count in zip(grouped.index, grouped["gross"], grouped["vat"], grouped["lines"], strict=True):
        key = resolver.bucket(raw)
        if key is not None:
            bucket = buckets.setdefault(key, _Bucket())
            bucket.gross += int(gross)
            bucket.pos_vat += int(vat)
            bucket.figures += int(count)
    resolver.report_unmapped(sales)
    _spread_bill_discounts(build, resolver, buckets)

    figures: dict[str, dict[str, int]] = {}
    for (account, vat_code, rate, dept, proj, kind), bucket in sorted(buckets.items()):
        recomputed = vat_from_gross(bucket.gross, rate) if vat_code else 0
        if vat_code or bucket.pos_vat:
            fig = figures.setdefault(
                vat_code or NO_VAT_CODE, {"pos": 0, "recomputed": 0, "difference": 0, "figures": 0}
            )
            fig["pos"] += bucket.pos_vat
            fig["recomputed"] += recomputed
            fig["difference"] += bucket.pos_vat - recomputed
            fig["figures"] += bucket.figures + 1  # the recomputation rounds each voucher line once more
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


def _spread_bill_discounts(build: _Build, resolver: _Resolver, buckets: dict) -> None:
    """Take each receipt's bill discount off its revenue buckets: per VAT code by the one allocator
    (`bill_discount_parts`, what validation holds the Z report to), then each code's part over the
    buckets (accounts, dimensions) of the lines that took it, pro rata to gross by largest
    remainder, so the parts sum exactly to the discount. The POS VAT of a bucket drops by the VAT
    of its part (vat_from_gross), since the lines' VAT is before the bill discount.
    """
    day = build.day
    if not (day.receipts["bill_discount"] != 0).any():
        return
    eligible = discounted_lines(day.lines, day.receipts)
    parts = bill_discount_parts(day.lines, day.receipts, eligible)
    members = eligible.groupby([*_RECEIPT, *DISCOUNT_KEY, *_RAW], sort=True, dropna=False)["gross"].sum()
    by_part: dict[tuple, dict[tuple | None, int]] = {}
    for index, gross in members.items():
        part_key = (str(index[0]), str(index[1]), str(index[2]), str(index[3]), int(index[4]))
        weights = by_part.setdefault(part_key, {})
        bucket_key = resolver.bucket(tuple(index[5:]))
        weights[bucket_key] = weights.get(bucket_key, 0) + abs(int(gross))
    for register, trans, code, std, rate, discount, count in zip(
        *(parts[c] for c in (*_RECEIPT, *DISCOUNT_KEY, "discount", "lines")), strict=True
    ):
        discount = int(discount)
        if not discount:
            continue
        weights = by_part.get((str(register), str(trans), str(code), str(std), int(rate)))
        if not count or not weights:
            if not resolver.unmapped:  # else the receipt's lines may be the unmapped ones
                build.issue(
                    "bill_discount",
                    f"receipt {trans} on register {register} has a bill discount of {format_ore(discount)} "
                    "but no sales line to take it off",
                )
            continue
        keys = sorted(weights, key=lambda k: (k is None, k or ()))
        for bucket_key, share in zip(keys, largest_remainder(discount, [weights[k] for k in keys]), strict=True):
            if bucket_key is None:
                continue  # an unmapped key: the day is refused for it (key_mapped)
            bucket = buckets[bucket_key]
            bucket.gross -= share
            bucket.figures += 1
            if bucket_key[1]:
                bucket.pos_vat -= vat_from_gross(share, bucket_key[2])


def vat_tolerance(mapping: LedgerMap, figures: int) -> int:
    """The largest |POS VAT - recomputed VAT| allowed for a VAT code summed from `figures` POS VAT
    figures: each was rounded to the øre on its own, so half an øre each by default, and never less
    than the mapping's floor."""
    return max(mapping.vat_tolerance_ore, -(-figures * mapping.vat_tolerance_per_100_figures_ore // 100))


def _check_vat(build: _Build, figures: dict[str, dict[str, int]]) -> None:
    for fig in figures.values():
        fig["allowed"] = vat_tolerance(build.mapping, fig.get("figures", 0))
    over = {code: fig for code, fig in figures.items() if abs(fig["difference"]) > fig["allowed"]}
    detail = "; ".join(
        f"VAT code {code}: POS {format_ore(fig['pos'])}, recomputed from gross {format_ore(fig['recomputed'])}, "
        f"difference {format_ore(fig['difference'])} (allowed {format_ore(fig['allowed'])} for "
        f"{fig.get('figures', 0)} POS figures)"
        for code, fig in sorted(figures.items())
    )
    if over:
        build.issue(
            "vat_difference",
            f"POS VAT differs from VAT recomputed from gross by more than allowed for code(s) "
            f"{', '.join(sorted(over))}: {detail}",
        )
    elif figures:
        build.facts["vat_difference"] = f"POS VAT within the tolerance of VAT recomputed from gross: {detail}"


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
    """One net line per payment account: cash net of change, gift cards and credit notes redeemed.

    With customer postings (`Vendor.customer_postings`), what is paid "on the customer's account"
    (12006) by a receipt that names its customer goes to the customer account instead, one line per
    customer with the customer on it, like a credit sale's unpaid part."""
    payments = build.day.payments
    if build.vendor.customer_postings and len(payments):
        payments = _customer_account_payments(build, payments)
    per_account: dict[str, list] = {}
    for (ptype, pcode), amount in (
        payments.groupby(["payment_type", "payment_code"], sort=True, dropna=False)["amount"].sum().items()
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


def _customer_account_payments(build: _Build, payments: pd.DataFrame) -> pd.DataFrame:
    """Book 12006 payments of receipts with a customer on the customer account; return the rest."""
    heads = build.day.receipts.drop_duplicates(_RECEIPT)[[*_RECEIPT, "customer_id"]]
    joined = payments.merge(heads, on=_RECEIPT, how="left")
    joined["customer_id"] = joined["customer_id"].fillna("")
    on_account = (joined["payment_code"] == CUSTOMER_ACCOUNT_PAYMENT) & (joined["customer_id"] != "")
    if not on_account.any():
        return payments
    names = _customer_names(build.day)
    for customer, amount in joined[on_account].groupby("customer_id", sort=True)["amount"].sum().items():
        name = names.get(str(customer), "")
        text = f"Kredittsalg {name} (kunde {customer})" if name else f"Kredittsalg kunde {customer}"
        account = build.mapping.customer_account
        build.add("receivable", account, int(amount), None, text, build.department, build.project, str(customer))
    return payments[~on_account.to_numpy()]


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
    on_customers = build.vendor.customer_postings
    names = _customer_names(day) if on_customers else {}
    for customer, amount in sorted(receivable.items()):
        if on_customers:  # the ledger's customer account, the customer on the posting
            name = names.get(customer, "")
            text = f"Kredittsalg {name} (kunde {customer})" if name else f"Kredittsalg kunde {customer}"
            account, who = build.mapping.customer_account, customer
        else:
            text, account, who = f"Kredittsalg kunde {customer}", build.mapping.receivable_account, None
        build.add("receivable", account, amount, None, text, build.department, build.project, who)
    if cash:
        limit = build.mapping.max_cash_difference_ore
        over = [f"receipt {t} on register {r}: {format_ore(d)}" for r, t, d in cash if abs(d) > limit]
        if over:
            build.issue(
                "cash_difference_limit",
                f"{len(over)} cash count(s) differ by more than the maximum {format_ore(limit)}: {_listing(over)}",
            )
        else:
            build.facts["cash_difference_limit"] = (
                f"{len(cash)} cash count(s), {format_ore(-sum(d for _, _, d in cash))} in all, each within "
                f"{format_ore(limit)}"
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
    receipts = build.day.receipts
    rounding = int(receipts["rounding"].sum())
    per_receipt = mapping.max_rounding_per_receipt_ore
    rounded = receipts[receipts["rounding"] != 0]
    over = rounded[rounded["rounding"].abs() > per_receipt]
    day_limit = max(mapping.max_rounding_ore, per_receipt * len(rounded))
    if len(over):
        listed = [
            f"receipt {t} on register {r}: {format_ore(int(a))}"
            for r, t, a in zip(over["register_id"], over["trans_id"], over["rounding"], strict=True)
        ]
        build.issue(
            "rounding_limit",
            f"{len(over)} receipt(s) round by more than {format_ore(per_receipt)}: {_listing(listed)}",
        )
    if abs(rounding) > day_limit:
        build.issue(
            "rounding_limit",
            f"cash rounding {format_ore(rounding)} exceeds the maximum {format_ore(day_limit)} "
            f"({len(rounded)} receipts rounded)",
        )
    elif not len(over):
        build.facts["rounding_limit"] = (
            f"cash rounding {format_ore(rounding)} on {len(rounded)} receipts, each within "
            f"{format_ore(per_receipt)}, the day within {format_ore(day_limit)}"
        )
    build.add("rounding", mapping.rounding_account, -rounding, None, "Øreavrunding", build.department, build.project)


def _listing(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown}; ... and {len(items) - _MAX_LISTED} more"
