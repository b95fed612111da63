"""POST /api/webhooks/omniva/ and delivery.services.apply_courier_event (R14b, R14c, R16,
R20; DESIGN.md section 10)."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from delivery import rules
from delivery.api.courier_views import OmnivaWebhookView
from delivery.models import (
    CourierEvent,
    RegistrationMethod,
    Shipment,
    ShipmentDirection,
    ShipmentStatus,
)
from delivery.services import (
    CourierEventData,
    apply_courier_event,
    on_return_delivered,
    register_return_shipment,
    register_shipment,
    rematch_events,
)
from delivery.services import courier_events as courier_events_module
from orders.models import CancelReason, Order, OrderStatus, Refund, RefundReason
from orders.selectors import withdrawal_deadline
from shop.calendar import RIGA
from tests.conftest import requires_postgresql
from tests.delivery.conftest import (
    event_body,
    paid_order,
    post_event,
    shipped_order,
    signed_headers,
)

pytestmark = pytest.mark.django_db

BARCODE = "CE123456789LV"
DELIVERED_AT = "2026-11-03T22:30:00Z"  # 00:30 on 4 November in Riga


@pytest.fixture
def order(courier_off):
    with time_machine.travel(datetime(2026, 11, 2, 9, 0, tzinfo=UTC), tick=False):
        return shipped_order(BARCODE)


def snapshot() -> tuple:
    shipment = Shipment.objects.get(barcode=BARCODE)
    order = Order.objects.get(pk=shipment.order_id)
    return (
        CourierEvent.objects.count(),
        shipment.status,
        shipment.delivered_at,
        order.status,
        order.delivered_at,
        Refund.objects.count(),
    )


def apply(barcode: str, event: str, at: str, *, event_id: str | None = None, reason: str = ""):
    return apply_courier_event(
        event=CourierEventData(
            event_id=event_id or f"{barcode}-{event}-{at}",
            barcode=barcode,
            event=event,
            occurred_at=datetime.fromisoformat(at.replace("Z", "+00:00")),
            reason=reason,
        )
    ).result


# --- The contract ---------------------------------------------------------------------------


def test_r14b_r16_delivered_starts_the_withdrawal_period_shown_on_the_order(
    order, client, django_capture_on_commit_callbacks
):
    """Delivered 2026-11-03T22:30Z = 00:30 on 4 Nov in Riga: 14 days end on 18 Nov, a
    public holiday, so the period ends at the end of Thursday 19 Nov 2026, Riga time."""
    with (
        time_machine.travel(datetime(2026, 11, 3, 22, 31, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post_event(
            client, BARCODE, "delivered", event_id="evt-1", occurred_at=DELIVERED_AT
        )
    assert response.status_code == 200, response.content
    assert response.json() == {"result": "applied"}

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at == datetime(2026, 11, 3, 22, 30, tzinfo=UTC)
    assert withdrawal_deadline(order) == datetime(2026, 11, 19, 23, 59, 59, 999999, tzinfo=RIGA)
    shipment = Shipment.objects.get(barcode=BARCODE)
    assert shipment.status == ShipmentStatus.DELIVERED

    shown = client.get(f"/api/orders/{order.number}/", HTTP_X_ORDER_TOKEN=order.access_token)
    assert shown.status_code == 200
    assert shown.json()["status"] == "delivered"
    assert shown.json()["withdrawal_deadline"] == "2026-11-19T23:59:59.999999+02:00"

    delivered = [m for m in mail.outbox if "19.11.2026" in m.body]
    assert len(delivered) == 1  # the delivered email names the deadline


def test_the_webhook_is_throttled_under_its_own_scope():
    assert OmnivaWebhookView.throttle_scope == "webhook"


def test_signed_courier_calls_are_never_throttled_refused_ones_are(client, monkeypatch):
    """R14b: past the `webhook` rate a correctly signed call is still applied (a 429 would
    only delay the event); calls with a refused signature get 429."""
    from django.core.cache import cache

    from shop.api.throttling import ScopedWindowThrottle

    cache.clear()
    monkeypatch.setattr(ScopedWindowThrottle, "THROTTLE_RATES", {"webhook": "2/min"})
    with time_machine.travel(datetime(2026, 11, 2, 9, 0, tzinfo=UTC), tick=False):
        answers = [
            post_event(
                client, "CE000000000LV", "in_transit", event_id=f"e{n}", occurred_at=DELIVERED_AT
            ).status_code
            for n in range(5)
        ]
        assert answers == [202] * 5  # unknown barcode: kept for staff, never throttled
        body = event_body(BARCODE, "delivered", event_id="x", occurred_at=DELIVERED_AT)
        bad = [
            client.post(
                "/api/webhooks/omniva/",
                data=body,
                content_type="application/json",
                **signed_headers(body, secret="not-the-secret"),
            ).status_code
            for _ in range(3)
        ]
    assert bad == [401, 401, 429]


@pytest.mark.parametrize(
    "tamper",
    [
        "wrong_secret",
        "wrong_signature",
        "body_changed",
        "no_signature",
        "no_timestamp",
        "timestamp_not_a_number",
        "stale",
        "from_the_future",
    ],
)
def test_r14b_a_bad_signature_or_stale_timestamp_is_401_and_nothing_changes(order, client, tamper):
    before = snapshot()
    body = event_body(BARCODE, "delivered", event_id="evt-1", occurred_at=DELIVERED_AT)
    now = datetime(2026, 11, 3, 22, 31, tzinfo=UTC)
    stamp = int(now.timestamp())
    headers = signed_headers(body, timestamp=stamp)
    if tamper == "wrong_secret":
        headers = signed_headers(body, secret="not-the-secret", timestamp=stamp)
    elif tamper == "wrong_signature":
        headers["HTTP_X_OMNIVA_SIGNATURE"] = "sha256=" + "0" * 64
    elif tamper == "body_changed":
        body = body.replace(b"delivered", b"delivery_failed")
    elif tamper == "no_signature":
        del headers["HTTP_X_OMNIVA_SIGNATURE"]
    elif tamper == "no_timestamp":
        del headers["HTTP_X_OMNIVA_TIMESTAMP"]
    elif tamper == "timestamp_not_a_number":
        headers["HTTP_X_OMNIVA_TIMESTAMP"] = "yesterday"
    elif tamper == "stale":
        headers = signed_headers(body, timestamp=stamp - 301)  # signed, but too old
    elif tamper == "from_the_future":
        headers = signed_headers(body, timestamp=stamp + 301)

    with time_machine.travel(now, tick=False):
        response = client.post(
            "/api/webhooks/omniva/", data=body, content_type="application/json", **headers
        )

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert snapshot() == before


def test_r14b_the_300_second_window_is_inclusive(order, client):
    body = event_body(BARCODE, "in_transit", event_id="evt-1", occurred_at=DELIVERED_AT)
    now = datetime(2026, 11, 3, 22, 31, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        response = client.post(
            "/api/webhooks/omniva/",
            data=body,
            content_type="application/json",
            **signed_headers(body, timestamp=int(now.timestamp()) - 300),
        )
    assert response.status_code == 200


def test_the_secret_is_read_when_used(order, client, settings):
    settings.OMNIVA_WEBHOOK_SECRET = ""  # not configured: every call is refused
    response = post_event(client, BARCODE, "delivered", event_id="e", occurred_at=DELIVERED_AT)
    assert response.status_code == 401
    assert "not configured" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'"delivered"',
        json.dumps({"barcode": BARCODE, "event": "delivered", "occurred_at": DELIVERED_AT}),
        json.dumps(
            {
                "event_id": "e1",
                "barcode": BARCODE,
                "event": "teleported",
                "occurred_at": DELIVERED_AT,
            }
        ),
        json.dumps(
            {"event_id": "e1", "barcode": BARCODE, "event": "delivered", "occurred_at": "soon"}
        ),
        json.dumps(
            {"event_id": "", "barcode": BARCODE, "event": "delivered", "occurred_at": DELIVERED_AT}
        ),
        json.dumps(
            {
                "event_id": "e" * 200,
                "barcode": BARCODE,
                "event": "delivered",
                "occurred_at": DELIVERED_AT,
            }
        ),
    ],
)
def test_r14b_a_malformed_body_is_400_and_nothing_changes(order, client, body):
    body = body.encode() if isinstance(body, str) else body
    before = snapshot()
    response = client.post(
        "/api/webhooks/omniva/", data=body, content_type="application/json", **signed_headers(body)
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert snapshot() == before


def test_r14b_the_same_event_ten_times_is_applied_once(
    order, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            post_event(client, BARCODE, "delivered", event_id="evt-1", occurred_at=DELIVERED_AT)
            for _ in range(10)
        ]

    assert [a.status_code for a in answers] == [200] * 10
    assert [a.json()["result"] for a in answers] == ["applied"] + ["duplicate"] * 9
    assert CourierEvent.objects.filter(event_id="evt-1").count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    sent = [m for m in mail.outbox if m.extra_headers["X-Shop-Template"] == "shipment_delivered"]
    assert len(sent) == 1


def test_r14b_in_transit_after_delivered_is_kept_but_stale(order, client):
    post_event(client, BARCODE, "delivered", event_id="evt-1", occurred_at=DELIVERED_AT)
    late = post_event(
        client, BARCODE, "in_transit", event_id="evt-2", occurred_at="2026-11-03T12:00:00Z"
    )

    assert late.status_code == 200
    assert late.json() == {"result": "stale"}
    stored = CourierEvent.objects.get(event_id="evt-2")
    assert stored.result == "stale" and stored.shipment.barcode == BARCODE
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at == datetime(2026, 11, 3, 22, 30, tzinfo=UTC)
    assert Shipment.objects.get(barcode=BARCODE).status == ShipmentStatus.DELIVERED


def test_r14b_an_unknown_barcode_is_202_and_kept_for_staff(courier_off, client):
    response = post_event(
        client, "CE999999999LV", "in_transit", event_id="evt-9", occurred_at=DELIVERED_AT
    )
    assert response.status_code == 202
    assert response.json() == {"result": "unmatched"}
    stored = CourierEvent.objects.get(event_id="evt-9")
    assert stored.result == "unmatched" and stored.shipment is None
    assert stored.payload["barcode"] == "CE999999999LV"  # the raw event

    # Staff record the parcel they had forgotten, then apply the waiting event again.
    order = paid_order()
    register_shipment(order_id=order.pk, barcode="CE999999999LV")
    assert rematch_events(event_ids=[stored.pk]) == {"applied": 1}
    assert Shipment.objects.get(barcode="CE999999999LV").status == ShipmentStatus.IN_TRANSIT


# --- Order does not matter (R14b) --------------------------------------------------------------

HAPPY_PATH = [
    ("registered", "2026-11-02T10:00:00Z"),
    ("accepted", "2026-11-02T15:00:00Z"),
    ("in_transit", "2026-11-03T06:00:00Z"),
    ("ready_for_pickup", "2026-11-03T12:00:00Z"),
    ("delivered", DELIVERED_AT),
]
FAILED_PATH = [
    ("accepted", "2026-11-02T15:00:00Z"),
    ("ready_for_pickup", "2026-11-03T12:00:00Z"),
    ("delivery_failed", "2026-11-10T12:00:00Z"),
    ("returned_to_sender", "2026-11-12T12:00:00Z"),
]


def end_state(events, barcode) -> tuple:
    for event, at in events:
        apply(barcode, event, at, reason="not_collected")
    shipment = Shipment.objects.get(barcode=barcode)
    order = Order.objects.get(pk=shipment.order_id)
    refunds = [(r.amount, r.reason) for r in order.refunds.all()]
    return (
        shipment.status,
        shipment.delivered_at,
        order.status,
        order.cancel_reason,
        order.delivered_at,
        refunds,
    )


@pytest.mark.parametrize("path", [HAPPY_PATH, FAILED_PATH], ids=["delivered", "failed"])
def test_r14b_events_in_any_order_reach_the_same_end_state(courier_off, path):
    expected = end_state(path, shipped_order("CE000000000LV").shipments.get().barcode)
    shuffler = random.Random(14)
    for n in range(1, 13):
        events = list(path)
        shuffler.shuffle(events)
        barcode = f"CE{n:09d}LV"
        shipped_order(barcode)
        assert end_state(events, barcode) == expected, events


# --- Effects --------------------------------------------------------------------------------


def test_r16_a_split_orders_deadline_counts_from_the_last_delivery(courier_off):
    """Parcel one on 3 Nov, parcel two on 10 Nov: 14 days from 10 Nov end on Tue 24 Nov,
    whichever event arrives first."""
    for first, second in [("A", "B"), ("B", "A")]:
        order = paid_order(lines=[("KEU-001", 1), ("KEU-002", 1)])
        barcodes = {"A": f"CE0000001{first}{second}LV", "B": f"CE0000002{first}{second}LV"}
        for barcode in barcodes.values():
            register_shipment(order_id=order.pk, barcode=barcode)
        times = {"A": "2026-11-03T10:00:00Z", "B": "2026-11-10T10:00:00Z"}
        apply(barcodes[first], "delivered", times[first])
        apply(barcodes[second], "delivered", times[second])

        order.refresh_from_db()
        assert order.status == OrderStatus.DELIVERED
        assert order.delivered_at == datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
        assert withdrawal_deadline(order) == datetime(2026, 11, 24, 23, 59, 59, 999999, tzinfo=RIGA)


@pytest.mark.parametrize("event", ["delivery_failed", "returned_to_sender"])
def test_r14c_failed_delivery_by_the_customers_fault_refunds_the_goods_not_the_fee(
    order, client, event, django_capture_on_commit_callbacks
):
    """T5.4: goods EUR 20.00 + delivery EUR 2.00 paid; the parcel was not collected: the
    order is cancelled (delivery_failed) and EUR 20.00 is refunded, the fee kept."""
    assert order.total == Decimal("22.00")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(
            client,
            BARCODE,
            event,
            event_id="evt-f",
            occurred_at="2026-11-10T12:00:00Z",
            reason="not_collected",
        )
    assert response.json() == {"result": "applied"}

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == CancelReason.DELIVERY_FAILED
    refund = order.refunds.get()
    assert refund.amount == Decimal("20.00")
    assert refund.reason == RefundReason.DELIVERY_FAILED
    assert Shipment.objects.get(barcode=BARCODE).failure_reason == "not_collected"
    assert any(m.extra_headers["X-Shop-Template"] == "order_cancelled" for m in mail.outbox)

    # The parcel then comes back to the shop: recorded, no second refund.
    assert apply(BARCODE, "returned_to_sender", "2026-11-12T12:00:00Z") in ("applied",)
    assert order.refunds.count() == 1


def test_r14c_a_failure_by_the_courier_does_not_cancel_the_order(order):
    assert apply(BARCODE, "delivery_failed", "2026-11-10T12:00:00Z", reason="damaged") == "applied"
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert not order.refunds.exists()
    assert Shipment.objects.get(barcode=BARCODE).status == ShipmentStatus.DELIVERY_FAILED


def test_r14c_a_delivered_after_a_failure_that_cancelled_the_order_goes_to_staff(order):
    """R14c (2026-12-04): `delivered` after `delivery_failed` applies to the parcel; the
    order the failure cancelled stays cancelled and staff see the event."""
    apply(BARCODE, "delivery_failed", "2026-11-10T12:00:00Z", reason="wrong_address")
    assert apply(BARCODE, "delivered", "2026-11-11T12:00:00Z") == "applied"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert Shipment.objects.get(barcode=BARCODE).status == ShipmentStatus.DELIVERED
    assert CourierEvent.objects.get(event="delivered").needs_review


@pytest.fixture
def arrivals():
    seen = []
    callback = on_return_delivered(seen.append)
    yield seen
    courier_events_module._return_callbacks.remove(callback)


def test_r20_return_delivered_tells_the_hook_once(order, arrivals):
    apply(BARCODE, "delivered", DELIVERED_AT)
    returned = register_return_shipment(order_id=order.pk, barcode="CE555555555LV")
    assert returned.direction == ShipmentDirection.RETURN

    assert apply("CE555555555LV", "return_accepted", "2026-11-06T09:00:00Z") == "applied"
    assert arrivals == []
    assert apply("CE555555555LV", "return_delivered", "2026-11-07T09:00:00Z") == "applied"
    assert apply("CE555555555LV", "return_delivered", "2026-11-07T09:00:00Z", event_id="x") == (
        "applied"
    )  # a repeat under another id: harmless, no second call

    assert len(arrivals) == 1
    arrival = arrivals[0]
    assert arrival.order_id == order.pk and arrival.shipment_id == returned.pk
    assert arrival.arrived_at == datetime(2026, 11, 7, 9, 0, tzinfo=UTC)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED  # unchanged


def test_r20_a_parcel_sent_back_with_the_return_code_becomes_the_return_leg(courier_off, arrivals):
    order = paid_order()
    outbound = register_shipment(order_id=order.pk, barcode=BARCODE)
    Shipment.objects.filter(pk=outbound.pk).update(return_code="12345678")
    apply(BARCODE, "delivered", DELIVERED_AT)

    assert apply("12345678", "return_accepted", "2026-11-06T09:00:00Z") == "applied"
    assert apply("12345678", "return_delivered", "2026-11-07T09:00:00Z") == "applied"

    leg = Shipment.objects.get(direction=ShipmentDirection.RETURN)
    assert leg.return_of_id == outbound.pk
    assert leg.barcode == "12345678"
    assert leg.registration == RegistrationMethod.RETURN_CODE
    assert leg.status == ShipmentStatus.DELIVERED
    assert [a.shipment_id for a in arrivals] == [leg.pk]
    assert CourierEvent.objects.filter(shipment=leg).count() == 2


def test_r14b_the_poller_and_the_webhook_share_event_ids(order):
    first = apply_courier_event(
        event=CourierEventData(
            event_id="omniva-77",
            barcode=BARCODE,
            event="in_transit",
            occurred_at=datetime(2026, 11, 3, 6, 0, tzinfo=UTC),
        ),
        channel="poller",
    )
    again = apply_courier_event(
        event=CourierEventData(
            event_id="omniva-77",
            barcode=BARCODE,
            event="in_transit",
            occurred_at=datetime(2026, 11, 3, 6, 0, tzinfo=UTC),
        ),
        channel="webhook",
    )
    assert (first.result, again.result) == ("applied", "duplicate")


def test_the_webhook_costs_a_few_queries(order, client, django_assert_max_num_queries):
    """Store, lock the parcel, move, mark (plus the savepoints of a test)."""
    with django_assert_max_num_queries(8):
        post_event(client, BARCODE, "in_transit", event_id="q-1", occurred_at=DELIVERED_AT)
    with django_assert_max_num_queries(6):  # a duplicate: one failed insert
        post_event(client, BARCODE, "in_transit", event_id="q-1", occurred_at=DELIVERED_AT)


# --- Concurrency (PostgreSQL) ---------------------------------------------------------------


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r14b_the_same_event_at_once_from_many_threads_is_applied_once(courier_off):
    order = shipped_order(BARCODE)
    answers: list[str] = []
    barrier = threading.Barrier(8)

    def deliver():
        try:
            barrier.wait(timeout=30)
            answers.append(apply(BARCODE, "delivered", DELIVERED_AT, event_id="same-event"))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(answers) == ["applied"] + ["duplicate"] * 7
    assert CourierEvent.objects.count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r14b_different_events_of_one_parcel_at_once_end_delivered(courier_off):
    order = shipped_order(BARCODE)
    barrier = threading.Barrier(len(HAPPY_PATH))

    def send(event, at):
        try:
            barrier.wait(timeout=30)
            apply(BARCODE, event, at)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=pair) for pair in HAPPY_PATH]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at == datetime(2026, 11, 3, 22, 30, tzinfo=UTC)
    assert CourierEvent.objects.count() == len(HAPPY_PATH)


# --- The rule as arithmetic (delivery.rules) ---------------------------------------------------

STATES = list(rules.STATUS_RANK)


@given(st.sampled_from(STATES), st.sampled_from(STATES))
def test_r14b_a_step_forward_is_never_a_step_back_the_other_way(current, target):
    step = rules.courier_step(current, target)
    back = rules.courier_step(target, current)
    if step == rules.FORWARD:
        assert back == rules.BACKWARD
    if current in rules.FINAL_STATUSES and target != current:
        assert step == rules.BACKWARD  # delivered, returned and stopped parcels stay so


@given(st.permutations(["registered", "in_transit", "ready_for_pickup", "delivered"]))
def test_r14b_the_furthest_state_wins_whatever_the_order(targets):
    state = rules.PENDING
    for target in targets:
        if rules.courier_step(state, target) == rules.FORWARD:
            state = target
    assert state == rules.DELIVERED


@pytest.mark.parametrize(
    ("reason", "customers_fault"),
    [
        ("not_collected", True),
        ("wrong_address", True),
        ("Not collected", True),
        ("refused", True),
        ("", False),  # R14c (2026-12-04): an empty or unknown reason is nobody's fault yet
        ("weather", False),
        ("Damaged", False),
        ("lost", False),
    ],
)
def test_r14c_whose_fault_a_failed_delivery_is(reason, customers_fault):
    assert rules.failure_is_customers_fault(reason) is customers_fault


def test_courier_event_statements_stay_few(order, client, django_capture_on_commit_callbacks):
    """Section 12 (webhook throughput): a progress event locks the shipment, stores itself
    and moves it (3 statements); `delivered` also locks and delivers the order (with its
    history row), reads the order's outbound parcels (R16: the last one delivers it), and
    queues the email and the ledger update for after commit (9); a repeat stops at the
    insert."""
    from django.test.utils import CaptureQueriesContext

    def statements(event: str, event_id: str) -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            response = post_event(
                client, BARCODE, event, event_id=event_id, occurred_at=DELIVERED_AT
            )
        assert response.status_code == 200
        return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]

    with time_machine.travel(datetime(2026, 11, 3, 22, 31, tzinfo=UTC), tick=False):
        progress = statements("in_transit", "evt-a")
        repeat = statements("in_transit", "evt-a")
        delivered = statements("delivered", "evt-b")
    assert len(progress) == 3, "\n".join(progress)
    assert len(repeat) == 2, "\n".join(repeat)  # lock, insert: nothing else
    assert len(delivered) == 9, "\n".join(delivered)
    assert not any("personaldatarecord" in sql for sql in delivered)  # after commit
