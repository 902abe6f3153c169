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
from typing import TYPE_CHECKING, Any

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
    "line_type_id": "string",  # the POS's own ctLine/lineType as written ("SAL", "RET", "TIP" ...)
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
    "gross": "int64",  # the code's sales in øre, gross of VAT (z_reports.amounts says how it was read)
    "vat": "int64",  # reportCashSaleVat/vatAmnt in øre
    "amount": "int64",  # reportCashSaleVat/cashSaleAmnt in øre as written (gross or net of VAT)
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

Z_REPORT_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "report_id": "string",
    "company_ident": "string",  # eventReport/companyIdent: the organisation number the report is for
    "total_sales": "Int64",  # reportTotalCashSales/totalCashSaleAmnt in øre (gross); <NA> when not given
    "amounts": "string",  # how cashSaleAmnt was read: "gross", "net", or "unknown" (contradicts itself)
    "amounts_basis": "string",  # why, for a person: the figures that decided it
    "tip_amount": "Int64",  # reportTip/tipAmnt in øre; <NA> when the report has no reportTip
    "return_amount": "Int64",  # reportReturnAmnt in øre (positive); <NA> when not given
}

CODE_COLUMNS: dict[str, str] = {
    "kind": "string",  # "vat" (vatCodeDetail) or a basic type: "04" article group, "05" line, "11", "12" ...
    "code": "string",  # vatCode or basicID as the POS names it
    "standard": "string",  # standardVatCode or predefinedBasicID, "" when none
}

HEADER_COLUMNS: dict[str, str] = {
    "source": "string",  # the file
    "company_ident": "string",  # company/companyIdent: the organisation number the file is for
    "currency": "string",  # header/curCode
}

NUMBER_COLUMNS: dict[str, str] = {
    "register_id": "string",
    "kind": "string",  # "run": first_nr..last_nr all present once; "duplicate": first_nr seen `count` times
    "first_nr": "int64",
    "last_nr": "int64",
    "count": "int64",
}

CUSTOMER_COLUMNS: dict[str, str] = {
    "customer_id": "string",  # custSupID, as credit sales name it
    "name": "string",  # custSupName
    "org_number": "string",  # taxRegIdent, digits only ("" when none)
    "email": "string",  # eMail
    "address": "string",  # streetAddress: streetname and number
    "postcode": "string",
    "city": "string",
}

FRAME_COLUMNS: dict[str, dict[str, str]] = {
    "lines": LINE_COLUMNS,
    "receipts": RECEIPT_COLUMNS,
    "payments": PAYMENT_COLUMNS,
    "z_vat": Z_VAT_COLUMNS,
    "z_payments": Z_PAYMENT_COLUMNS,
    "z_art_groups": Z_ART_GROUP_COLUMNS,
    "skipped": SKIPPED_COLUMNS,
    "z_reports": Z_REPORT_COLUMNS,
    "codes": CODE_COLUMNS,
    "headers": HEADER_COLUMNS,
    "numbers": NUMBER_COLUMNS,
    "customers": CUSTOMER_COLUMNS,
}

OPTIONAL_FRAMES = frozenset({"z_art_groups", "skipped", "z_reports", "codes", "headers", "numbers", "customers"})
"""Frames a source may not have (None on the SalesDay): the rules that read them then do not apply.
A SAF-T file has them all; the POS database has no master data, file header or number series."""

# Columns added after the first release: a frame without them gets these defaults in conform(),
# so older parquet files and sources that do not know the field still load.
OPTIONAL_DEFAULTS: dict[str, dict[str, object]] = {
    "lines": {"discount": 0, "project": "", "cost_centre": "", "line_type_id": ""},
    "receipts": {"bill_discount": 0, "customer_id": ""},
    "z_vat": {"amount": None},  # None: the gross column (a source whose Z amounts are gross by definition)
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
      z_reports: one row per Z report of the day (its company, grand total, tips, returns and how
        its per-VAT amounts were read); None for sources without them.
      codes: the master data the source declares (VAT codes with their standard code, basics).
      headers: one row per source file (its company and currency).
      numbers: the transaction number series per register as the source holds it around the day
        (runs of consecutive numbers, and numbers seen twice), so a gap at the day's edge shows.
      customers: the customers the source declares (SAF-T `customersSuppliers` of type Customer),
        for credit sales booked on the ledger's customer accounts; None when it declares none.
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
    z_reports: pd.DataFrame | None = None
    codes: pd.DataFrame | None = None
    headers: pd.DataFrame | None = None
    numbers: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every frame, an empty one where the source has none (for display and sums)."""
        frames = {name: getattr(self, name) for name in FRAME_COLUMNS}
        return {name: empty_frame(name) if frame is None else frame for name, frame in frames.items()}

    def is_empty(self) -> bool:
        """No transactions and no Z report: the source holds nothing for the day."""
        return all(len(getattr(self, name)) == 0 for name in ("lines", "receipts", "payments", "z_vat", "z_payments"))

    def save(self, directory: Any) -> Any:
        """Write the frames as parquet files into `directory` (a Path or an ObjectStoragePath,
        `core.workfiles`) and return it. A frame the source does not have is not written, so
        `load` gives None for it again."""
        import io

        from kassebro.core import workfiles

        workfiles.make_dir(directory)
        for name in FRAME_COLUMNS:
            frame = getattr(self, name)
            path = directory / f"{name}.parquet"
            if frame is None:
                workfiles.remove(path)
            else:
                buffer = io.BytesIO()
                frame.to_parquet(buffer, index=False)
                workfiles.write_bytes(path, buffer.getvalue())
        workfiles.write_text(
            directory / "meta.txt", f"{self.vendor_id}\n{self.business_day.isoformat()}\n{self.source}\n"
        )
        return directory

    @classmethod
    def load(cls, directory: Any) -> SalesDay:
        import io

        import pandas as pd

        from kassebro.core import workfiles

        vendor_id, day, source = workfiles.read_text(directory / "meta.txt").split("\n")[:3]
        frames: dict[str, pd.DataFrame | None] = {}
        for name in FRAME_COLUMNS:
            path = directory / f"{name}.parquet"
            if path.exists():
                frames[name] = conform(name, pd.read_parquet(io.BytesIO(path.read_bytes())))
            else:
                frames[name] = None if name in OPTIONAL_FRAMES else empty_frame(name)
        return cls(vendor_id, dt.date.fromisoformat(day), source=source, **frames)


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
    if name == "z_vat" and "amount" in defaults and "gross" in frame.columns:
        defaults["amount"] = frame["gross"]  # amounts as written = gross, for a source that only has gross
    if defaults:
        frame = frame.assign(**defaults)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame {name!r} lacks columns {missing}")
    return frame[list(columns)].astype(columns).reset_index(drop=True)
