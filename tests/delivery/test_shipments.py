"""delivery.services.register_shipment and friends (R14a, R7, R27, T7.5)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from delivery.models import RegistrationMethod, Shipment, ShipmentStatus
from delivery.services import (
    create_replacement_shipment,
    register_pending_shipment,
    register_shipment,
    stop_unregistered_shipments,
)
from legal.models import Disclosure
from orders.models import Order, OrderStatus
from shop import outbox
from shop.calendar import RIGA
from shop.errors import Conflict, InvalidInput, Refused
from shop.models import OutboxMessage
from tests.delivery.conftest import paid_order
from tests.factories import place_test_order

pytestmark = pytest.mark.django_db


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def shipment_email() -> str:
    emails = [
        m for m in mail.outbox if m.extra_headers.get("X-Shop-Template") == "shipment_registered"
    ]
    assert len(emails) == 1
    return emails[0].body


def test_r14a_a_barcode_registered_by_hand_ships_the_order_and_emails_the_customer(
    courier_off, django_capture_on_commit_callbacks
):
    # Paid on Friday 13 Nov 2026: R7 estimate Mon 16 - Tue 17 Nov.
    with time_machine.travel(riga(2026, 11, 13, 10, 0), tick=False):
        order = paid_order()
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            shipment = register_shipment(order_id=order.pk, barcode=" ce 123456789 lv ")

    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.REGISTERED
    assert shipment.barcode == "CE123456789LV"
    assert shipment.registration == RegistrationMethod.BY_HAND
    assert shipment.lines == [{"line_id": order.lines.get().pk, "sku": "KEU-001", "quantity": 1}]
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert order.shipped_at == riga(2026, 11, 13, 10, 0)

    body = shipment_email()
    assert "CE123456789LV" in body  # the tracking number
    assert "sutijuma-atrasanas-vieta?barcode=CE123456789LV" in body  # and its link
    assert "16.11.2026" in body and "17.11.2026" in body  # R7: 1-2 working days after payment
    assert "7.5" in body  # the return-code information (T7.5)
    assert mail.outbox[0].to == ["anna@example.lv"]


def test_r27_every_registration_writes_a_disclosure_to_omniva(courier_off):
    order = paid_order()
    register_shipment(order_id=order.pk, barcode="CE000000001LV")

    disclosure = Disclosure.objects.get(order=order)
    assert disclosure.recipient == "omniva"
    assert disclosure.categories == ["name", "phone", "email", "parcel_machine"]
    assert disclosure.purpose == "delivery"


def test_r14a_only_a_paid_order_is_shipped(courier_off):
    order = place_test_order().order  # placed, not paid
    with pytest.raises(Refused) as refused:
        register_shipment(order_id=order.pk, barcode="CE000000001LV")
    assert refused.value.code == "order_not_shippable"
    assert refused.value.facts["status"] == "placed"
    assert not Shipment.objects.exists()


def test_a_barcode_is_recorded_once(courier_off):
    first, second = paid_order(), paid_order()
    register_shipment(order_id=first.pk, barcode="CE000000001LV")
    with pytest.raises(Conflict) as conflict:
        register_shipment(order_id=second.pk, barcode="ce000000001lv")
    assert conflict.value.code == "barcode_already_registered"
    assert Order.objects.get(pk=second.pk).status == OrderStatus.PAID


@pytest.mark.parametrize("barcode", ["", "CE1", "CE12345678LV!", "x" * 40])
def test_a_malformed_barcode_is_bad_input(courier_off, barcode):
    order = paid_order()
    with pytest.raises(InvalidInput):
        register_shipment(order_id=order.pk, barcode=barcode)


def test_without_a_barcode_the_courier_must_be_on(courier_off):
    order = paid_order()
    with pytest.raises(Refused) as refused:
        register_shipment(order_id=order.pk)
    assert refused.value.code == "courier_off"
    assert "record its barcode by hand" in refused.value.detail


def test_r14a_omniva_registers_in_the_background_and_the_label_is_kept(
    fake_omniva, django_capture_on_commit_callbacks
):
    order = paid_order()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        shipment = register_shipment(order_id=order.pk)
        assert shipment.status == ShipmentStatus.PENDING  # until the outbox runs

    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.REGISTERED
    assert shipment.registration == RegistrationMethod.COURIER_API
    assert shipment.barcode in fake_omniva.shipments
    assert shipment.return_code == fake_omniva.shipments[shipment.barcode]["returnCode"]
    assert bytes(shipment.label_pdf).startswith(b"%PDF")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert Disclosure.objects.filter(order=order, recipient="omniva").count() == 1
    body = shipment_email()
    assert shipment.barcode in body
    assert shipment.return_code in body  # T7.5
    # R27: what Omniva got about the customer
    receiver = fake_omniva.requests[0]["body"]["shipments"][0]["receiverAddressee"]
    assert receiver == {
        "personName": "Anna Bērziņa",
        "contactMobile": "+37120000000",
        "contactEmail": "anna@example.lv",
        "address": {"country": "LV", "offloadPostcode": "9001"},
    }
    assert fake_omniva.requests[0]["body"]["shipments"][0]["partnerShipmentId"] == (
        f"{order.number}-{shipment.pk}"
    )


def test_a_refusal_by_omniva_waits_for_staff_with_the_reason(
    fake_omniva, django_capture_on_commit_callbacks
):
    order = paid_order()
    fake_omniva.fail_next("failed")
    with django_capture_on_commit_callbacks(execute=True):
        shipment = register_shipment(order_id=order.pk)

    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.PENDING
    assert "Price list does not exist" in shipment.registration_error
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert not Disclosure.objects.exists()

    # Staff fix the cause and use "Register with Omniva" again.
    with django_capture_on_commit_callbacks(execute=True):
        register_pending_shipment(shipment_id=shipment.pk)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.REGISTERED
    assert shipment.registration_error == ""
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED


def test_omniva_unavailable_is_retried_by_the_outbox(
    fake_omniva, django_capture_on_commit_callbacks
):
    order = paid_order()
    fake_omniva.fail_next("503", times=3)  # every attempt of the first delivery
    with django_capture_on_commit_callbacks(execute=True):
        shipment = register_shipment(order_id=order.pk)

    message = OutboxMessage.objects.get(topic="delivery.register_shipment")
    assert message.delivered_at is None and message.attempts == 1
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.deliver(message.pk) is True  # the relay's next try
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.REGISTERED
    assert outbox.deliver(message.pk) is False  # idempotent: nothing more to do


def test_a_second_shipment_of_a_shipped_order_keeps_it_shipped(courier_off):
    order = paid_order(lines=[("KEU-001", 1), ("KEU-002", 1)])
    lines = list(order.lines.order_by("pk"))
    register_shipment(
        order_id=order.pk,
        barcode="CE000000001LV",
        lines=[{"line_id": lines[0].pk, "sku": "KEU-001", "quantity": 1}],
    )
    register_shipment(
        order_id=order.pk,
        barcode="CE000000002LV",
        lines=[{"line_id": lines[1].pk, "sku": "KEU-002", "quantity": 1}],
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert order.shipments.count() == 2


def test_r24_a_replacement_waits_and_does_not_touch_the_order(courier_off):
    order = paid_order()
    register_shipment(order_id=order.pk, barcode="CE000000001LV")
    replacement = create_replacement_shipment(
        order_id=order.pk, lines=[{"line_id": 1, "sku": "KEU-001", "quantity": 1}], reason="R24"
    )
    assert replacement.status == ShipmentStatus.PENDING and replacement.replacement
    register_pending_shipment(shipment_id=replacement.pk, barcode="CE000000002LV")
    assert Shipment.objects.get(pk=replacement.pk).status == ShipmentStatus.REGISTERED


def test_r16_a_withdrawal_before_dispatch_stops_a_shipment_not_registered_yet(
    fake_omniva, django_capture_on_commit_callbacks
):
    order = paid_order()
    shipment = register_shipment(order_id=order.pk)  # the outbox has not run yet
    assert stop_unregistered_shipments(order_id=order.pk) == 1
    with django_capture_on_commit_callbacks(execute=True):
        pass
    outbox.deliver(OutboxMessage.objects.get(topic="delivery.register_shipment").pk)

    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.CANCELLED
    assert fake_omniva.requests == []  # nothing was sent to Omniva
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


# --- The staff API -------------------------------------------------------------------------


def test_staff_api_records_a_barcode(api_client, shipping_clerk, courier_off):
    order = paid_order()
    api_client.force_authenticate(shipping_clerk)
    response = api_client.post(
        f"/api/staff/orders/{order.number}/shipments/", {"barcode": "CE123456789LV"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["barcode"] == "CE123456789LV"
    assert response.json()["status"] == "registered"
    assert response.json()["tracking_url"].endswith("barcode=CE123456789LV")


@pytest.mark.django_db(transaction=True)
def test_staff_api_registers_with_omniva(api_client, shipping_clerk, fake_omniva):
    """Committed for real, as in `make run`: the eager outbox registers before the answer."""
    order = paid_order()
    api_client.force_authenticate(shipping_clerk)
    response = api_client.post(f"/api/staff/orders/{order.number}/shipments/", {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "registered"
    assert body["barcode"] in fake_omniva.shipments
    assert body["label_url"] == f"/api/staff/shipments/{body['id']}/label.pdf"

    label = api_client.get(body["label_url"])
    assert label.status_code == 200
    assert label["Content-Type"] == "application/pdf"
    assert label.content.startswith(b"%PDF")


def test_staff_api_answers_refusals_as_problems(api_client, shipping_clerk, courier_off):
    api_client.force_authenticate(shipping_clerk)
    unpaid = place_test_order().order
    response = api_client.post(f"/api/staff/orders/{unpaid.number}/shipments/", {}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "order_not_shippable"

    order = paid_order()
    response = api_client.post(f"/api/staff/orders/{order.number}/shipments/", {}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "courier_off"

    response = api_client.post(
        f"/api/staff/orders/{order.number}/shipments/", {"barcode": "??"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "barcode"

    response = api_client.post("/api/staff/orders/NOSUCH/shipments/", {}, format="json")
    assert response.status_code == 404


def test_staff_api_needs_the_permission(api_client, courier_off):
    from django.contrib.auth.models import User

    order = paid_order()
    clerk = User.objects.create_user("clerk", password="pw-for-tests", is_staff=True)
    api_client.force_authenticate(clerk)  # staff, without delivery.add_shipment
    response = api_client.post(
        f"/api/staff/orders/{order.number}/shipments/", {"barcode": "CE123456789LV"}, format="json"
    )
    assert response.status_code == 403
    assert not Shipment.objects.exists()
    api_client.force_authenticate(None)
    response = api_client.post(
        f"/api/staff/orders/{order.number}/shipments/", {"barcode": "CE123456789LV"}, format="json"
    )
    assert response.status_code in (401, 403)


# --- The admin -----------------------------------------------------------------------------


def test_admin_adds_a_shipment_on_the_fake_omniva_and_serves_the_label(
    client, fake_omniva, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import User

    admin = User.objects.create_superuser("boss", password="pw-for-tests")
    client.force_login(admin)
    order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/delivery/shipment/add/",
            {"order_number": order.number.lower(), "barcode_by_hand": ""},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    shipment = Shipment.objects.get(order=order)
    assert shipment.status == ShipmentStatus.REGISTERED

    page = client.get(f"/admin/delivery/shipment/{shipment.pk}/change/")
    assert page.status_code == 200
    assert shipment.barcode in page.content.decode()
    label = client.get(f"/admin/delivery/shipment/{shipment.pk}/label.pdf")
    assert label.status_code == 200 and label.content.startswith(b"%PDF")
    listing = client.get("/admin/delivery/shipment/")
    assert listing.status_code == 200


def test_admin_shows_a_refusal_on_the_form(client, courier_off):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("boss", password="pw-for-tests"))
    unpaid = place_test_order().order
    response = client.post(
        "/admin/delivery/shipment/add/", {"order_number": unpaid.number, "barcode_by_hand": ""}
    )
    assert response.status_code == 200
    assert "Only a paid order can be shipped." in response.content.decode()
    assert not Shipment.objects.exists()


def test_shipment_amounts_are_untouched(courier_off):
    order = paid_order("20.00")
    register_shipment(order_id=order.pk, barcode="CE000000001LV")
    order.refresh_from_db()
    assert order.total == Decimal("22.00")
