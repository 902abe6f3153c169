"""The sandboxes' own money arithmetic: øre, two-decimal amounts and VAT, exact and independent.

The sandboxes stand in for the ledger systems, so they must not share kassebro's booking, money or
VAT code (kassebro.core.money and friends): a sandbox that asked kassebro how to round would always
agree with kassebro, and a rounding disagreement with the real system could never show. What is
here is only the arithmetic the systems' documents describe; which rule a system applies (VAT out
of a gross amount, or on top of a net one) and how it rounds is stated beside each sandbox's own
rule function (`tripletex.generated_vat`, `fiken.vat_added`, `poweroffice.line_vat`,
`duett.line_vat`), with what is documented and what is INFERRED.

Amounts are kept as whole øre (int). The systems take kroner with two decimals (Tripletex,
PowerOffice, Duett: "Amounts should be rounded to 2 decimals") or integer øre (Fiken), so a valid
amount converts exactly; VAT is computed exactly (fractions) and rounded once, at the end.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

Ore = int  # whole øre, 1/100 NOK
TWO_PLACES = Decimal("0.01")


def to_ore(amount: Decimal) -> Ore:
    """Kroner with at most two decimals -> øre, exactly; ValueError for a third decimal or NaN."""
    if not amount.is_finite() or amount != amount.quantize(TWO_PLACES):
        raise ValueError(f"not an amount with at most two decimals: {amount}")
    return int(amount.scaleb(2))


def from_ore(ore: Ore) -> Decimal:
    """Øre -> kroner with exactly two decimals (12345 -> 123.45, 0 -> 0.00)."""
    return Decimal(ore).scaleb(-2)


def parse_amount(value: Any, field: str, errors: dict[str, list[str]]) -> Ore | None:
    """A JSON amount (number or numeric string) with at most two decimals, in øre; a refusal is
    added to `errors[field]` (ASP.NET's ValidationProblemDetails wording) and None returned."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        errors.setdefault(field, []).append("The amount must be a number.")
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        errors.setdefault(field, []).append("The amount must be a number.")
        return None
    if not amount.is_finite():
        errors.setdefault(field, []).append("The amount must be a number.")
        return None
    if amount != amount.quantize(TWO_PLACES):
        errors.setdefault(field, []).append("The amount can have at most two decimals.")
        return None
    return to_ore(amount)


def percent(rate: str | Decimal | int) -> Fraction:
    """A rate written in percent ("25", "11.11") as an exact fraction (1/4, 1111/10000)."""
    return Fraction(Decimal(str(rate))) / 100


def fraction(rate: str | Decimal) -> Fraction:
    """A rate written as a fraction of one ("0.25", PowerOffice's VatRate) as an exact fraction."""
    return Fraction(Decimal(str(rate)))


def vat_in_gross(gross: Ore, rate: Fraction) -> Fraction:
    """The VAT contained in a gross amount at `rate`, exactly: gross x rate / (1 + rate)."""
    return gross * rate / (1 + rate)


def vat_on_net(net: Ore, rate: Fraction) -> Fraction:
    """The VAT on top of a net amount at `rate`, exactly: net x rate."""
    return net * rate


def round_half_up(value: Fraction) -> Ore:
    """To the nearest øre; exactly half an øre goes away from zero (1.5 -> 2, -1.5 -> -2), so a
    credit rounds as the same debit would."""
    magnitude = int(abs(value) + Fraction(1, 2))  # int() of a positive fraction is its floor
    return magnitude if value >= 0 else -magnitude
