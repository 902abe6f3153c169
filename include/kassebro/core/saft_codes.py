"""The official SAF-T Cash Register code lists and standard VAT codes, shipped in `kassebro/data/saft/`.

A POS names its own article groups, transaction types and payment types ("basics"); each one
points at a predefined code from these lists (04xxx article groups, 11xxx transaction types,
12xxx payment types ...). kassebro books by the predefined code where it can, so it needs the
lists. They are read lazily, once, from the package data, so importing this module is free and
the product runs without the project's shared data folder.

Module attributes (loaded on first access, code -> English description):
  BASIC_TYPES (BasicType), ARTICLE_GROUP_CODES (04), TIP_CODES (10), TRANSACTION_CODES (11),
  PAYMENT_CODES (12), EVENT_CODES (13), STANDARD_VAT_CODES (code -> StandardVatCode).

Some official CSV files are Latin-1, others UTF-8: each file is decoded as UTF-8 first and as
Latin-1 when that fails.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from typing import Any

__all__ = [
    "CASH_DIFFERENCE_CODE",
    "CREDIT_SALE_CODES",
    "OUTSIDE_VAT_CODE",
    "TIP_CODE",
    "CodeEntry",
    "StandardVatCode",
    "code_list",
    "data_dir",
    "sales_vat_code",
    "schema_path",
    "standard_vat_codes",
]

_LIST_FILE = "Norwegian SAF-T Cash Register data - Code list - {}.csv"
SCHEMA_FILE = "Norwegian_SAF-T_Cash_Register_Schema_v_1.00.xsd"

TIP_CODE = "10001"
"""Predefined raise code for "Amount from gratuity/tip": a raise with this code is a tip, not revenue."""

# The rate classes in Standard_Tax_Codes.csv and the rates in force (2026), in basis points.
# The rates are set by the Storting and change over time (the low rate was 10 % in 2016-2017,
# 12 % since 2018): a line's own vatPerc always wins; these are for defaults and sanity checks.
RATE_CLASS_BP: dict[str, int] = {
    "Regular rate": 2500,
    "Reduced rate, middle": 1500,
    "Reduced rate, raw fish": 1111,
    "Reduced rate, low": 1200,
    "Zero rate": 0,
}


# Sales rate (basis points) -> standard tax code, for a line whose POS leaves the code out.
_SALES_CODE_BY_RATE = {2500: "3", 1500: "31", 1200: "33", 1100: "33", 0: "6"}

CREDIT_SALE_CODES = frozenset({"11002", "11015", "11017"})
CUSTOMER_ACCOUNT_PAYMENT = "12006"
"""Payment code 12006 "Kundekonto": the sale is put on the customer's account (a credit sale)."""
"""Transaction codes (list 11) whose unpaid part is owed by the customer (the receivable): credit
sale, cash and credit sale, credit sale and return."""
CASH_DIFFERENCE_CODE = "11008"
"""Transaction code of a cash count: no lines, its payments are the difference counted - expected."""

OUTSIDE_VAT_CODE = "6"
"""Standard code of turnover outside the VAT Act (gift cards sold, deposits): money, not goods."""


def sales_vat_code(std_vat_code: str, rate_bp: int) -> str:
    """A sales line's standard tax code: its own, or the usual one for its rate when it has none."""
    return std_vat_code or _SALES_CODE_BY_RATE.get(rate_bp, "")


@dataclass(frozen=True)
class CodeEntry:
    """One row of a code list: code, English and Norwegian (bokmål) description."""

    code: str
    description: str
    description_nob: str


@dataclass(frozen=True)
class StandardVatCode:
    """One standard VAT code (Standard_Tax_Codes.csv).

    Attributes:
      code: "3", "31", "33", "5", "6" ...
      description / description_nob: English / Norwegian text.
      rate_class: the CSV's TaxRate text ("Regular rate", "Zero rate", "" when not a rate).
      rate_bp: the current rate for that class in basis points, None when the code has no rate.
      compensation: the CSV's Compensation flag.
    """

    code: str
    description: str
    description_nob: str
    rate_class: str
    rate_bp: int | None
    compensation: bool


def data_dir() -> Traversable:
    """The folder holding the shipped schema and code lists."""
    return resources.files("kassebro").joinpath("data", "saft")


def schema_path() -> Traversable:
    """The shipped XSD (Norwegian_SAF-T_Cash_Register_Schema_v_1.00.xsd)."""
    return data_dir().joinpath(SCHEMA_FILE)


def _read_text(resource: Traversable) -> str:
    raw = resource.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _rows(resource: Traversable) -> list[list[str]]:
    reader = csv.reader(io.StringIO(_read_text(resource)), delimiter=";")
    rows = [[cell.strip() for cell in row] for row in reader if any(cell.strip() for cell in row)]
    return rows[1:]  # drop the header row


@functools.cache
def code_list(name: str) -> dict[str, CodeEntry]:
    """A code list by name: "BasicType" or a basic type "04", "10", "11", "12", "13".

    Raises KeyError for a list that is not shipped.
    """
    file_name = _LIST_FILE.format(name if name == "BasicType" else f"PredefinedBasicID-{name}")
    resource = data_dir().joinpath("code-lists", file_name)
    if not resource.is_file():
        raise KeyError(f"no SAF-T code list {name!r}")
    return {row[0]: CodeEntry(row[0], row[1], row[2] if len(row) > 2 else "") for row in _rows(resource)}


@functools.cache
def standard_vat_codes() -> dict[str, StandardVatCode]:
    """The standard VAT codes, code -> StandardVatCode."""
    result: dict[str, StandardVatCode] = {}
    for row in _rows(data_dir().joinpath("Standard_Tax_Codes.csv")):
        row = row + [""] * (5 - len(row))
        code, nob, eng, rate_class, compensation = row[:5]
        result[code] = StandardVatCode(
            code=code,
            description=eng,
            description_nob=nob,
            rate_class=rate_class,
            rate_bp=RATE_CLASS_BP.get(rate_class),
            compensation=compensation.upper() == "TRUE",
        )
    return result


_LAZY: dict[str, str] = {
    "BASIC_TYPES": "BasicType",
    "ARTICLE_GROUP_CODES": "04",
    "TIP_CODES": "10",
    "TRANSACTION_CODES": "11",
    "PAYMENT_CODES": "12",
    "EVENT_CODES": "13",
}


@functools.cache
def _descriptions(list_name: str) -> dict[str, str]:
    return {code: entry.description for code, entry in code_list(list_name).items()}


def __getattr__(name: str) -> Any:  # PEP 562: the dicts are built on first access only
    if name in _LAZY:
        return _descriptions(_LAZY[name])
    if name == "STANDARD_VAT_CODES":
        return standard_vat_codes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def warm() -> None:
    """Read every shipped code list now (`airflow.preload`: once in the parent, not in each task)."""
    for list_name in _LAZY.values():
        _descriptions(list_name)
    standard_vat_codes()
