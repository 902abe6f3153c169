"""One HTTP session for the shop adapters: GETs retried by urllib3's `Retry` (429 and 5xx, with
the shop's Retry-After honoured), JSON parsed with amounts as Decimal, errors as ShopError.

Shops are only read, so every call is safe to repeat; the one write (a status change, for the
emulators and tests) is not retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kassebro.sources.webshop import ShopError


class ShopHttp:
    """GET JSON from a shop with retries; `calls` counts requests."""

    def __init__(
        self,
        shop: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.shop = shop
        self.timeout = timeout
        self.session = session or requests.Session()
        retry = Retry(
            total=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.calls = 0

    def get(
        self, url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, requests.Response]:
        """(parsed JSON, response) of a GET; ShopError for anything but a 2xx JSON answer."""
        return self.send("GET", url, params=params, headers=headers)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        auth: tuple[str, str] | None = None,
    ) -> tuple[Any, requests.Response]:
        self.calls += 1
        try:
            response = self.session.request(
                method, url, params=params, headers=dict(headers or {}), json=body, auth=auth, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ShopError(
                self.shop, f"{method} {_path(url)}: no answer ({type(exc).__name__})", transient=True
            ) from None
        if not 200 <= response.status_code < 300:
            transient = response.status_code == 429 or response.status_code >= 500
            raise ShopError(
                self.shop,
                f"{method} {_path(url)}: {response.status_code} {_short(response.text)}",
                transient=transient,
            )
        try:
            return json.loads(response.content.decode("utf-8"), parse_float=Decimal), response
        except ValueError:
            raise ShopError(self.shop, f"{method} {_path(url)}: the answer is not JSON", transient=True) from None


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "")


def amount(value: Any, what: str, shop: str) -> Decimal:
    """A shop's amount ("12.50", 12.5 parsed as Decimal, 12) as Decimal; ShopError when not one."""
    if value is None or value == "":
        raise ShopError(shop, f"{what} is missing")
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise ShopError(shop, f"{what} is not an amount: {value!r}") from None
    if not result.is_finite():
        raise ShopError(shop, f"{what} is not an amount: {value!r}")
    return result
