"""Web orders as Tripletex invoice drafts: conventions kept, amounts predicted, bad orders held."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kassebro.booking.invoice import draft, line_gross
from kassebro.config.webshop import PaymentRule, Webshop
from kassebro.core.errors import InputError
from kassebro.sources.webshop import WebCustomer, WebLine, WebOrder

WHEN = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)


def shop(**overrides) -> Webshop:
    data = {
        "id": "test_shop",
        "name": "Test Shop",
        "source": {"kind": "mystore", "connection": "mystore_demo"},
        "ledger": {"connection": "tripletex_demo"},
        "enabled_since": "2026-11-01",
        "payment_methods": {
            "vipps": {"transfer": "paid_invoice", "payment_type": "Vipps"},
            "faktura": {"transfer": "invoice", "send_invoice": True},
            "b2b": {"transfer": "order"},
        },
    }
    data.update(overrides)
    return Webshop.model_validate(data)


def order(lines, *, total, incl=True, method="vipps", currency="NOK") -> WebOrder:
    return WebOrder(
        webshop_id="test_shop", number="1001", shop_id="1001", created_at=WHEN, updated_at=WHEN, status="Sendt",
        history=(("Sendt", WHEN),), prices_include_vat=incl, currency=currency, payment_method=method,
        payment_title=method.title(), captured=total, total=total, vat_total=0,
        customer=WebCustomer(shop_id="7", name="Kari Nordmann", email="kari@example.no"), lines=tuple(lines),
    )  # fmt: skip


def line(qty, price, amount, rate, kind="item", discount="0", text="Vare") -> WebLine:
    return WebLine(kind, text, Decimal(qty), Decimal(price), amount, Decimal(rate), Decimal(discount))


def test_prices_incl_vat_become_count_times_unit_price_and_the_total_is_the_shops() -> None:
    made = draft(
        order(
            [line("2", "199.00", 39800, "25"), line("1", "89.90", 8990, "15"),
             line("1", "99.00", 9900, "25", "shipping"), line("1", "-50.00", -5000, "25", "discount")],
            total=53690,
        ),
        shop(),
    )  # fmt: skip
    assert made.prices_include_vat is True
    assert [(x.count, x.unit_price, x.vat_code) for x in made.lines] == [
        (Decimal(2), Decimal("199.00"), "3"), (Decimal(1), Decimal("89.90"), "31"),
        (Decimal(1), Decimal("99.00"), "3"), (Decimal(1), Decimal("-50.00"), "3"),
    ]  # fmt: skip
    assert made.total == 53690 and made.rule.transfer == "paid_invoice"


def test_a_unit_price_that_cannot_give_the_line_total_is_sent_as_one_unit_of_the_total() -> None:
    # 3 x 33.333... = 100.00 in the shop: no two-decimal unit price gives it
    made = draft(order([line("3", "33.333333", 10000, "25", text="Sokker")], total=10000), shop())
    only = made.lines[0]
    assert (only.count, only.unit_price, only.description) == (Decimal(1), Decimal("100"), "3 x Sokker")


def test_prices_excl_vat_predict_tripletex_rounding_per_line() -> None:
    # net 10.05 at 25 %: VAT 2.5125 -> 2.51 per line, as Tripletex rounds (INFERRED, the sandbox agrees)
    assert line_gross(Decimal(1), Decimal("10.05"), Decimal(0), Decimal(25), incl=False) == 1256
    made = draft(
        order([line("1", "10.05", 1005, "25"), line("1", "10.05", 1005, "25")], total=2512, incl=False), shop()
    )
    assert made.total == 2512 and made.prices_include_vat is False


def test_a_total_tripletex_would_compute_differently_is_held_with_both_figures() -> None:
    # the shop rounded VAT over the whole order (2 x 10.05 net = 20.10, VAT 5.025 -> 5.03): 25.13
    with pytest.raises(InputError) as caught:
        draft(order([line("1", "10.05", 1005, "25"), line("1", "10.05", 1005, "25")], total=2513, incl=False), shop())
    (issue,) = caught.value.issues
    assert issue.rule == "total" and "25.12" in issue.message and "25.13" in issue.message
    assert issue.source == "test_shop/order 1001"


def test_every_reason_is_listed_together() -> None:
    with pytest.raises(InputError) as caught:
        draft(order([line("1", "100.00", 10000, "22")], total=10000, method="paypal", currency="SEK"), shop())
    rules = sorted(i.rule for i in caught.value.issues)
    assert rules == ["currency", "payment_method", "vat_rate"]
    assert "paypal" in str(caught.value.issues) and "22" in str(caught.value.issues)


def test_line_discount_percent_is_kept() -> None:
    made = draft(order([line("2", "100.00", 18000, "25", discount="10")], total=18000), shop())
    assert (made.lines[0].discount_percent, made.lines[0].gross) == (Decimal(10), 18000)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"transfer": "paid_invoice"}, "needs payment_type"),
        ({"transfer": "invoice", "payment_type": "Vipps"}, "only for paid_invoice"),
        ({"transfer": "order", "send_invoice": True}, "send_invoice must be false"),
    ],
)
def test_payment_rules_that_make_no_sense_are_refused(rule, message) -> None:
    with pytest.raises(ValueError, match=message):
        PaymentRule.model_validate(rule)
