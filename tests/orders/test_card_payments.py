"""R11s without localstripe: orders.services.card_payments and its endpoints.

Events are signed here with the webhook secret exactly as Stripe signs them (the Stripe
library's own `generate_signature_header`), with Stripe's payload shapes: this covers
what localstripe never sends (refund events) and the refusals that need no server.
Provider failures use a fake adapter chosen by the `CARD_PAYMENT_GATEWAY` setting.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from legal.models import Disclosure
from orders.models import (
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    Refund,
    RefundDestination,
    RefundReason,
    RefundStatus,
    StripeEvent,
)
from orders.payments import (
    GatewayRejected,
    GatewayUnavailable,
    PaymentIntentInfo,
    ProviderRefund,
)
from orders.services import card_payments
from orders.services.lifecycle import cancel_order
from orders.services.payments import record_payment
from orders.services.refunds import approve_refunds, create_refund
from shop import outbox
from shop.models import OutboxMessage
from tests.conftest import requires_postgresql
from tests.factories import place_test_order
from tests.orders.card_support import ensure_checkout_data
from tests.orders.localstripe_process import free_port

SECRET = "whsec_unit_tests"
PAYER_IBAN = "LV80BANK0000435195001"


class FakeGateway:
    """The adapter interface, answering as told (class attributes, set per test)."""

    refund_error: Exception | None = None
    refund_status = "succeeded"
    calls: list[str] = []

    @classmethod
    def from_settings(cls) -> FakeGateway:
        return cls()

    def create_payment_intent(self, *, amount_cents, currency, metadata, idempotency_key):
        self.calls.append(f"intent {idempotency_key}")
        return PaymentIntentInfo(
            id="pi_fake_1",
            client_secret="pi_fake_1_secret_x",
            amount_cents=amount_cents,
            currency=currency,
            status="requires_payment_method",
        )

    def find_refund(self, *, payment_intent, refund_key):
        self.calls.append(f"find {refund_key}")
        return None

    def create_refund(self, *, payment_intent, amount_cents, metadata, idempotency_key):
        self.calls.append(f"refund {idempotency_key}")
        if self.refund_error is not None:
            raise self.refund_error
        return ProviderRefund(id="re_fake_1", status=self.refund_status, amount_cents=amount_cents)


@pytest.fixture
def fake_gateway(settings):
    settings.STRIPE_API_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.CARD_PAYMENT_GATEWAY = f"{__name__}.FakeGateway"
    FakeGateway.refund_error = None
    FakeGateway.refund_status = "succeeded"
    FakeGateway.calls = []
    return FakeGateway


@pytest.fixture
def stripe_unreachable(settings):
    """The real Stripe adapter, pointed at a loopback port where nothing listens."""
    settings.STRIPE_API_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0


def place() -> tuple[Order, str]:
    placed = place_test_order([("KEU-001", 1)], prices={"KEU-001": Decimal("10.00")})
    return placed.order, placed.access_token  # EUR 12.00 with the delivery fee


def card_payment_url(order: Order) -> str:
    return reverse("order-card-payment", args=[order.number])


def intent_object(order: Order, cents: int, *, intent_id: str = "pi_1", currency="eur") -> dict:
    """A succeeded PaymentIntent as Stripe sends it (the fields we read, and a few more)."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": cents,
        "amount_received": cents,
        "currency": currency,
        "status": "succeeded",
        "latest_charge": "ch_1",
        "metadata": {"order_number": order.number, "invoice_number": "KEU-2026-000001"},
    }


def event(event_type: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:14]}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def post_event(client, payload, *, secret: str = SECRET, timestamp=None, header=None):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    if header is None:
        header = stripe.WebhookSignature.generate_signature_header(
            body, secret, timestamp=timestamp
        )
    return client.post(
        reverse("webhook-stripe"),
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def card_paid_order(amount: str = "12.00", intent_id: str = "pi_paid") -> tuple[Order, Payment]:
    order, _token = place()
    payment = record_payment(
        order_id=order.pk,
        amount=Decimal(amount),
        method=PaymentMethod.CARD,
        received_at=timezone.now(),
        stripe_payment_intent=intent_id,
    )
    return Order.objects.get(pk=order.pk), payment


# --- POST /api/orders/{number}/card-payment/ -----------------------------------------------


@pytest.mark.django_db
def test_r11s_card_payment_is_refused_while_card_payments_are_off(api_client, settings):
    settings.STRIPE_API_KEY = ""
    order, token = place()

    response = api_client.post(card_payment_url(order), HTTP_X_ORDER_TOKEN=token)

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "card_payments_unavailable"


@pytest.mark.django_db
def test_r11s_card_payment_for_the_open_amount_with_an_idempotency_key_per_order_and_amount(
    api_client, fake_gateway
):
    order, token = place()

    response = api_client.post(card_payment_url(order), HTTP_X_ORDER_TOKEN=token)

    assert response.status_code == 200
    assert response.json() == {
        "client_secret": "pi_fake_1_secret_x",
        "amount": "12.00",
        "currency": "EUR",
        "payment_intent": "pi_fake_1",
    }
    assert fake_gateway.calls == [f"intent pi-{order.number}-1200"]


@pytest.mark.django_db
def test_r27_what_stripe_receives_is_logged_once_per_payment_intent(api_client, fake_gateway):
    """R27: starting the card payment logs the disclosure to Stripe, with the PaymentIntent
    as its reference; asking again for the same intent logs nothing new."""
    order, token = place()

    for _ in range(2):
        response = api_client.post(card_payment_url(order), HTTP_X_ORDER_TOKEN=token)
        assert response.status_code == 200

    disclosure = Disclosure.objects.get(order=order)
    assert (
        disclosure.recipient,
        disclosure.categories,
        disclosure.purpose,
        disclosure.reference,
        disclosure.withheld_from_subject,
    ) == ("stripe", ["settlement"], "card payment", "pi_fake_1", False)


@pytest.mark.django_db
def test_r11s_card_payment_is_refused_for_a_paid_or_cancelled_order(api_client, fake_gateway):
    paid, paid_token = place()
    record_payment(
        order_id=paid.pk,
        amount=paid.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=PAYER_IBAN,
    )
    cancelled, cancelled_token = place()
    cancel_order(order_id=cancelled.pk, reason="customer")

    answers = {
        "paid": api_client.post(card_payment_url(paid), HTTP_X_ORDER_TOKEN=paid_token),
        "cancelled": api_client.post(
            card_payment_url(cancelled), HTTP_X_ORDER_TOKEN=cancelled_token
        ),
    }

    assert {k: (r.status_code, r.json()["code"]) for k, r in answers.items()} == {
        "paid": (422, "order_paid"),
        "cancelled": (422, "order_cancelled"),
    }
    assert fake_gateway.calls == []


@pytest.mark.django_db
def test_r11s_card_payment_of_a_few_cents_is_refused(api_client, fake_gateway):
    order, token = place()
    record_payment(
        order_id=order.pk,
        amount=Decimal("11.80"),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=PAYER_IBAN,
    )

    response = api_client.post(card_payment_url(order), HTTP_X_ORDER_TOKEN=token)

    assert response.status_code == 422
    assert response.json()["code"] == "amount_below_card_minimum"
    assert response.json()["amount_open"] == "0.20"


@pytest.mark.django_db
def test_card_payment_of_someone_elses_order_is_404(api_client, fake_gateway):
    order, _token = place()
    _other, other_token = place()

    assert api_client.post(card_payment_url(order)).status_code == 404
    wrong = api_client.post(card_payment_url(order), HTTP_X_ORDER_TOKEN=other_token)
    assert wrong.status_code == 404
    assert fake_gateway.calls == []


@pytest.mark.django_db
def test_r11s_stripe_unreachable_is_a_422_never_a_5xx(api_client, stripe_unreachable):
    order, token = place()

    response = api_client.post(card_payment_url(order), HTTP_X_ORDER_TOKEN=token)

    assert response.status_code == 422
    assert response.json()["code"] == "card_payments_unavailable"


# --- POST /api/webhooks/stripe/ --------------------------------------------------------------


@pytest.mark.django_db
def test_r11s_succeeded_event_pays_the_order_once_whatever_arrives_again(
    api_client, fake_gateway, django_assert_max_num_queries
):
    order, _token = place()
    first = event("payment_intent.succeeded", intent_object(order, 1200))

    with django_assert_max_num_queries(30):
        response = post_event(api_client, first)
    replay = post_event(api_client, first)
    # A different event about the same PaymentIntent (Stripe never sends one, but).
    other = post_event(api_client, event("payment_intent.succeeded", intent_object(order, 1200)))

    assert [r.json()["result"] for r in (response, replay, other)] == [
        "applied",
        "duplicate",
        "duplicate",
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert list(order.payments.values_list("amount", "method", "stripe_payment_intent")) == [
        (Decimal("12.00"), "card", "pi_1")
    ]
    assert StripeEvent.objects.count() == 2


@pytest.mark.django_db
def test_r11s_card_overpayment_is_refunded_to_the_card(api_client, fake_gateway):
    """R11 / T4.3 for cards: the excess goes back to where it came from."""
    order, _token = place()

    post_event(api_client, event("payment_intent.succeeded", intent_object(order, 1500)))

    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.reason, refund.destination) == (
        Decimal("3.00"),
        RefundReason.OVERPAYMENT,
        RefundDestination.CARD,
    )
    assert refund.payment.stripe_payment_intent == "pi_1"


@pytest.mark.django_db
def test_r10_card_money_for_a_cancelled_order_goes_back_to_the_card(api_client, fake_gateway):
    order, _token = place()
    cancel_order(order_id=order.pk, reason="unpaid")

    # Paid after the due date (a payment booked in time would reinstate the order, R10).
    late = order.payment_due_at + timedelta(days=1)
    with time_machine.travel(late, tick=False):
        post_event(api_client, event("payment_intent.succeeded", intent_object(order, 1200)))

    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.destination) == (Decimal("12.00"), RefundDestination.CARD)


@pytest.mark.django_db
def test_stripe_events_we_cannot_match_or_do_not_handle_are_kept_and_answered_200(
    api_client, fake_gateway
):
    order, _token = place()
    stranger = intent_object(order, 1200, intent_id="pi_other")
    stranger["metadata"] = {"order_number": "NOSUCH"}
    dollars = intent_object(order, 1200, intent_id="pi_usd", currency="usd")

    answers = [
        post_event(api_client, event("payment_intent.succeeded", stranger)),
        post_event(api_client, event("payment_intent.succeeded", dollars)),
        post_event(api_client, event("customer.created", {"id": "cus_1", "object": "customer"})),
    ]

    assert [(r.status_code, r.json()["result"]) for r in answers] == [
        (200, "unmatched"),
        (200, "unmatched"),
        (200, "ignored"),
    ]
    assert not Payment.objects.exists()
    assert StripeEvent.objects.count() == 3


@pytest.mark.django_db
def test_webhook_refuses_what_it_cannot_verify_with_400(api_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    good = event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})

    answers = [
        post_event(api_client, good, secret="whsec_wrong"),
        post_event(api_client, good, timestamp=int(time.time()) - 3600),
        post_event(api_client, good, header="garbage"),
        post_event(api_client, "not json at all"),
        post_event(api_client, "[1, 2, 3]"),
        post_event(api_client, {"id": "evt_1", "type": "x"}),  # no data.object
    ]

    assert [r.status_code for r in answers] == [400] * 6
    assert all(r["Content-Type"] == "application/problem+json" for r in answers)
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_webhook_without_a_configured_secret_accepts_nothing(api_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = json.dumps(event("payment_intent.succeeded", {"id": "pi_x"}))

    # Signed with the empty secret an attacker could compute.
    response = post_event(api_client, body, secret="")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "webhook_not_configured"


# --- Refund events --------------------------------------------------------------------------


def approved_card_refund(amount: str = "12.00") -> Refund:
    order, payment = card_paid_order()
    refund = create_refund(
        order_id=order.pk, amount=Decimal(amount), reason=RefundReason.STAFF, payment=payment
    )
    approve_refunds(refund_ids=[refund.pk], by=User.objects.create_user("approver"))
    return Refund.objects.get(pk=refund.pk)


def stripe_refund(refund: Refund, status: str, *, refund_id="re_1", **extra) -> dict:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": int(refund.amount * 100),
        "currency": "eur",
        "payment_intent": "pi_paid",
        "status": status,
        "metadata": {"refund_id": str(refund.pk), "order_number": refund.order.number},
        **extra,
    }


@pytest.mark.django_db
def test_r11s_refund_events_move_our_refund_forward_never_back(api_client, fake_gateway):
    refund = approved_card_refund()

    pending = post_event(api_client, event("refund.created", stripe_refund(refund, "pending")))
    refund.refresh_from_db()
    assert (refund.status, refund.external_id) == (RefundStatus.SENT, "re_1")

    succeeded = post_event(api_client, event("refund.updated", stripe_refund(refund, "succeeded")))
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED

    late = post_event(api_client, event("refund.updated", stripe_refund(refund, "pending")))
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED
    assert [r.json()["result"] for r in (pending, succeeded, late)] == [
        "applied",
        "applied",
        "unchanged",
    ]


@pytest.mark.django_db
def test_r11s_a_refund_stripe_reports_failed_frees_its_amount(api_client, fake_gateway):
    refund = approved_card_refund()
    card_payments.send_card_refund(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED

    post_event(
        api_client,
        event(
            "refund.failed",
            stripe_refund(refund, "failed", refund_id="re_fake_1", failure_reason="lost_or_stolen"),
        ),
    )

    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert refund.failure_reason == "Stripe: lost_or_stolen"
    assert Refund.objects.filter(order=refund.order).committed_total() == Decimal("0.00")


@pytest.mark.django_db
def test_r11s_charge_refunded_lists_its_refunds(api_client, fake_gateway):
    refund = approved_card_refund()
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_paid",
        "refunds": {"object": "list", "data": [stripe_refund(refund, "succeeded")]},
    }

    response = post_event(api_client, event("charge.refunded", charge))
    stranger = post_event(
        api_client,
        event("refund.updated", {"id": "re_x", "status": "succeeded", "metadata": {}}),
    )

    assert response.json()["result"] == "applied"
    assert stranger.json()["result"] == "unmatched"
    refund.refresh_from_db()
    assert (refund.status, refund.external_id) == (RefundStatus.SETTLED, "re_1")


# --- Sending card refunds -------------------------------------------------------------------


@pytest.mark.django_db
def test_r11s_a_refund_stripe_refuses_is_failed_with_the_reason(fake_gateway):
    refund = approved_card_refund()
    fake_gateway.refund_error = GatewayRejected("Charge already refunded.", code="charge_refunded")

    card_payments.send_card_refund(refund_id=refund.pk)

    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert refund.failure_reason == "Stripe refused: Charge already refunded."
    assert fake_gateway.calls == [f"find {refund.pk}", f"refund refund-{refund.pk}"]


@pytest.mark.django_db
def test_r11s_a_pending_refund_at_stripe_is_sent_until_its_event_settles_it(fake_gateway):
    refund = approved_card_refund()
    fake_gateway.refund_status = "pending"

    card_payments.send_card_refund(refund_id=refund.pk)

    refund.refresh_from_db()
    assert (refund.status, refund.external_id) == (RefundStatus.SENT, "re_fake_1")
    # R27: the refund at Stripe is a disclosure too, logged with the Stripe refund.
    disclosure = Disclosure.objects.get(order=refund.order, reference="re_fake_1")
    assert (disclosure.recipient, disclosure.categories, disclosure.purpose) == (
        "stripe",
        ["settlement"],
        "card refund",
    )


@pytest.mark.django_db
def test_r11s_outbox_retries_while_stripe_is_unavailable(
    fake_gateway, django_capture_on_commit_callbacks
):
    refund = approved_card_refund()
    fake_gateway.refund_error = GatewayUnavailable("APIConnectionError during refund")

    with django_capture_on_commit_callbacks(execute=True):
        queued = card_payments.queue_card_refunds(refund_ids=[refund.pk])

    assert [r.pk for r in queued.queued] == [refund.pk]
    message = OutboxMessage.objects.get(topic=card_payments.REFUND_TOPIC)
    assert (message.attempts, message.delivered_at) == (1, None)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED

    fake_gateway.refund_error = None
    assert outbox.deliver(message.pk) is True
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED


@pytest.mark.django_db
def test_r11s_a_queued_card_refund_is_checked_again_when_sent_and_failed_if_too_large(
    fake_gateway,
):
    """The outbox message is checked again on delivery: a refund larger than what the card
    captured is failed with the reason, and Stripe never hears of it."""
    order, _token = place()  # 12.00: 5.00 by bank, 7.00 by card
    record_payment(
        order_id=order.pk,
        amount=Decimal("5.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=PAYER_IBAN,
    )
    card = record_payment(
        order_id=order.pk,
        amount=Decimal("7.00"),
        method=PaymentMethod.CARD,
        received_at=timezone.now(),
        stripe_payment_intent="pi_part",
    )
    refund = create_refund(
        order_id=order.pk, amount=Decimal("9.00"), reason=RefundReason.STAFF, payment=card
    )
    approve_refunds(refund_ids=[refund.pk], by=User.objects.create_user("approver"))
    message = outbox.publish(card_payments.REFUND_TOPIC, {"refund_id": refund.pk})

    assert outbox.deliver(message.pk) is True

    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert refund.failure_reason.startswith("refund_exceeds_captured")
    assert fake_gateway.calls == []


# --- Admin and the demo command ----------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_stripe_events_and_the_send_action_in_the_refund_queue(
    client, api_client, fake_gateway
):
    order, _token = place()
    post_event(api_client, event("payment_intent.succeeded", intent_object(order, 1200)))
    staff = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    client.force_login(staff)
    stored = StripeEvent.objects.get()

    listing = client.get(reverse("admin:orders_stripeevent_changelist"))
    detail = client.get(reverse("admin:orders_stripeevent_change", args=[stored.pk]))
    payments = client.get(reverse("admin:orders_payment_changelist"), {"q": "pi_1"})
    refunds = client.get(reverse("admin:orders_refund_changelist"))

    assert listing.status_code == detail.status_code == payments.status_code == 200
    assert "payment_intent.succeeded" in listing.content.decode()
    assert "pi_1" in detail.content.decode()
    assert order.number in payments.content.decode()
    actions = {name for name, _label in refunds.context["action_form"].fields["action"].choices}
    assert {"approve", "export_sepa", "send_card_refunds"} <= actions


@pytest.mark.django_db
def test_the_send_action_leaves_bank_refunds_for_the_sepa_file(client, fake_gateway):
    order, _token = place()
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=PAYER_IBAN,
    )
    staff = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    bank = create_refund(order_id=order.pk, amount=Decimal("5.00"), reason=RefundReason.STAFF)
    approve_refunds(refund_ids=[bank.pk], by=staff)
    client.force_login(staff)

    response = client.post(
        reverse("admin:orders_refund_changelist"),
        {"action": "send_card_refunds", "index": 0, ACTION_CHECKBOX_NAME: [bank.pk]},
        follow=True,
    )

    assert [m.level for m in response.context["messages"]] == [messages.WARNING]
    bank.refresh_from_db()
    assert bank.status == RefundStatus.APPROVED
    assert fake_gateway.calls == []


def test_demo_card_payment_needs_card_payments_on(settings):
    settings.STRIPE_API_KEY = ""
    with pytest.raises(CommandError, match="Card payments are off"):
        call_command("demo_card_payment", "pi_123")


# --- Concurrency (PostgreSQL) --------------------------------------------------------------


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r11s_concurrent_deliveries_record_the_card_payment_exactly_once(settings):
    """Stripe retries while the first delivery is still running, and sends the event
    twice: 8 deliveries at once (4 of one event, 4 of other events about the same
    PaymentIntent), one payment."""
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    ensure_checkout_data()
    order, _token = place()
    same = event("payment_intent.succeeded", intent_object(order, 1200))
    bodies = [json.dumps(same)] * 4 + [
        json.dumps(event("payment_intent.succeeded", intent_object(order, 1200))) for _ in range(4)
    ]
    start = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def deliver(index: int) -> None:
        try:
            start.wait(timeout=30)
            answers[index] = post_event(Client(), bodies[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [a.status_code for a in answers] == [200] * len(bodies)
    results = sorted(a.json()["result"] for a in answers)
    assert results == ["applied"] + ["duplicate"] * (len(bodies) - 1)
    assert Payment.objects.filter(order=order).count() == 1
    assert StripeEvent.objects.count() == 5
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_a_stripe_key_without_a_webhook_secret_is_flagged(settings):
    from orders.payments import check_stripe_settings

    settings.STRIPE_API_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", ""
    assert [m.id for m in check_stripe_settings(None)] == ["orders.W101"]
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    assert check_stripe_settings(None) == []
    settings.STRIPE_API_KEY, settings.STRIPE_WEBHOOK_SECRET = "", ""
    assert check_stripe_settings(None) == []
