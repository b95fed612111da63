"""delivery.rules (R6 fee, R7 estimate), tariffs over time and their admin."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from delivery.models import DeliveryTariff
from delivery.rules import delivery_fee, estimated_delivery
from delivery.services import create_delivery_tariff
from orders.models import Order
from shop.calendar import RIGA, LatvianCalendar
from shop.errors import InvalidInput
from tests.factories import place_test_order

FEE = Decimal("2.00")
THRESHOLD = Decimal("50.00")

amounts = st.decimals(
    min_value=Decimal("0.00"),
    max_value=Decimal("100000.00"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


# R6 as arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goods_total", "expected"),
    [
        (Decimal("0.01"), Decimal("2.00")),
        (Decimal("49.99"), Decimal("2.00")),
        (Decimal("50.00"), Decimal("2.00")),  # exactly 50.00 still pays the fee
        (Decimal("50.01"), Decimal("0.00")),
        (Decimal("120.00"), Decimal("0.00")),
    ],
)
def test_r6_fee_up_to_and_including_50_free_above(goods_total, expected):
    fee = delivery_fee(goods_total=goods_total, fee=FEE, free_above=THRESHOLD)
    assert fee == expected
    assert fee.as_tuple().exponent == -2  # money: two places, a Decimal


@given(goods_total=amounts, fee=amounts, free_above=amounts)
def test_r6_fee_is_either_zero_or_the_tariff_fee(goods_total, fee, free_above):
    result = delivery_fee(goods_total=goods_total, fee=fee, free_above=free_above)
    assert isinstance(result, Decimal)
    assert result in (Decimal("0.00"), fee)
    assert result == (Decimal("0.00") if goods_total > free_above else fee)


@given(a=amounts, b=amounts, fee=amounts, free_above=amounts)
def test_r6_more_goods_never_cost_more_delivery(a, b, fee, free_above):
    low, high = sorted([a, b])
    assert delivery_fee(goods_total=high, fee=fee, free_above=free_above) <= delivery_fee(
        goods_total=low, fee=fee, free_above=free_above
    )


# R6 through real checkouts ------------------------------------------------------------


@pytest.mark.django_db
def test_r6_data_migration_creates_the_default_tariff():
    tariff = DeliveryTariff.objects.in_force()
    assert tariff is not None
    assert (tariff.fee, tariff.free_above) == (Decimal("2.00"), Decimal("50.00"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "fee", "total"),
    [
        ("49.99", "2.00", "51.99"),
        ("50.00", "2.00", "52.00"),
        ("50.01", "0.00", "50.01"),
    ],
)
def test_r6_checkout_charges_the_fee_up_to_50_and_ships_free_above(price, fee, total):
    placed = place_test_order(lines=[("A", 1)], prices={"A": Decimal(price)})

    order = Order.objects.get(pk=placed.order.pk)
    assert order.goods_total == Decimal(price)
    assert order.delivery_fee == Decimal(fee)
    assert order.total == Decimal(total)
    assert order.tariff == DeliveryTariff.objects.in_force()


@pytest.mark.django_db
def test_r6_goods_total_is_the_sum_of_lines_with_vat():
    placed = place_test_order(
        lines=[("A", 2), ("B", 1)], prices={"A": Decimal("20.00"), "B": Decimal("10.01")}
    )
    assert placed.order.goods_total == Decimal("50.01")
    assert placed.order.delivery_fee == Decimal("0.00")
    assert placed.order.total == Decimal("50.01")


@pytest.mark.django_db
def test_r6_a_new_tariff_applies_to_new_orders_only():
    """A tariff with a later effective_from (EUR 3.00, free above EUR 40.00) changes what
    orders placed after it pay; an order placed before keeps its tariff and fee."""
    default = DeliveryTariff.objects.in_force()
    change_at = datetime(2026, 11, 10, 0, 0, tzinfo=RIGA)
    with time_machine.travel(datetime(2026, 11, 2, 10, 0, tzinfo=RIGA), tick=False):
        new = create_delivery_tariff(
            fee=Decimal("3.00"), free_above=Decimal("40.00"), effective_from=change_at
        )
        before = place_test_order(lines=[("A", 1)], prices={"A": Decimal("45.00")}).order
        early_small = place_test_order(lines=[("B", 1)], prices={"B": Decimal("39.99")}).order

    with time_machine.travel(change_at + timedelta(days=1, hours=9), tick=False):
        after = place_test_order(lines=[("A", 1)]).order  # product A still costs 45.00
        small = place_test_order(lines=[("B", 1)]).order  # 39.99
        boundary = place_test_order(lines=[("C", 1)], prices={"C": Decimal("40.00")}).order

    before.refresh_from_db()
    early_small.refresh_from_db()
    assert (before.tariff, before.delivery_fee, before.total) == (
        default,
        Decimal("2.00"),
        Decimal("47.00"),
    )
    assert (early_small.tariff, early_small.delivery_fee) == (default, Decimal("2.00"))
    assert (after.tariff, after.delivery_fee, after.total) == (
        new,
        Decimal("0.00"),
        Decimal("45.00"),
    )
    assert (small.tariff, small.delivery_fee, small.total) == (
        new,
        Decimal("3.00"),
        Decimal("42.99"),
    )
    assert (boundary.delivery_fee, boundary.total) == (Decimal("3.00"), Decimal("43.00"))


@pytest.mark.django_db
def test_r6_a_new_tariff_cannot_reach_back_in_time():
    with pytest.raises(InvalidInput) as excinfo:
        create_delivery_tariff(
            fee=Decimal("3.00"),
            free_above=Decimal("40.00"),
            effective_from=timezone.now() - timedelta(days=1),
        )
    assert excinfo.value.errors[0]["field"] == "effective_from"
    assert DeliveryTariff.objects.count() == 1


# R6 in the admin ------------------------------------------------------------------------


def _admin_add_tariff(admin_client, effective_from: datetime):
    local = timezone.localtime(effective_from)
    return admin_client.post(
        "/admin/delivery/deliverytariff/add/",
        {
            "fee": "3.00",
            "free_above": "40.00",
            "effective_from_0": local.strftime("%Y-%m-%d"),
            "effective_from_1": local.strftime("%H:%M:%S"),
        },
    )


@pytest.mark.django_db
def test_r6_admin_schedules_a_new_tariff_for_a_later_date(admin_client):
    response = _admin_add_tariff(admin_client, timezone.now() + timedelta(days=7))
    assert response.status_code == 302, response.content.decode()[:2000]
    new = DeliveryTariff.objects.order_by("-pk").first()
    assert (new.fee, new.free_above) == (Decimal("3.00"), Decimal("40.00"))
    assert DeliveryTariff.objects.in_force().fee == Decimal("2.00")  # not yet in force
    listing = admin_client.get("/admin/delivery/deliverytariff/")
    assert listing.status_code == 200


@pytest.mark.django_db
def test_r6_admin_refuses_a_backdated_tariff(admin_client):
    response = _admin_add_tariff(admin_client, timezone.now() - timedelta(days=2))
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["effective_from"]
    assert DeliveryTariff.objects.count() == 1


@pytest.mark.django_db
def test_r6_a_tariff_in_use_is_read_only_and_cannot_be_deleted(admin_client):
    order = place_test_order().order
    url = f"/admin/delivery/deliverytariff/{order.tariff_id}/change/"

    page = admin_client.get(url)
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields  # every field read-only
    assert not page.context["has_delete_permission"]
    admin_client.post(url, {"fee": "9.99", "free_above": "1.00"})
    order.tariff.refresh_from_db()
    assert order.tariff.fee == Decimal("2.00")
    delete = admin_client.post(
        f"/admin/delivery/deliverytariff/{order.tariff_id}/delete/", {"post": "yes"}
    )
    assert delete.status_code == 403
    assert DeliveryTariff.objects.filter(pk=order.tariff_id).exists()


@pytest.mark.django_db
def test_r6_an_unused_scheduled_tariff_can_still_be_edited(admin_client):
    scheduled = create_delivery_tariff(
        fee=Decimal("3.00"),
        free_above=Decimal("40.00"),
        effective_from=timezone.now() + timedelta(days=7),
    )
    page = admin_client.get(f"/admin/delivery/deliverytariff/{scheduled.pk}/change/")
    assert set(page.context["adminform"].form.fields) == {"fee", "free_above", "effective_from"}
    assert page.context["has_delete_permission"]


# R7 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid_on", "earliest", "latest"),
    [
        # paid on a Friday: the weekend does not count
        (date(2026, 11, 13), date(2026, 11, 16), date(2026, 11, 17)),
        # 18 November (Proclamation Day) is a public holiday
        (date(2026, 11, 17), date(2026, 11, 19), date(2026, 11, 20)),
        # 24-26 December are holidays and the 27th a Sunday
        (date(2026, 12, 23), date(2026, 12, 28), date(2026, 12, 29)),
    ],
)
def test_r7_estimated_delivery_is_1_to_2_working_days_after_payment(paid_on, earliest, latest):
    assert estimated_delivery(paid_on=paid_on, calendar=LatvianCalendar()) == (earliest, latest)


def test_r7_extra_holidays_from_the_override_table_count_too():
    calendar = LatvianCalendar(extra_holidays=[date(2026, 11, 16)])
    assert estimated_delivery(paid_on=date(2026, 11, 13), calendar=calendar) == (
        date(2026, 11, 17),
        date(2026, 11, 19),
    )
