"""A Mystore-like shop API's orders as WebOrders.

INFERRED, all of it: Mystore publishes no API documentation we could read. The shape we read is
our inference from Mystore's public setup guide (the seed: merchant-named statuses such as "Sendt"
with a completed flag, payment methods linked one by one, status set back and forward to
re-transfer) and the JSON:API style common to Norwegian shop platforms, and is served by
`kassebro.sandbox.mystore`:

- `GET /api/v1/orders?filter[updated_since]=<ISO 8601>&page[number]=N&page[size]=M` (M at most
  100), `{"data": [{"type": "orders", "id", "attributes"}], "links": {"next"}}`; `Authorization:
  Bearer <token>`;
- attributes: `order_number`, `created_at`, `updated_at`, `status`, `status_history`
  [{status, changed_at}], `prices_include_vat`, `currency`, `payment` {method, title,
  captured_amount}, `customer` {id, type private|company, first_name, last_name, company_name,
  organization_number, email, invoice_email, phone}, `billing_address` {address1, address2,
  postcode, city, country}, `lines` [{sku, name, quantity, unit_price, discount_percent, total,
  vat_rate}] (prices and totals in the order's convention), `shipping` {name, price, vat_rate} or
  null, `fees` [{name, price, vat_rate}], `discounts` [{code, amount, vat_rate}] (positive amounts
  taken off), `total` (incl. VAT), `vat_total`, `refunds` [{amount}].
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import requests

from kassebro.core.money import parse_ore
from kassebro.sources.webshop import ShopError, WebCustomer, WebLine, WebOrder
from kassebro.sources.webshop.http import ShopHttp, amount

PAGE_SIZE = 100
API_ROOT = "/api/v1"


class MystoreShop:
    """Reads a Mystore-like shop's orders (a ShopApi)."""

    def __init__(
        self,
        webshop_id: str,
        base_url: str,
        login: str,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith(API_ROOT) else base + API_ROOT
        self.webshop_id = webshop_id
        self._token = token
        self.http = ShopHttp(f"Mystore ({webshop_id})", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return f"MystoreShop({self.webshop_id!r}, {self.base_url!r})"

    def orders(self, since: dt.datetime) -> Iterator[WebOrder]:
        """Every order changed since `since`, following `links.next` to the last page."""
        url: str | None = self.base_url + "/orders"
        params: dict[str, Any] | None = {
            "filter[updated_since]": since.isoformat(timespec="seconds"),
            "page[number]": 1,
            "page[size]": PAGE_SIZE,
        }
        while url:
            data = self._get(url, params)
            rows = data.get("data") if isinstance(data, Mapping) else None
            if not isinstance(rows, list):
                raise ShopError(self.http.shop, "GET /orders: no 'data' list in the answer", transient=True)
            for row in rows:
                yield self.parse(row)
            url = (data.get("links") or {}).get("next")
            params = None  # the next link carries its own query

    def order(self, number: str) -> WebOrder:
        data = self._get(f"{self.base_url}/orders/{number}", None)
        if not isinstance(data, Mapping) or not isinstance(data.get("data"), Mapping):
            raise ShopError(self.http.shop, f"GET /orders/{number}: no 'data' object in the answer")
        return self.parse(data["data"])

    def _get(self, url: str, params: Mapping[str, Any] | None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/vnd.api+json"}
        return self.http.get(url, params=params, headers=headers)[0]

    def parse(self, row: Mapping[str, Any]) -> WebOrder:
        attributes = row.get("attributes") if isinstance(row, Mapping) else None
        number = str((attributes or {}).get("order_number") or row.get("id") or "?")
        shop = f"{self.http.shop} order {number}"
        if not isinstance(attributes, Mapping):
            raise ShopError(shop, "malformed order: no attributes")
        try:
            return _parse(self.webshop_id, str(row.get("id")), attributes, shop)
        except (KeyError, TypeError, ValueError) as exc:
            raise ShopError(shop, f"malformed order: {exc}") from None


def _parse(webshop_id: str, shop_id: str, a: Mapping[str, Any], shop: str) -> WebOrder:
    def dec(value: Any, what: str) -> Decimal:
        return amount(value, what, shop)

    lines = [
        WebLine(
            kind="item",
            description=str(line.get("name") or line.get("sku") or ""),
            quantity=dec(line["quantity"], "quantity"),
            unit_price=dec(line["unit_price"], "unit_price"),
            amount=parse_ore(dec(line["total"], "line total")),
            vat_rate=dec(line.get("vat_rate") or 0, "vat_rate"),
            discount_percent=dec(line.get("discount_percent") or 0, "discount_percent"),
            sku=str(line.get("sku") or ""),
        )
        for line in a.get("lines") or []
    ]
    extras = [("shipping", a["shipping"])] if a.get("shipping") else []
    extras += [("fee", fee) for fee in a.get("fees") or []]
    for kind, item in extras:
        price = dec(item["price"], f"{kind} price")
        lines.append(
            WebLine(
                kind,
                str(item.get("name") or kind),
                Decimal(1),
                price,
                parse_ore(price),
                dec(item.get("vat_rate") or 0, "vat_rate"),
            )
        )
    for cut in a.get("discounts") or []:
        value = -dec(cut["amount"], "discount amount")
        text = f"Rabatt {cut.get('code') or ''}".strip()
        lines.append(
            WebLine("discount", text, Decimal(1), value, parse_ore(value), dec(cut.get("vat_rate") or 0, "vat_rate"))
        )
    payment = a.get("payment") or {}
    customer = a.get("customer") or {}
    address = a.get("billing_address") or {}
    company = str(customer.get("company_name") or "").strip()
    person = " ".join(str(customer.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    org = "".join(ch for ch in str(customer.get("organization_number") or "") if ch.isdigit()) or None
    captured = payment.get("captured_amount")
    history = tuple(
        (str(h["status"]), _when(h["changed_at"])) for h in a.get("status_history") or [] if isinstance(h, Mapping)
    )
    return WebOrder(
        webshop_id=webshop_id,
        number=str(a["order_number"]),
        shop_id=shop_id,
        created_at=_when(a["created_at"]),
        updated_at=_when(a.get("updated_at") or a["created_at"]),
        status=str(a["status"]),
        history=history,
        prices_include_vat=bool(a.get("prices_include_vat", True)),
        currency=str(a.get("currency") or ""),
        payment_method=str(payment.get("method") or ""),
        payment_title=str(payment.get("title") or ""),
        captured=None if captured in (None, "") else parse_ore(dec(captured, "captured_amount")),
        total=parse_ore(dec(a["total"], "total")),
        vat_total=parse_ore(dec(a.get("vat_total") or 0, "vat_total")),
        customer=WebCustomer(
            shop_id=str(customer["id"]) if customer.get("id") not in (None, "") else None,
            name=company if customer.get("type") == "company" and company else (person or company),
            is_company=customer.get("type") == "company",
            org_number=org,
            email=str(customer.get("email") or "").strip() or None,
            invoice_email=str(customer.get("invoice_email") or "").strip() or None,
            phone=str(customer.get("phone") or "").strip() or None,
            address1=str(address.get("address1") or ""),
            address2=str(address.get("address2") or ""),
            postcode=str(address.get("postcode") or ""),
            city=str(address.get("city") or ""),
            country=str(address.get("country") or "NO"),
        ),
        lines=tuple(lines),
        refunded=sum(parse_ore(dec(r.get("amount") or 0, "refund amount")) for r in a.get("refunds") or []),
    )


def _when(text: Any) -> dt.datetime:
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
