"""WooCommerce REST API v3 orders as WebOrders.

Read as documented (woocommerce.github.io/woocommerce-rest-api-docs): `GET /wp-json/wc/v3/orders`
with `modified_after`, `orderby=modified`, `order=asc`, `per_page` (at most 100) and `page`, until
`X-WP-TotalPages`; HTTP Basic with the consumer key and secret. Amounts are strings; a line's
`subtotal`/`total` exclude tax whatever `prices_include_tax` says (`subtotal` before coupons,
`total` after), and each line's `taxes` name the rate by `tax_lines[].rate_id`.

How it becomes a WebOrder:
- lines at their price before coupons, in the order's convention (incl. VAT: subtotal +
  subtotal_tax); coupons become one discount line per VAT rate (the difference between the lines
  before and after coupons), so the lines add up to `total` to the øre in the incl.-VAT convention;
- shipping and fee lines as lines of their own;
- a line's rate is its tax line's `rate_percent`; a line without taxes is at 0 %.

INFERRED (not in WooCommerce's documentation): the captured amount. WooCommerce core keeps none;
payment plugins keep it in order meta. We read `_captured_amount` from `meta_data`; without it the
capture is None (unknown), and a paid method's order is held back rather than marked paid with a
guess. `date_paid` says nothing about money: WooCommerce sets it whenever an order reaches
processing (`maybe_set_date_paid`), invoice and bank-transfer orders included. A company's
organisation number is read from the
`_billing_org_number` meta key that Norwegian checkout plugins commonly use (also INFERRED). Status
history: WooCommerce has none on the order (only order notes, one call each), so the history is
the current status at `date_modified`, and "completed" at `date_completed` when set.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import requests

from kassebro.core.money import parse_ore
from kassebro.sources.webshop import ShopError, WebCustomer, WebLine, WebOrder
from kassebro.sources.webshop.http import ShopHttp, amount

PAGE_SIZE = 100  # WooCommerce's maximum per_page
API_ROOT = "/wp-json/wc/v3"


class WooCommerceShop:
    """Reads a WooCommerce shop's orders (a ShopApi)."""

    def __init__(
        self,
        webshop_id: str,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith(API_ROOT) else base + API_ROOT
        self.webshop_id = webshop_id
        self._auth = (consumer_key, consumer_secret)
        self.http = ShopHttp(f"WooCommerce ({webshop_id})", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return f"WooCommerceShop({self.webshop_id!r}, {self.base_url!r})"

    def orders(self, since: dt.datetime) -> Iterator[WebOrder]:
        """Every order modified after `since`, oldest change first, all pages."""
        page = 1
        while True:
            params = {
                "modified_after": since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "dates_are_gmt": "true",
                "orderby": "modified",
                "order": "asc",
                "per_page": PAGE_SIZE,
                "page": page,
            }
            data, response = self._get("/orders", params)
            if not isinstance(data, list):
                raise ShopError(self.http.shop, "GET /orders: the answer is not a list", transient=True)
            for raw in data:
                yield self.parse(raw)
            pages = int(response.headers.get("X-WP-TotalPages") or 0)
            if page >= pages or len(data) < PAGE_SIZE:
                return
            page += 1

    def order(self, number: str) -> WebOrder:
        """One order by its number (WooCommerce's number is its id unless a plugin renumbers)."""
        data, _ = self._get("/orders", {"include": number, "per_page": 1})
        if isinstance(data, list) and data:
            return self.parse(data[0])
        data, _ = self._get(f"/orders/{number}", {})
        return self.parse(data)

    def _get(self, path: str, params: Mapping[str, Any]) -> tuple[Any, requests.Response]:
        self.http.session.auth = self._auth
        return self.http.get(self.base_url + path, params=params)

    def parse(self, raw: Mapping[str, Any]) -> WebOrder:
        """A WooCommerce order JSON as a WebOrder; ShopError naming the order when it is malformed."""
        number = str(raw.get("number") or raw.get("id") or "?")
        shop = f"{self.http.shop} order {number}"
        try:
            return _parse(self.webshop_id, raw, shop)
        except (KeyError, TypeError, ValueError) as exc:
            raise ShopError(shop, f"malformed order: {exc}") from None


def _parse(webshop_id: str, raw: Mapping[str, Any], shop: str) -> WebOrder:
    incl = bool(raw.get("prices_include_tax"))
    rates = {
        int(t["rate_id"]): Decimal(str(t["rate_percent"])) if t.get("rate_percent") not in (None, "") else None
        for t in raw.get("tax_lines") or []
    }

    def rate_of(item: Mapping[str, Any]) -> Decimal:
        applied = [t for t in item.get("taxes") or [] if str(t.get("total") or "") not in ("", "0", "0.00")]
        if not applied:
            return Decimal(0)
        ids = {int(t["id"]) for t in applied}
        if len(ids) != 1 or not ids <= set(rates):
            raise ShopError(shop, f"line {item.get('name')!r} has taxes {applied} not in tax_lines (one rate a line)")
        rate = rates[ids.pop()]
        if rate is None:  # tax lines before WooCommerce 5.7 carry no rate_percent: the line's own ratio
            net = amount(item.get("total"), "total", shop)
            if not net:
                raise ShopError(shop, f"line {item.get('name')!r} is taxed but its total is 0: no rate to read")
            rate = (amount(item.get("total_tax"), "total_tax", shop) * 100 / net).quantize(Decimal("0.01"))
        return rate.normalize()

    def ore(value: Any, what: str) -> int:
        return parse_ore(amount(value, what, shop))

    lines: list[WebLine] = []
    discounts: dict[Decimal, int] = defaultdict(int)
    for item in raw.get("line_items") or []:
        rate = rate_of(item)
        before = ore(item["subtotal"], "subtotal") + (ore(item.get("subtotal_tax") or 0, "subtotal_tax") if incl else 0)
        after = ore(item["total"], "total") + (ore(item.get("total_tax") or 0, "total_tax") if incl else 0)
        quantity = Decimal(str(item.get("quantity") or 1))
        lines.append(
            WebLine(
                kind="item",
                description=str(item.get("name") or ""),
                quantity=quantity,
                unit_price=Decimal(before) / 100 / quantity,
                amount=before,
                vat_rate=rate,
                sku=str(item.get("sku") or ""),
            )
        )
        if before != after:
            discounts[rate] += after - before
    codes = ", ".join(str(c.get("code")) for c in raw.get("coupon_lines") or [] if c.get("code"))
    for rate, cut in sorted(discounts.items(), reverse=True):
        lines.append(_single("discount", f"Rabatt {codes}".strip() + f" ({rate.normalize():f} %)", cut, rate))
    for kind, key, name_key in (("shipping", "shipping_lines", "method_title"), ("fee", "fee_lines", "name")):
        for item in raw.get(key) or []:
            value = ore(item["total"], f"{key} total") + (ore(item.get("total_tax") or 0, f"{key} tax") if incl else 0)
            lines.append(_single(kind, str(item.get(name_key) or kind), value, rate_of(item)))
    meta = {str(m.get("key")): m.get("value") for m in raw.get("meta_data") or [] if isinstance(m, Mapping)}
    total = ore(raw["total"], "total")
    captured = (
        ore(meta["_captured_amount"], "_captured_amount") if meta.get("_captured_amount") not in (None, "") else None
    )
    billing = raw.get("billing") or {}
    company = str(billing.get("company") or "").strip()
    person = " ".join(str(billing.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    org = "".join(ch for ch in str(meta.get("_billing_org_number") or "") if ch.isdigit()) or None
    customer_id = int(raw.get("customer_id") or 0)
    modified = _gmt(raw.get("date_modified_gmt") or raw.get("date_created_gmt"))
    history = [(str(raw["status"]), modified)]
    if raw.get("date_completed_gmt"):
        history.insert(0, ("completed", _gmt(raw["date_completed_gmt"])))
    return WebOrder(
        webshop_id=webshop_id,
        number=str(raw.get("number") or raw["id"]),
        shop_id=str(raw["id"]),
        created_at=_gmt(raw["date_created_gmt"]),
        updated_at=modified,
        status=str(raw["status"]),
        history=tuple(history),
        prices_include_vat=incl,
        currency=str(raw.get("currency") or ""),
        payment_method=str(raw.get("payment_method") or ""),
        payment_title=str(raw.get("payment_method_title") or ""),
        captured=captured,
        total=total,
        vat_total=ore(raw.get("total_tax") or 0, "total_tax"),
        customer=WebCustomer(
            shop_id=str(customer_id) if customer_id else None,
            name=company or person,
            is_company=bool(company or org),
            org_number=org,
            email=str(billing.get("email") or "").strip() or None,
            phone=str(billing.get("phone") or "").strip() or None,
            address1=str(billing.get("address_1") or ""),
            address2=str(billing.get("address_2") or ""),
            postcode=str(billing.get("postcode") or ""),
            city=str(billing.get("city") or ""),
            country=str(billing.get("country") or "NO"),
        ),
        lines=tuple(lines),
        refunded=-sum(ore(r.get("total") or 0, "refund total") for r in raw.get("refunds") or []),
    )


def _single(kind: str, description: str, value: int, rate: Decimal) -> WebLine:
    return WebLine(kind, description, Decimal(1), Decimal(value) / 100, value, rate)


def _gmt(text: Any) -> dt.datetime:
    """A `*_gmt` field (WooCommerce writes GMT without an offset) as an aware datetime."""
    return dt.datetime.fromisoformat(str(text).rstrip("Z")).replace(tzinfo=dt.UTC)
