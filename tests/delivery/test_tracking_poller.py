"""The tracking poller (R14b): delivery.services.poll_tracking and its beat job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from delivery.models import CourierEvent, Shipment, ShipmentStatus
from delivery.services import poll_tracking, register_shipment
from delivery.tasks import poll_courier_tracking
from orders.models import Order, OrderStatus
from shop.celery import app as celery_app
from tests.delivery.conftest import paid_order, post_event

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


def registered_on_the_fake(fake, django_capture_on_commit_callbacks) -> Shipment:
    """Paid and registered on 2 Nov 2026 (the fake's own `registered` event is dated then)."""
    with time_machine.travel(datetime(2026, 11, 2, 10, 0, tzinfo=UTC), tick=False):
        order = paid_order()
        with django_capture_on_commit_callbacks(execute=True):
            shipment = register_shipment(order_id=order.pk)
    shipment.refresh_from_db()
    assert shipment.barcode in fake.shipments
    return shipment


def tracking_requests(fake) -> list[str]:
    return [r["path"] for r in fake.requests if r["method"] == "GET"]


def test_r14b_the_poller_turns_tracking_answers_into_applied_events(
    fake_omniva, django_capture_on_commit_callbacks
):
    shipment = registered_on_the_fake(fake_omniva, django_capture_on_commit_callbacks)
    fake_omniva.add_event(shipment.barcode, "in_transit", occurred_at="2026-11-03T06:00:00Z")
    fake_omniva.add_event(
        shipment.barcode, "delivered", occurred_at="2026-11-03T22:30:00Z", location="Rīga"
    )

    with time_machine.travel(NOW, tick=False):
        report = poll_tracking()

    assert report.asked == 1
    assert report.results == {"applied": 3}  # registered (no change), in transit, delivered
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert shipment.last_polled_at == NOW
    order = Order.objects.get(pk=shipment.order_id)
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at == datetime(2026, 11, 3, 22, 30, tzinfo=UTC)
    events = CourierEvent.objects.filter(shipment=shipment, channel="poller")
    assert sorted(events.values_list("event", flat=True)) == [
        "delivered",
        "in_transit",
        "registered",
    ]
    assert events.get(event="delivered").location == "Rīga"

    # Asked again a minute later: the same events are duplicates, nothing changes; a
    # delivered parcel is no longer asked about at all.
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert poll_tracking().asked == 0


def test_r14b_poller_and_webhook_together_apply_each_change_once(
    fake_omniva, client, django_capture_on_commit_callbacks
):
    shipment = registered_on_the_fake(fake_omniva, django_capture_on_commit_callbacks)
    record = fake_omniva.add_event(
        shipment.barcode, "in_transit", occurred_at="2026-11-03T06:00:00Z"
    )
    with time_machine.travel(NOW, tick=False):
        webhook = post_event(
            client,
            shipment.barcode,
            "in_transit",
            event_id=record["eventId"],
            occurred_at="2026-11-03T06:00:00Z",
        )
        report = poll_tracking()
    assert webhook.json() == {"result": "applied"}
    assert report.results == {"stale": 1, "duplicate": 1}  # registered: behind; in transit: seen
    assert CourierEvent.objects.filter(event="in_transit").count() == 1


def test_r14b_at_most_ten_requests_a_minute_least_recently_asked_first(
    settings, fake_omniva, django_capture_on_commit_callbacks
):
    settings.OMNIVA_POLL_PER_MINUTE = 10
    shipments = [
        registered_on_the_fake(fake_omniva, django_capture_on_commit_callbacks) for _ in range(15)
    ]
    fake_omniva.requests.clear()

    with time_machine.travel(NOW, tick=False):
        first = poll_tracking()
        again = poll_tracking()  # the same minute: skipped
    assert first.asked == 10
    assert again.skipped is True and again.asked == 0
    assert len(tracking_requests(fake_omniva)) == 10

    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        second = poll_tracking()
    assert second.asked == 10
    asked_first = {s.barcode for s in shipments[:10]}
    paths = tracking_requests(fake_omniva)[10:]
    # the 5 never asked come first, then the 5 asked longest ago
    assert {p.rsplit("/", 1)[1] for p in paths[:5]} == {s.barcode for s in shipments[10:]}
    assert {p.rsplit("/", 1)[1] for p in paths[5:]} <= asked_first


def test_a_failing_omniva_is_not_retried_within_the_batch(
    settings, fake_omniva, django_capture_on_commit_callbacks
):
    settings.OMNIVA_POLL_PER_MINUTE = 10
    for _ in range(3):
        registered_on_the_fake(fake_omniva, django_capture_on_commit_callbacks)
    fake_omniva.requests.clear()
    fake_omniva.fail_next("503")
    with time_machine.travel(NOW, tick=False):
        report = poll_tracking()
    assert (report.asked, report.failed) == (3, 1)
    assert len(tracking_requests(fake_omniva)) == 3  # one request each, the budget holds


def test_wrong_credentials_stop_the_batch(
    settings, fake_omniva, django_capture_on_commit_callbacks
):
    for _ in range(3):
        registered_on_the_fake(fake_omniva, django_capture_on_commit_callbacks)
    settings.OMNIVA_PASSWORD = "wrong"
    fake_omniva.requests.clear()
    with time_machine.travel(NOW, tick=False):
        report = poll_tracking()
    assert (report.asked, report.failed) == (1, 1)


def test_the_poller_rests_while_the_courier_client_is_off(courier_off):
    order = paid_order()
    register_shipment(order_id=order.pk, barcode="CE000000001LV")
    report = poll_tracking()
    assert report.skipped is True and report.asked == 0


def test_the_beat_job_and_the_command_run_the_poller(
    fake_omniva, django_capture_on_commit_callbacks, capsys
):
    assert celery_app.conf.beat_schedule["poll-courier-tracking"] == {
        "task": "delivery.tasks.poll_courier_tracking",
        "schedule": timedelta(minutes=1),
    }
    shipment = registered_on_the_fake(fake_omniva, django_capture_on_commit_callbacks)
    fake_omniva.add_event(shipment.barcode, "in_transit", occurred_at="2026-11-03T06:00:00Z")
    with time_machine.travel(NOW, tick=False):
        assert poll_courier_tracking.delay().get() == {"asked": 1, "failed": 0, "applied": 2}
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        call_command("poll_courier_tracking")
    assert "Asked about 1 shipment(s), 0 failed: duplicate 2." in capsys.readouterr().out
