"""R13 (T3.5): unavailable goods, substitutes, and refunds of declined lines."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine

from orders.models import InvoiceKind, LineStatus, OrderStatus, RefundReason
from orders.services.payments import record_payment
from orders.services.substitution import decide_substitution, mark_line_unavailable
from shop.calendar import RIGA
from shop.errors import Refused
from shop.models import Product
from tests.factories import ProductFactory, place_test_order

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=RIGA)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def paid_order(lines, prices):
    placed = place_test_order(lines, prices=prices)
    order = placed.order
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method="bank_transfer",
        received_at=NOW,
        payer_name="Anna Bērziņa",
        payer_iban="LV80BANK0000435195001",
    )
    order.refresh_from_db()
    return placed


def test_r13_decline_cancels_the_line_and_refunds_it_within_14_days():
    placed = paid_order([("A", 1), ("B", 1)], {"A": Decimal("20.00"), "B": Decimal("10.00")})
    order = placed.order
    line_b = order.lines.get(sku="B")
    ProductFactory(sku="C", price=Decimal("11.00"))
    mark_line_unavailable(line_id=line_b.pk, substitute_sku="C")
    line_b.refresh_from_db()
    assert line_b.status == LineStatus.UNAVAILABLE

    decide_substitution(order_id=order.pk, line_id=line_b.pk, accept=False)
    line_b.refresh_from_db()
    order.refresh_from_db()
    assert line_b.status == LineStatus.CANCELLED
    assert order.status == OrderStatus.PAID
    assert order.total == Decimal("22.00")  # the 2.00 fee never changes by substitution
    refund = order.refunds.get()
    assert refund.amount == Decimal("10.00")
    assert refund.reason == RefundReason.UNAVAILABLE
    assert refund.due_date == date(2026, 12, 7)
    assert Product.objects.get(sku="B").stock == 100
    assert order.invoices.filter(kind=InvoiceKind.CREDIT_NOTE).count() == 1


def test_r13_accept_cheaper_substitute_refunds_the_difference():
    placed = paid_order([("A", 2)], {"A": Decimal("30.00")})
    order = placed.order  # 60.00, free delivery
    line = order.lines.get()
    ProductFactory(sku="S", price=Decimal("27.50"), stock=5)
    mark_line_unavailable(line_id=line.pk, substitute_sku="S")
    new_line = decide_substitution(order_id=order.pk, line_id=line.pk, accept=True)
    order.refresh_from_db()
    assert new_line.sku == "S" and new_line.line_total == Decimal("55.00")
    assert order.total == Decimal("55.00")
    assert order.refunds.get().amount == Decimal("5.00")
    assert Product.objects.get(sku="S").stock == 3
    assert Product.objects.get(sku="A").stock == 100


def test_r13_accept_dearer_substitute_invoices_the_difference():
    placed = place_test_order([("A", 1)], prices={"A": Decimal("10.00")})
    order = placed.order
    line = order.lines.get()
    ProductFactory(sku="S", price=Decimal("12.00"), stock=5)
    mark_line_unavailable(line_id=line.pk, substitute_sku="S")
    decide_substitution(order_id=order.pk, line_id=line.pk, accept=True)
    order.refresh_from_db()
    assert order.total == Decimal("14.00")  # 12.00 + the unchanged 2.00 fee
    supplementary = order.invoices.filter(kind=InvoiceKind.INVOICE, corrects__isnull=False).get()
    assert supplementary.total == Decimal("2.00")
    assert not order.refunds.exists()


def test_r13_no_goods_left_cancels_and_refunds_everything_with_the_fee():
    placed = paid_order([("A", 1)], {"A": Decimal("10.00")})
    order = placed.order
    line = order.lines.get()
    mark_line_unavailable(line_id=line.pk, substitute_sku=None)  # nothing similar: declined
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "unavailable")
    assert sum(r.amount for r in order.refunds.all()) == Decimal("12.00")


def test_r13_customer_decides_through_the_api(client):
    placed = place_test_order([("A", 1), ("B", 1)])
    order = placed.order
    line = order.lines.get(sku="B")
    ProductFactory(sku="C", price=Decimal("9.00"))
    mark_line_unavailable(line_id=line.pk, substitute_sku="C")
    url = f"/api/orders/{order.number}/lines/{line.pk}/substitution/"
    headers = {"X-Order-Token": placed.access_token}

    detail = client.get(f"/api/orders/{order.number}/", headers=headers).json()
    offered = next(item for item in detail["lines"] if item["sku"] == "B")
    assert offered["substitute"]["sku"] == "C"

    bad = client.post(url, {"accept": "maybe"}, content_type="application/json", headers=headers)
    assert bad.status_code == 400
    response = client.post(url, {"accept": True}, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert {item["sku"] for item in response.json()["lines"]} == {"A", "B", "C"}
    assert response.json()["total"] == "21.00"
    again = client.post(url, {"accept": True}, content_type="application/json", headers=headers)
    assert again.status_code == 422
    assert again.json()["code"] == "no_substitution_pending"


def test_r13_only_open_orders_change():
    placed = paid_order([("A", 1)], {"A": Decimal("10.00")})
    line = placed.order.lines.get()
    mark_line_unavailable(line_id=line.pk, substitute_sku=None)
    with pytest.raises(Refused):
        mark_line_unavailable(line_id=line.pk, substitute_sku=None)


def test_r13_staff_marks_a_line_unavailable_in_the_admin(client, staff_user):
    placed = place_test_order([("A", 1), ("B", 1)])
    order = placed.order
    line = order.lines.get(sku="B")
    ProductFactory(sku="C", price=Decimal("9.00"))
    client.force_login(
        staff_user("orders.view_order", "orders.mark_line_unavailable", username="warehouse")
    )
    url = "/admin/orders/order/"
    form = client.post(url, {"action": "mark_line_unavailable", "_selected_action": [order.pk]})
    assert form.status_code == 200
    assert "substitute_sku" in form.content.decode()
    done = client.post(
        url,
        {
            "action": "mark_line_unavailable",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "line": line.pk,
            "substitute_sku": "C",
        },
    )
    assert done.status_code == 302
    line.refresh_from_db()
    assert line.status == LineStatus.UNAVAILABLE
    assert line.substitute_product.sku == "C"


def test_r13_finding13_dearer_substitute_after_payment_is_open_and_payable():
    """R13 with R32 and R6: a dearer substitute accepted after payment leaves the
    difference open (the API shows it, a bank payment of it is taken, not refunded as an
    overpayment); the fee is judged again: over EUR 50.00 the delivery becomes free."""
    from orders.selectors import order_summary

    placed = paid_order([("A", 1), ("B", 1)], {"A": Decimal("25.00"), "B": Decimal("20.00")})
    order = placed.order  # 45.00 + 2.00 fee, paid 47.00
    line = order.lines.get(sku="B")
    ProductFactory(sku="S", price=Decimal("28.00"), stock=5)
    mark_line_unavailable(line_id=line.pk, substitute_sku="S")
    decide_substitution(order_id=order.pk, line_id=line.pk, accept=True)
    order.refresh_from_db()
    assert (order.goods_total, order.delivery_fee, order.total) == (
        Decimal("53.00"),
        Decimal("0.00"),
        Decimal("53.00"),
    )
    assert order_summary(order).amount_open == Decimal("6.00")
    record_payment(
        order_id=order.pk,
        amount=Decimal("6.00"),
        method="bank_transfer",
        received_at=NOW,
        payer_iban="LV80BANK0000435195001",
    )
    order.refresh_from_db()
    assert order_summary(order).amount_open == Decimal("0.00")
    assert not order.refunds.exists()


def test_r13_finding13_shipping_waits_for_the_open_difference():
    """R13 with R32: the goods of a paid order with an open difference (a dearer
    substitute) ship only once the difference is paid."""
    from delivery.services.shipments import register_shipment

    placed = paid_order([("A", 1)], {"A": Decimal("10.00")})
    order = placed.order
    line = order.lines.get()
    ProductFactory(sku="S", price=Decimal("12.00"), stock=5)
    mark_line_unavailable(line_id=line.pk, substitute_sku="S")
    decide_substitution(order_id=order.pk, line_id=line.pk, accept=True)
    with pytest.raises(Refused) as refused:
        register_shipment(order_id=order.pk, barcode="CE000000123LV")
    assert refused.value.code == "payment_open"
    record_payment(
        order_id=order.pk,
        amount=Decimal("2.00"),
        method="bank_transfer",
        received_at=NOW,
        payer_iban="LV80BANK0000435195001",
    )
    assert register_shipment(order_id=order.pk, barcode="CE000000123LV").barcode
