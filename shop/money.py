"""Money (R0.1): Decimal in EUR with 2 places, rounded half-up, never float.

Prices include VAT (T4.1). The VAT inside a gross amount is `gross - gross / (1 + rate)`,
rounded half-up to the cent.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import models

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


class FloatMoneyError(TypeError):
    """A float was about to become money: floats cannot represent cents exactly."""


def to_money(value: Decimal | int | str) -> Decimal:
    """Quantize to cents, half-up. Refuses floats outright."""
    if isinstance(value, float):
        raise FloatMoneyError("money must never be a float; pass a Decimal or a string")
    if isinstance(value, bool):
        raise TypeError("a boolean is not money")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of money: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not an amount of money: {value!r}")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money_sum(amounts: Iterable[Decimal]) -> Decimal:
    return to_money(sum(amounts, ZERO))


def rate_fraction(rate_percent: Decimal | int | str) -> Decimal:
    """21 -> Decimal('0.21')."""
    if isinstance(rate_percent, float):
        raise FloatMoneyError("VAT rates must never be floats")
    return Decimal(str(rate_percent)) / HUNDRED


def vat_in_gross(gross: Decimal, rate_percent: Decimal | int | str) -> Decimal:
    """R0.1: the VAT contained in a VAT-inclusive amount, rounded half-up to the cent.

    >>> vat_in_gross(Decimal("24.20"), 21)
    Decimal('4.20')
    """
    gross = to_money(gross)
    net = gross / (Decimal(1) + rate_fraction(rate_percent))
    return to_money(gross - net)


def net_of_gross(gross: Decimal, rate_percent: Decimal | int | str) -> Decimal:
    gross = to_money(gross)
    return gross - vat_in_gross(gross, rate_percent)


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return to_money(to_money(unit_price) * quantity)


def to_cents(amount: Decimal) -> int:
    """Only at the boundary with card processors, which count in integer cents."""
    return int(to_money(amount) * 100)


def from_cents(cents: int) -> Decimal:
    return to_money(Decimal(cents) / HUNDRED)


class MoneyField(models.DecimalField):
    """DecimalField(12, 2) that rounds half-up and refuses floats (R0.1)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_digits") == 12:
            kwargs.pop("max_digits")
        if kwargs.get("decimal_places") == 2:
            kwargs.pop("decimal_places")
        return name, path, args, kwargs

    def to_python(self, value):
        if value is None:
            return value
        if isinstance(value, float):
            raise ValidationError("Money cannot be a float.", code="float_money")
        try:
            return to_money(value)
        except (ValueError, TypeError) as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def get_prep_value(self, value):
        if isinstance(value, float):
            raise FloatMoneyError("money must never be a float; pass a Decimal or a string")
        if value is None:
            return value
        return to_money(value)
