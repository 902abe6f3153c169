"""The canonical sales frames: the one shape every source produces and every later step reads.

A source (SAF-T file, POS database) turns one vendor's business day into a `SalesDay`: five
pandas DataFrames with the columns below. Money columns are int64 øre; VAT rates are int basis
points (25 % = 2500). Signs: a sale line is positive gross (revenue to credit), a return line is
negative; a payment is positive when money came in, negative for change given back or refunds.
A receipt balances when sum(lines.gross) - receipts.bill_discount + receipts.rounding ==
sum(payments.amount).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# column -> pandas dtype. "string" columns use pandas' string dtype; timestamps are UTC.
LINE_COLUMNS: dict[str, str] = {
    "register_id": "string",  # cashregister/registerID
    "trans_id": "string",  # cashtransaction/transID
    "line_id": "string",  # ctLine/lineID
    "line_type": "string",  # "sale", "return" or "tip"
    "art_group_id": "string",  # the accounting key: the vendor's own article group id (basicID)
    "art_group_code": "string",  # its predefined SAF-T code (code list 04), "" when unknown
    "article_id": "string",
    "description": "string",
    "quantity": "string",  # exact decimal text; not money, never summed into amounts
    "gross": "int64",  # lineAmntIn in øre, signed (sale +, return -)
    "net": "int64",  # lineAmntEx in øre, signed like gross
    "vat": "int64",  # vat/vatAmnt in øre, signed like gross
    "vat_code": "string",  # the POS's own VAT code (vat/vatCode)
    "std_vat_code": "string",  # standard tax code (Standard_Tax_Codes.csv): "3", "31", "33", "5", "6"...
    "vat_rate_bp": "int64",  # vat/vatPerc in basis points
    "timestamp": "datetime64[ns, UTC]",
    "discount": "int64",  # ctLine/discount/dscAmnt in øre, signed like gross; already taken off gross
    "project": "string",  # ctLine/projID, "" when none
    "cost_centre": "string",  # ctLine/costID, "" when none
}

RECEIPT_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "trans_id": "string",
    "nr": "int64",  # cashtransaction/nr: the gap-free transaction number series
    "trans_type": "string",  # the POS's own transaction type id
    "trans_code": "string",  # predefined code (code list 11), "" when unknown
    "amount": "int64",  # transAmntIn in øre, signed (sale +, return -)
    "rounding": "int64",  # rounding/roundingAmnt in øre, signed (payments - lines)
    "timestamp": "datetime64[ns, UTC]",
    "bill_discount": "int64",  # cashtransaction/discount/dscAmnt in øre, positive = given; NOT in lines' gross
    "customer_id": "string",  # custSupID (credit sales), "" when none
}

PAYMENT_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "trans_id": "string",
    "payment_type": "string",  # the POS's own payment type id (basicID, e.g. "CASH")
    "payment_code": "string",  # predefined code (code list 12: "12001" cash, "12002" debit card ...)
    "amount": "int64",  # paidAmnt in øre (NOK), signed
    "currency": "string",  # curCode, "NOK" when absent
    "exchange_rate": "string",  # exchRt as exact decimal text, "1" when absent
}

Z_VAT_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "report_id": "string",
    "vat_code": "string",
    "std_vat_code": "string",
    "vat_rate_bp": "int64",
    "gross": "int64",  # reportCashSaleVat/cashSaleAmnt in øre (gross, as the POS reports it)
    "vat": "int64",  # reportCashSaleVat/vatAmnt in øre
}

Z_PAYMENT_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "report_id": "string",
    "payment_type": "string",
    "payment_code": "string",
    "amount": "int64",  # reportPayment/paymentAmnt in øre
}

Z_ART_GROUP_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "report_id": "string",
    "art_group_id": "string",
    "amount": "int64",  # reportArtGroup/artGroupAmnt in øre (gross)
}

SKIPPED_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "trans_id": "string",
    "nr": "int64",  # cashtransaction/nr: left out of receipts, but part of the number series
    "reason": "string",  # "void" or "training"
}

FRAME_COLUMNS: dict[str, dict[str, str]] = {
    "lines": LINE_COLUMNS,
    "receipts": RECEIPT_COLUMNS,
    "payments": PAYMENT_COLUMNS,
    "z_vat": Z_VAT_COLUMNS,
    "z_payments": Z_PAYMENT_COLUMNS,
    "z_art_groups": Z_ART_GROUP_COLUMNS,
    "skipped": SKIPPED_COLUMNS,
}

# Columns added after the first release: a frame without them gets these defaults in conform(),
# so older parquet files and sources that do not know the field still load.
OPTIONAL_DEFAULTS: dict[str, dict[str, object]] = {
    "lines": {"discount": 0, "project": "", "cost_centre": ""},
    "receipts": {"bill_discount": 0, "customer_id": ""},
}


@dataclass(frozen=True)
class SalesDay:
    """One vendor's business day of sales, in canonical frames.

    Attributes:
      vendor_id: the vendor's config id.
      business_day: the business day every row belongs to.
      lines, receipts, payments: the day's transactions (voids and training left out).
      z_vat, z_payments, z_art_groups: the Z report(s) of the day, one row per register, report
        and key (z_art_groups may be None for sources without article-group totals).
      skipped: transactions of the day left out of the frames (void, training), so their numbers
        do not read as gaps; None for sources that do not report them.
      source: where the data came from (file paths or a database URL without password).
    """

    vendor_id: str
    business_day: dt.date
    lines: pd.DataFrame
    receipts: pd.DataFrame
    payments: pd.DataFrame
    z_vat: pd.DataFrame
    z_payments: pd.DataFrame
    source: str = ""
    z_art_groups: pd.DataFrame | None = None
    skipped: pd.DataFrame | None = None

    def frames(self) -> dict[str, pd.DataFrame]:
        frames = {name: getattr(self, name) for name in FRAME_COLUMNS}
        return {name: empty_frame(name) if frame is None else frame for name, frame in frames.items()}

    def save(self, directory: Path) -> Path:
        """Write the frames as parquet files into `directory` (created) and return it."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, frame in self.frames().items():
            frame.to_parquet(directory / f"{name}.parquet", index=False)
        (directory / "meta.txt").write_text(
            f"{self.vendor_id}\n{self.business_day.isoformat()}\n{self.source}\n", encoding="utf-8"
        )
        return directory

    @classmethod
    def load(cls, directory: Path) -> SalesDay:
        import pandas as pd

        vendor_id, day, source = (directory / "meta.txt").read_text(encoding="utf-8").split("\n")[:3]
        frames = {
            name: pd.read_parquet(directory / f"{name}.parquet")
            if (directory / f"{name}.parquet").exists()
            else empty_frame(name)
            for name in FRAME_COLUMNS
        }
        return cls(
            vendor_id,
            dt.date.fromisoformat(day),
            source=source,
            **{k: conform(k, v) for k, v in frames.items()},
        )


def empty_frame(name: str) -> pd.DataFrame:
    """An empty frame with the canonical columns and dtypes of `name`."""
    import pandas as pd

    return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in FRAME_COLUMNS[name].items()})


def conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with exactly the canonical columns of `name`, in order, with their dtypes.

    Raises ValueError naming the missing columns, so a source bug is caught at the boundary.
    """
    columns = FRAME_COLUMNS[name]
    defaults = {k: v for k, v in OPTIONAL_DEFAULTS.get(name, {}).items() if k not in frame.columns}
    if defaults:
        frame = frame.assign(**defaults)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame {name!r} lacks columns {missing}")
    return frame[list(columns)].astype(columns).reset_index(drop=True)
