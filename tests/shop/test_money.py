"""R0.1: money is Decimal EUR, 2 places, half-up; never float."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.money import (
    FloatMoneyError,
    from_cents,
    line_total,
    net_of_gross,
    to_cents,
    to_money,
    vat_in_gross,
)
from tests.factories import ProductFactory


def test_r0_1_vat_inside_24_20_at_21_percent_is_4_20():
    """R0.1: VAT of a gross amount is gross - gross / (1 + rate)."""
    assert vat_in_gross(Decimal("24.20"), 21) == Decimal("4.20")
    assert net_of_gross(Decimal("24.20"), 21) == Decimal("20.00")


@pytest.mark.parametrize(
    ("gross", "rate", "vat"),
    [
        ("2.00", 21, "0.35"),  # 0.3471 -> 0.35
        ("10.00", 12, "1.07"),  # 1.0714
        ("10.50", 5, "0.50"),  # 0.50
        ("0.01", 21, "0.00"),
        ("121.00", 21, "21.00"),
    ],
)
def test_r0_1_vat_per_rate(gross, rate, vat):
    assert vat_in_gross(Decimal(gross), rate) == Decimal(vat)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("0.025", "0.03"),
        ("2.675", "2.68"),
        ("-0.005", "-0.01"),
    ],
)
def test_r0_1_rounding_is_half_up_not_bankers(raw, expected):
    """R0.1: ROUND_HALF_UP everywhere (plain quantize would give 0.02 for 0.025)."""
    assert to_money(Decimal(raw)) == Decimal(expected)


def test_r0_1_floats_are_refused():
    with pytest.raises(FloatMoneyError):
        to_money(0.1)
    with pytest.raises(FloatMoneyError):
        vat_in_gross(Decimal("1.00"), 21.0)


@pytest.mark.django_db
def test_r0_1_no_float_reaches_a_money_field():
    """R0.1: saving a float into a MoneyField fails instead of storing 0.1000000000000000055."""
    product = ProductFactory.build(price=19.99)
    with pytest.raises(FloatMoneyError):
        product.save()


@pytest.mark.django_db
def test_r0_1_money_field_stores_half_up_cents():
    product = ProductFactory(price=Decimal("19.995"))
    product.refresh_from_db()
    assert product.price == Decimal("20.00")


def test_r0_1_line_total():
    assert line_total(Decimal("18.90"), 3) == Decimal("56.70")


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_r0_1_cents_round_trip(cents):
    assert to_cents(from_cents(cents)) == cents


@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2),
    st.sampled_from([5, 12, 21]),
)
def test_r0_1_vat_plus_net_is_gross(gross, rate):
    assert vat_in_gross(gross, rate) + net_of_gross(gross, rate) == gross
    assert Decimal(0) <= vat_in_gross(gross, rate) < gross
