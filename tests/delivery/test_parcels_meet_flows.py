"""Where the parcels meet the other flows on one order (issue 15, findings 2, 6, 7, 12):
delivery from the last parcel (R14b, R16), a cancellation stops everything downstream
(R14a, R27), courier failures need the customer's fault (R14c), a return to sender after a
withdrawal brings the goods back for it (R20, R21)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from delivery.models import CourierEvent, Shipment, ShipmentStatus
from delivery.services import (
    CourierEventData,
    apply_courier_event,
    register_shipment,
)
from legal.models import Disclosure
from orders.models import CancelReason, Order, OrderStatus, RefundReason, RefundStatus
from orders.selectors import withdrawal_deadline
from orders.services.lifecycle import cancel_by_customer, cancel_order
from returns.models import Withdrawal, WithdrawalStatus
from returns.rules import conformity_period_end
from returns.withdrawals.services import RequestedLine, close_finished_orders, receive_withdrawal
from shop import outbox
from shop.calendar import RIGA
from shop.errors import Refused
from shop.models import OutboxMessage
from tests.delivery.conftest import paid_order, shipped_order

pytestmark = pytest.mark.django_db

IBAN = "LV80BANK0000435195001"
HOLDER = "Anna Bērziņa"
TWO_LINES = [("KEU-001", 1), ("KEU-002", 1)]


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def apply(barcode: str, event: str, at: datetime, *, reason: str = "") -> str:
    return apply_courier_event(
        event=CourierEventData(
            event_id=f"{barcode}-{event}-{at.isoformat()}",
            barcode=barcode,
            event=event,
            occurred_at=at,
            reason=reason,
        )
    ).result


def line_of(order: Order, sku: str) -> list[dict]:
    line = order.lines.get(sku=sku)
    return [{"line_id": line.pk, "sku": sku, "quantity": line.quantity}]


def split_order(at: datetime) -> Order:
    """Two lines paid at `at`, shipped the same day in two parcels, A and B."""
    with time_machine.travel(at, tick=False):
        order = paid_order(lines=TWO_LINES)
        token = order.access_token
        register_shipment(
            order_id=order.pk, barcode="CE00000000ALV", lines=line_of(order, "KEU-001")
        )
        register_shipment(
            order_id=order.pk, barcode="CE00000000BLV", lines=line_of(order, "KEU-002")
        )
    order = Order.objects.get(pk=order.pk)
    order.access_token = token
    return order


def get_order(api_client, order: Order) -> dict:
    response = api_client.get(f"/api/orders/{order.number}/", HTTP_X_ORDER_TOKEN=order.access_token)
    assert response.status_code == 200
    return response.json()


def template_sent(name: str) -> bool:
    return any(m.extra_headers.get("X-Shop-Template") == name for m in mail.outbox)


# --- Finding 2: delivery comes from the parcels (R14b, R16) ---------------------------------


def test_r16_finding_2_split_order_is_delivered_by_its_last_parcel_and_the_deadline_follows_it(
    courier_off, api_client
):
    """Parcel A arrives Mon 2 Nov, parcel B Wed 4 Nov 2026. Until B arrives the order is on
    its way (no withdrawal deadline: the customer may withdraw at any time, CRD Art 9(3));
    then it is delivered at B's time and the 14 days from 5 Nov end on Wed 18 Nov, the
    Proclamation Day holiday, so the period rolls to Thu 19 Nov (R0.4)."""
    order = split_order(riga(2026, 10, 30, 10, 0))

    with time_machine.travel(riga(2026, 11, 2, 15, 0), tick=False):
        assert apply("CE00000000ALV", "delivered", riga(2026, 11, 2, 14, 0)) == "applied"
        shown = get_order(api_client, order)
    assert shown["status"] == OrderStatus.SHIPPED
    assert shown["delivered_at"] is None
    assert shown["withdrawal_deadline"] is None

    with time_machine.travel(riga(2026, 11, 4, 12, 0), tick=False):
        assert apply("CE00000000BLV", "delivered", riga(2026, 11, 4, 11, 30)) == "applied"
        shown = get_order(api_client, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at == riga(2026, 11, 4, 11, 30)
    end = riga(2026, 11, 19, 23, 59, 59, 999999)
    assert withdrawal_deadline(order) == end
    assert shown["status"] == OrderStatus.DELIVERED
    assert datetime.fromisoformat(shown["withdrawal_deadline"]) == end


def test_r16_finding_2_a_withdrawal_on_day_15_after_the_first_parcel_is_accepted(
    courier_off, api_client
):
    """Tue 17 Nov is day 15 after parcel A (period from A: 16 Nov) but day 13 after
    parcel B (period from B: 19 Nov): the statement is in time (API)."""
    order = split_order(riga(2026, 10, 30, 10, 0))
    apply("CE00000000ALV", "delivered", riga(2026, 11, 2, 14, 0))
    apply("CE00000000BLV", "delivered", riga(2026, 11, 4, 11, 30))

    with time_machine.travel(riga(2026, 11, 17, 20, 0), tick=False):
        response = api_client.post(
            f"/api/orders/{order.number}/withdrawals/",
            {"lines": [], "iban": IBAN, "account_holder": HOLDER, "reason": ""},
            format="json",
            HTTP_X_ORDER_TOKEN=order.access_token,
        )
    assert response.status_code == 201, response.json()
    assert Withdrawal.objects.get(order=order).period_end == riga(2026, 11, 19, 23, 59, 59, 999999)


def test_r16_finding_2_the_close_job_waits_for_a_parcel_still_on_its_way(
    courier_off, api_client, django_capture_on_commit_callbacks
):
    """Parcel A alone delivers the order on Tue 20 Oct (summer time); its period would end
    Tue 3 Nov (winter time, after the DST change of 25 Oct). Parcel B with the rest ships
    on 28 Oct and travels until Sat 21 Nov. Meanwhile the goods are not all delivered: no
    deadline is shown and the close job on 10 Nov leaves the order open. B's delivery
    moves the delivery time, the withdrawal deadline to Mon 7 Dec (5 Dec is a Saturday),
    and the R23/R28 clocks; a withdrawal on 1 Dec is accepted."""
    with time_machine.travel(riga(2026, 10, 16, 10, 0), tick=False):
        order = paid_order(lines=TWO_LINES)
        token = order.access_token
        register_shipment(
            order_id=order.pk, barcode="CE00000000ALV", lines=line_of(order, "KEU-001")
        )
    with django_capture_on_commit_callbacks(execute=True):
        apply("CE00000000ALV", "delivered", riga(2026, 10, 20, 14, 0))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert withdrawal_deadline(order) == riga(2026, 11, 3, 23, 59, 59, 999999)
    kept_after_a = contact_kept_until(order)

    with time_machine.travel(riga(2026, 10, 28, 10, 0), tick=False):
        register_shipment(
            order_id=order.pk, barcode="CE00000000BLV", lines=line_of(order, "KEU-002")
        )
    order.access_token = token
    with time_machine.travel(riga(2026, 11, 10, 3, 0), tick=False):
        assert get_order(api_client, order)["withdrawal_deadline"] is None  # B travels
    assert close_finished_orders(now=riga(2026, 11, 10, 3, 0)) == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED

    with django_capture_on_commit_callbacks(execute=True):
        apply("CE00000000BLV", "delivered", riga(2026, 11, 21, 9, 0))
    order.refresh_from_db()
    assert order.delivered_at == riga(2026, 11, 21, 9, 0)
    assert withdrawal_deadline(order) == riga(2026, 12, 7, 23, 59, 59, 999999)
    # R23: the conformity period runs two years from B; R28: so does the contact data.
    assert conformity_period_end(order.delivered_at).date() == date(2028, 11, 21)
    assert contact_kept_until(order) - kept_after_a == timedelta(days=32)

    with time_machine.travel(riga(2026, 12, 1, 10, 0), tick=False):
        response = api_client.post(
            f"/api/orders/{order.number}/withdrawals/",
            {"lines": [], "iban": IBAN, "account_holder": HOLDER, "reason": ""},
            format="json",
            HTTP_X_ORDER_TOKEN=token,
        )
    assert response.status_code == 201, response.json()


def contact_kept_until(order: Order) -> date:
    from legal.models import PersonalDataRecord

    return PersonalDataRecord.objects.get(order=order, category="contact").keep_until


# --- Finding 6: a cancellation stops everything downstream (R14a, R27, R14c) ---------------


def test_r14a_finding_6_a_cancellation_before_background_registration_sends_nothing_to_omniva(
    fake_omniva, django_capture_on_commit_callbacks
):
    """The customer cancels while the Omniva registration waits in the outbox: the parcel
    is stopped, Omniva receives nothing (no disclosure, R27) and no "on its way" email."""
    order = paid_order()
    shipment = register_shipment(order_id=order.pk)  # the outbox has not run yet
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cancel_by_customer(order_id=order.pk)
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.CANCELLED

    with django_capture_on_commit_callbacks(execute=True):
        outbox.deliver(OutboxMessage.objects.get(topic="delivery.register_shipment").pk)

    assert fake_omniva.requests == []  # nothing was registered with Omniva
    assert fake_omniva.shipments == {}
    assert Shipment.objects.get(pk=shipment.pk).barcode is None
    assert not Disclosure.objects.filter(order=order, recipient="omniva").exists()
    assert not template_sent("shipment_registered")
    assert template_sent("order_cancelled")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def test_r14a_finding_6_a_registration_already_queued_for_a_cancelled_order_refuses(fake_omniva):
    """The same with the shipment still pending when the order was cancelled some other
    way (e.g. before delivery's hook ran): the background registration itself refuses."""
    order = paid_order()
    shipment = register_shipment(order_id=order.pk)
    cancel_order(order_id=order.pk, reason=CancelReason.STAFF)
    Shipment.objects.filter(pk=shipment.pk).update(status=ShipmentStatus.PENDING)  # raw

    from delivery.services import register_with_courier

    assert register_with_courier(shipment_id=shipment.pk).status == ShipmentStatus.CANCELLED
    assert fake_omniva.requests == []
    assert not Disclosure.objects.filter(order=order).exists()


@pytest.mark.parametrize("reason", [CancelReason.STAFF, CancelReason.CUSTOMER])
def test_r14c_finding_6_nobody_cancels_an_order_whose_parcel_is_with_the_courier(
    courier_off, reason
):
    """Staff included: the order waits for delivery or return; the later `delivered`
    delivers it and nothing was refunded."""
    order = shipped_order("CE123456789LV")
    apply("CE123456789LV", "accepted", datetime(2026, 11, 2, 15, 0, tzinfo=UTC))

    with pytest.raises(Refused) as refused:
        cancel_order(order_id=order.pk, reason=reason)
    assert refused.value.code == "parcel_with_courier"
    assert refused.value.status_code == 422

    assert apply("CE123456789LV", "delivered", datetime(2026, 11, 3, 9, 0, tzinfo=UTC)) == (
        "applied"
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert not order.refunds.exists()


def test_r14c_finding_6_the_customers_cancel_api_answers_422_with_the_code(courier_off, api_client):
    order = shipped_order("CE123456789LV")
    response = api_client.post(
        f"/api/orders/{order.number}/cancel/", HTTP_X_ORDER_TOKEN=order.access_token
    )
    assert response.status_code == 422
    assert response.json()["code"] == "parcel_with_courier"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED


def test_r14c_finding_6_the_staff_admin_action_leaves_a_shipped_order_alone(courier_off, client):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.contrib.auth.models import User

    order = shipped_order("CE123456789LV")
    User.objects.create_superuser("boss", "boss@example.lv", "pw-for-tests")
    client.login(username="boss", password="pw-for-tests")
    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_by_staff", ACTION_CHECKBOX_NAME: [order.pk], "confirm": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert not Order.objects.get(pk=order.pk).refunds.exists()


# --- Finding 7: courier failures (R14c) -----------------------------------------------------


@pytest.mark.parametrize("reason", ["", "weather_conditions", "Unknown"])
def test_r14c_finding_7_a_failure_without_the_customers_fault_leaves_the_order_shipped(
    courier_off, client, reason
):
    """An empty or unknown reason cancels nothing: the order stays shipped, nothing is
    refunded, the event waits for staff; the `delivered` five hours later applies."""
    from django.contrib.auth.models import User

    order = shipped_order("CE123456789LV")
    failed_at = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    assert apply("CE123456789LV", "delivery_failed", failed_at, reason=reason) == "applied"

    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert not order.refunds.exists()
    event = CourierEvent.objects.get(event="delivery_failed")
    assert event.needs_review and event.review_reason

    # Staff see it in the queue of the courier events admin.
    User.objects.create_superuser("boss", "boss@example.lv", "pw-for-tests")
    client.login(username="boss", password="pw-for-tests")
    queue = client.get("/admin/delivery/courierevent/", {"needs_review__exact": "1"})
    assert queue.status_code == 200
    assert queue.context["cl"].result_count == 1

    delivered_at = datetime(2026, 11, 10, 17, 0, tzinfo=UTC)
    assert apply("CE123456789LV", "delivered", delivered_at) == "applied"  # not stale
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at == delivered_at
    assert withdrawal_deadline(order) is not None  # the withdrawal clock runs
    assert Shipment.objects.get(barcode="CE123456789LV").status == ShipmentStatus.DELIVERED


@pytest.mark.parametrize("reason", ["not_collected", "Not collected", "refused"])
def test_r14c_a_reason_naming_the_customers_fault_cancels_and_keeps_the_fee(courier_off, reason):
    order = shipped_order("CE123456789LV")
    apply(
        "CE123456789LV", "delivery_failed", datetime(2026, 11, 10, 12, 0, tzinfo=UTC), reason=reason
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == CancelReason.DELIVERY_FAILED
    refund = order.refunds.get()
    assert refund.amount == Decimal("20.00")  # the goods; the EUR 2.00 fee is kept
    assert refund.reason == RefundReason.DELIVERY_FAILED
    assert not CourierEvent.objects.filter(needs_review=True).exists()


def test_r14c_a_split_orders_failed_second_parcel_does_not_refund_the_delivered_one(courier_off):
    """Parcel A arrived; parcel B was not collected. Cancelling the whole order would
    refund A's goods the customer keeps: the event goes to staff instead."""
    order = split_order(riga(2026, 10, 30, 10, 0))
    apply("CE00000000ALV", "delivered", riga(2026, 11, 2, 14, 0))
    apply("CE00000000BLV", "delivery_failed", riga(2026, 11, 9, 14, 0), reason="not_collected")

    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert not order.refunds.exists()
    assert CourierEvent.objects.get(event="delivery_failed").needs_review


# --- Finding 12: a withdrawal, then the parcel comes back (R14c, R20, R21) ------------------


def test_r21_r14c_finding_12_returned_to_sender_after_a_withdrawal_releases_its_refund(
    courier_off,
):
    """The customer withdraws while the parcel travels and does not collect it; Omniva
    sends it back (`returned_to_sender`, "not collected"). The goods are back for the
    withdrawal: the held refund is released, the order is not cancelled for the customer's
    fault and nothing is refunded twice."""
    order = shipped_order("CE123456789LV")
    apply("CE123456789LV", "accepted", datetime(2026, 11, 2, 15, 0, tzinfo=UTC))
    received = receive_withdrawal(
        order_id=order.pk,
        lines=[RequestedLine(sku="KEU-001", quantity=1)],
        iban=IBAN,
        account_holder=HOLDER,
        channel="api",
    )
    withdrawal = received.withdrawal
    assert withdrawal.refund.status == RefundStatus.PENDING  # held until the goods are back

    back = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)
    assert apply("CE123456789LV", "returned_to_sender", back, reason="not_collected") == "applied"

    order.refresh_from_db()
    assert order.status != OrderStatus.CANCELLED
    assert order.cancel_reason == ""
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.GOODS_RECEIVED
    assert withdrawal.goods_received_at == back
    refund = order.refunds.get()  # the withdrawal's, and only it
    assert refund.reason == RefundReason.WITHDRAWAL
    assert refund.status != RefundStatus.PENDING  # released
    assert refund.amount == Decimal("22.00")  # the whole order: goods and fee
