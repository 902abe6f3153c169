"""Webshop configuration (`config/webshops/<id>.yaml`): which shop, which Tripletex company, and how
each payment method is transferred (seed 003, Mystore's "Tripletex v2" setup guide).

Layers, later wins: the shared keys of `config/defaults.yaml` (timezone, owner, retries) ->
`config/webshop_defaults.yaml` -> the webshop file. A bad file is an Issue naming the file, the
field and the reason, and never stops the other webshops from loading.

Parse-time cheap: pydantic and yaml only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kassebro.core.errors import ConfigError, Issue

TRANSFERS = ("paid_invoice", "invoice", "order")
"""paid_invoice: an invoice marked paid with the method's Tripletex payment type (card, Vipps,
Klarna, gift card); invoice: an invoice the customer pays later ("faktura vedlagt"); order: an order
left open for invoicing in Tripletex (B2B, manual)."""
SEND_TYPES = ("EMAIL", "EHF", "AVTALEGIRO", "EFAKTURA", "VIPPS", "PAPER", "MANUAL")
COMPLETED_BY_KIND = {"woocommerce": ("completed",), "mystore": ("Sendt",), "pos": ("sold",)}
SHARED_DEFAULTS = ("timezone", "owner", "retries")
DEFAULT_VAT_CODES = {"25": "3", "15": "31", "12": "33", "0": "5"}
"""Outgoing standard tax codes by rate: 3 high, 31 medium (food), 33 low, 5 zero-rated (books)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaymentRule(_Strict):
    """How orders paid with one of the shop's payment methods reach Tripletex.

    `payment_type` is the Tripletex payment type's description (`GET /invoice/paymentType`; ids
    differ per company, so they are resolved by description). `send_invoice` decides whether
    Tripletex e-mails the invoice: it is always sent explicitly, since Tripletex's own default is to
    send.
    """

    transfer: Literal["paid_invoice", "invoice", "order"]
    payment_type: str | None = None
    send_invoice: bool = False
    send_type: Literal["EMAIL", "EHF", "AVTALEGIRO", "EFAKTURA", "VIPPS", "PAPER", "MANUAL"] = "EMAIL"

    @model_validator(mode="after")
    def _paid_needs_a_type(self) -> PaymentRule:
        if self.transfer == "paid_invoice" and not self.payment_type:
            raise ValueError("transfer paid_invoice needs payment_type (the Tripletex payment type's description)")
        if self.transfer != "paid_invoice" and self.payment_type:
            raise ValueError(f"payment_type is only for paid_invoice (this method is {self.transfer})")
        if self.transfer == "order" and self.send_invoice:
            raise ValueError("transfer order leaves invoicing to Tripletex: send_invoice must be false")
        return self


class ShopSource(_Strict):
    """The shop: its kind and the Airflow connection holding its URL and credentials.

    "pos" is no shop: it is a vendor's POS whose credit sales are invoiced (`credit_sales:
    invoice`, booking.credit_invoices); it is never read through a connection, only made in code.
    """

    kind: Literal["woocommerce", "mystore", "pos"]
    connection: str = Field(min_length=1)


class InvoiceLedger(_Strict):
    """The Tripletex company orders go to (only Tripletex has the invoice flow)."""

    system: Literal["tripletex"] = "tripletex"
    connection: str = Field(min_length=1)
    client_org_number: Annotated[str, Field(pattern=r"^\d{3} ?\d{3} ?\d{3}$")] | None = None
    """For an accounting firm's connection: the client company's organisation number."""


class Webshop(_Strict):
    """One webshop and where its orders go."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,70}$")]
    name: str
    source: ShopSource
    ledger: InvoiceLedger
    enabled_since: dt.date
    """Orders created before this day are never transferred (the ledger already has them)."""
    timezone: str = "Europe/Oslo"
    owner: str = "data-team"
    retries: int = Field(default=3, ge=0, le=10)
    schedule: str = "*/15 * * * *"
    completed_statuses: tuple[str, ...] | None = None
    """The shop statuses that mean "completed" (default: woocommerce "completed", mystore "Sendt")."""
    customer_number_start: int = Field(default=100_000, ge=1)
    """New Tripletex customers are numbered from here, clear of numbers made in Tripletex."""
    invoice_number_start: int | None = Field(default=None, ge=1)
    """None (default): Tripletex numbers the invoices. A number: the shop's own series from here
    (`POST /invoice` with `invoiceNumber`); set it clear of Tripletex's own series (the seed: e.g.
    50000). A number Tripletex already holds for another order stops the order, never reused."""
    vat_codes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_VAT_CODES))
    """The shop's VAT rate (percent) -> Tripletex's outgoing standard tax code."""
    payment_methods: dict[str, PaymentRule]
    """The shop's payment method id -> how it is transferred. An order paid otherwise is held back."""
    lookback_days: int = Field(default=3, ge=1, le=60)
    """Each run also reads the orders changed in this many days before the last read, so an order
    whose change the shop reported late is still seen."""
    tags: tuple[str, ...] = ()
    config_file: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from kassebro.config import known_zone

        return known_zone(name)

    @field_validator("vat_codes")
    @classmethod
    def _rates(cls, codes: dict[str, str]) -> dict[str, str]:
        bad = [rate for rate in codes if not rate.isdigit()]
        if bad:
            raise ValueError(f"VAT rates are whole percents: {', '.join(bad)}")
        return codes

    @property
    def statuses(self) -> tuple[str, ...]:
        return self.completed_statuses or COMPLETED_BY_KIND[self.source.kind]

    @property
    def dag_id(self) -> str:
        return f"webshop_{self.id}"


@dataclass(frozen=True)
class WebshopSet:
    """Every webshop that loaded, and an Issue per file that did not."""

    webshops: tuple[Webshop, ...]
    issues: tuple[Issue, ...]


def webshop_files(root: Path) -> list[Path]:
    return sorted((root / "webshops").glob("*.yaml"))


def _defaults(root: Path) -> dict:
    from kassebro.config import _deep_merge, _read_yaml

    shared_file, own_file = root / "defaults.yaml", root / "webshop_defaults.yaml"
    shared = (_read_yaml(shared_file) or {}) if shared_file.exists() else {}
    own = (_read_yaml(own_file) or {}) if own_file.exists() else {}
    return _deep_merge({k: v for k, v in shared.items() if k in SHARED_DEFAULTS}, own)


def _webshop(path: Path, defaults: dict) -> Webshop:
    from kassebro.config import _deep_merge, _issues_from, _read_yaml

    try:
        raw = _read_yaml(path)
    except Exception as exc:  # noqa: BLE001 - YAML's own errors, reported as an Issue
        raise ConfigError(Issue(str(path), "yaml", f"not valid YAML: {exc}")) from None
    if not isinstance(raw, dict):
        raise ConfigError(Issue(str(path), "config", "the file must hold a mapping of fields"))
    data = _deep_merge(defaults, raw)
    data["config_file"] = str(path)
    if path.stem != data.get("id"):
        raise ConfigError(Issue(str(path), "config", f"field id: {data.get('id')!r} must equal the file name"))
    if (data.get("source") or {}).get("kind") == "pos" or str(data.get("id", "")).startswith("pos_"):
        raise ConfigError(
            Issue(str(path), "source", "kind pos and ids pos_* are a vendor's credit invoices (credit_sales: invoice)")
        )
    try:
        return Webshop.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_issues_from(path, exc)) from None


def load_webshops(root: Path | None = None) -> WebshopSet:
    """Every `<root>/webshops/*.yaml`, sorted; errors collected, not raised."""
    from kassebro.config import config_dir

    root = root or config_dir()
    defaults = _defaults(root)
    shops: list[Webshop] = []
    issues: list[Issue] = []
    for path in webshop_files(root):
        try:
            shops.append(_webshop(path, defaults))
        except ConfigError as exc:
            issues.extend(exc.issues)
    return WebshopSet(tuple(shops), tuple(issues))


def load_webshop(webshop_id: str, root: Path | None = None) -> Webshop:
    """One webshop by id; ConfigError with every issue of its file."""
    from kassebro.config import config_dir

    root = root or config_dir()
    path = root / "webshops" / f"{webshop_id}.yaml"
    if not path.exists():
        raise ConfigError(Issue(str(path), "config", f"no webshop file for {webshop_id!r}"))
    return _webshop(path, _defaults(root))
