"""Øre arithmetic: money is an int of øre everywhere inside kassebro.

Amounts cross the boundary as decimal strings (SAF-T, YAML) or JSON numbers with two decimals
(ledger APIs); these helpers are the only places where that conversion happens, so a float never
touches an amount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

Ore = int
"""An amount in øre (1/100 NOK). Signed; the sign convention is set by the record holding it."""

_HUNDRED = Decimal(100)


def parse_ore(text: str | Decimal | int) -> Ore:
    """Parse a decimal amount in kroner ("86.40", "-0.4", 12) into øre, rounding half up.

    Raises ValueError for text that is not a number, so callers can say which field was bad.
    """
    try:
        value = text if isinstance(text, Decimal) else Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    return int((value * _HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ore_to_decimal(ore: Ore) -> Decimal:
    """Øre as a Decimal in kroner with two places (for JSON payloads and display)."""
    return (Decimal(ore) / _HUNDRED).quantize(Decimal("0.01"))


def format_ore(ore: Ore) -> str:
    """Øre as a plain kroner string with two decimals, e.g. -1234 -> "-12.34"."""
    return f"{ore_to_decimal(ore):.2f}"


def parse_rate_bp(text: str | Decimal | int) -> int:
    """Parse a VAT percentage ("25.00", "15") into basis points (2500, 1500)."""
    return parse_ore(text)


def vat_from_gross(gross: Ore, rate_bp: int) -> Ore:
    """VAT contained in a gross amount at a rate, rounded half up to the øre (as ledgers do)."""
    if rate_bp == 0:
        return 0
    value = Decimal(gross) * Decimal(rate_bp) / (Decimal(10000) + Decimal(rate_bp))
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
