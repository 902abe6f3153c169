"""Splitting øre exactly: largest remainder, and the one bill-discount split everything uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` øre pro rata to non-negative integer `weights`; the parts sum to `total`.

    Each part is the floor of its exact share (of |total|); the øre left over go one each to the
    parts with the largest remainders, ties to the earliest weight, so the result is deterministic
    and depends only on the order of `weights`. The sign of `total` is carried by every part.
    Raises ValueError when the weights are negative or sum to 0 while `total` is not 0.
    """
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must not be negative: {list(weights)}")
    whole = sum(weights)
    if total == 0:
        return [0] * len(weights)
    if whole == 0:
        raise ValueError(f"cannot spread {total} øre over weights that sum to 0")
    sign = 1 if total > 0 else -1
    amount = abs(total)
    parts = [amount * w // whole for w in weights]
    remainders = [amount * w % whole for w in weights]
    left = amount - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return [sign * part for part in parts]


# ---------------------------------------------------------------------------------------------
# Bill discounts: the one split, used by validation (Z totals per VAT code), booking and the demo POS

DISCOUNT_KEY = ["vat_code", "std_vat_code", "vat_rate_bp"]
"""A receipt's bill discount is split over its own VAT codes: the Z report's per-code sales are after it."""

_RECEIPT = ["register_id", "trans_id"]


def split_over_codes(discount: int, weights: dict[tuple, int]) -> dict[tuple, int]:
    """One receipt's bill discount over its VAT-code keys: pro rata to the weights (|gross|),
    keys sorted, largest remainder. The core of `bill_discount_parts`, for callers without frames."""
    keys = sorted(weights)
    return dict(zip(keys, largest_remainder(discount, [weights[k] for k in keys]), strict=True))


def discounted_lines(lines: pd.DataFrame, receipts: pd.DataFrame) -> pd.DataFrame:
    """The lines that take part in their receipt's bill discount, with the receipt's `bill_discount`.

    Which lines (inferred: neither official example holds a bill discount, so this is the split
    a POS reporting its Z sales per VAT code after discounts has to make, and the demo POS makes):
    the receipt's sale and return lines whose gross has the sign of its revenue (a sale's discount
    is taken off its sales, a return's off its returns), and of those the ones inside the VAT Act
    when there are any (a gift card sold on the same bill keeps its value: it is money, not goods).
    """
    import pandas as pd

    from kassebro.core.saft_codes import OUTSIDE_VAT_CODE, sales_vat_code

    heads = receipts.loc[receipts["bill_discount"] != 0, [*_RECEIPT, "bill_discount"]]
    if heads.empty:
        return lines.iloc[0:0].assign(bill_discount=pd.Series(dtype="int64"))
    heads = heads.groupby(_RECEIPT, sort=False, as_index=False)["bill_discount"].sum()
    # the discounted receipts' lines first (a few in a big day), then only those are merged
    candidates = lines["trans_id"].isin(heads["trans_id"]).fillna(False).astype(bool)
    candidates &= lines["line_type"].isin(("sale", "return")).fillna(False).astype(bool)
    keyed = lines[candidates].merge(heads, on=_RECEIPT, how="inner").fillna({"vat_code": "", "std_vat_code": ""})
    if keyed.empty:
        return keyed
    revenue = keyed.groupby(_RECEIPT, sort=False)["gross"].transform("sum")
    sign = revenue.where(revenue != 0, keyed["bill_discount"])
    keyed = keyed[(keyed["gross"] * sign.clip(-1, 1)) > 0]
    outside = [
        sales_vat_code("" if pd.isna(std) else str(std), int(rate)) == OUTSIDE_VAT_CODE
        for std, rate in zip(keyed["std_vat_code"], keyed["vat_rate_bp"], strict=True)
    ]
    keyed = keyed.assign(_outside=outside)
    has_vat = (~keyed["_outside"]).groupby([keyed["register_id"], keyed["trans_id"]]).transform("any")
    keyed = keyed[~keyed["_outside"] | ~has_vat]
    return keyed.drop(columns="_outside").reset_index(drop=True)


def bill_discount_parts(
    lines: pd.DataFrame, receipts: pd.DataFrame, eligible: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Each receipt's bill discount split over its own VAT codes.

    Columns: register_id, trans_id, vat_code, std_vat_code, vat_rate_bp, discount (øre, positive =
    given), lines (how many lines share the part). Pro rata to |gross| of `discounted_lines` per
    code, codes sorted, by `largest_remainder`. A discount with no line to take it is one row with
    empty codes, so it is reported rather than lost. `eligible`: `discounted_lines`, when the
    caller has it already.
    """
    import pandas as pd

    columns = [*_RECEIPT, *DISCOUNT_KEY, "discount", "lines"]
    heads = receipts.loc[receipts["bill_discount"] != 0, [*_RECEIPT, "bill_discount"]]
    if heads.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c in ("vat_rate_bp", "discount", "lines") else "string") for c in columns}
        )
    if eligible is None:
        eligible = discounted_lines(lines, receipts)
    weights = eligible.assign(weight=eligible["gross"].abs()).groupby([*_RECEIPT, *DISCOUNT_KEY], sort=True)
    per_code = weights.agg(weight=("weight", "sum"), lines=("gross", "size"))
    by_receipt: dict[tuple[str, str], list[tuple[tuple, int, int]]] = {}
    for (register, trans, code, std, rate), weight, count in zip(
        per_code.index, per_code["weight"], per_code["lines"], strict=True
    ):
        by_receipt.setdefault((str(register), str(trans)), []).append(((code, std, int(rate)), int(weight), int(count)))
    rows: list[tuple] = []
    totals = heads.groupby(_RECEIPT, sort=True)["bill_discount"].sum()
    for (register, trans), discount in totals.items():
        parts = by_receipt.get((str(register), str(trans)))
        if not parts:
            rows.append((register, trans, "", "", 0, int(discount), 0))
            continue
        counts = {key: count for key, _weight, count in parts}
        shares = split_over_codes(int(discount), {key: weight for key, weight, _count in parts})
        for (code, std, rate), share in shares.items():
            rows.append((register, trans, code, std, rate, share, counts[(code, std, rate)]))
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"vat_rate_bp": "int64", "discount": "int64", "lines": "int64"})
