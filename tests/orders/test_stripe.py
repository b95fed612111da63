"""R11s against localstripe: card payment, signed webhooks, refunds back to the card.

localstripe (a stateful fake Stripe server) runs as a subprocess of the test session on
a free loopback port; the real stripe library talks to it, and it sends real signed
webhooks to this test server (pytest-django `live_server`). Tests skip, with the reason,
when localstripe cannot start.

What localstripe does not do, and how these tests get closest to it:
- it ignores `Idempotency-Key` (Stripe replays the first answer): a lost answer is
  therefore retried through our own lookup of the refund by its metadata, tested below;
- it sends no refund events (`charge.refunded`, `refund.updated`): those handlers are
  tested with events signed here like Stripe signs them (tests/orders/test_card_payments.py);
- it does not check refunds against the captured amount: our own check does (tested).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core import mail
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
from orders.payments import GatewayRejected
from orders.payments.stripe_gateway import StripeGateway
from orders.services import card_payments
from orders.services.payments import record_payment
from orders.services.refunds import approve_refunds, create_refund
from shop import outbox
from shop.errors import Refused
from shop.models import OutboxMessage
from tests.factories import place_test_order
from tests.orders.card_support import ensure_checkout_data
from tests.orders.localstripe_process import LocalStripe, LocalStripeUnavailable

API_KEY = "sk_test_localstripe"
WEBHOOK_SECRET = "whsec_test_localstripe"
HANDLED_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed"]
WEBHOOK_WAIT = 20  # seconds for localstripe's webhook (sent about 1 s after the payment)
PAYER_IBAN = "LV80BANK0000435195001"


# --- Wiring -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory) -> Iterator[LocalStripe]:
    pytest.importorskip("localstripe", reason="localstripe is not installed (dev extra)")
    server = LocalStripe(workdir=tmp_path_factory.mktemp("localstripe"))
    try:
        server.start(fresh=True)
    except (LocalStripeUnavailable, OSError) as exc:
        pytest.skip(f"localstripe could not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def stripe_on(settings, localstripe):
    """Card payments on, with the real Stripe adapter pointed at localstripe."""
    if localstripe.process is None:
        localstripe.start()
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = localstripe.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0  # the outbox retries; no sleeping in tests
    return localstripe


class Deliveries:
    """Webhook deliveries that reached our endpoint, as (type, payment intent, result)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.changed = threading.Condition()

    def record(self, received) -> None:
        with self.changed:
            event = received.event
            self.seen.append((event.type, event.payment_intent, received.result))
            self.changed.notify_all()

    def wait_for(self, event_type: str, payment_intent: str) -> str:
        """The result of the first delivery of that type for that payment intent."""

        def found():
            return next(
                (r for t, pi, r in self.seen if t == event_type and pi == payment_intent), None
            )

        with self.changed:
            if not self.changed.wait_for(found, timeout=WEBHOOK_WAIT):
                pytest.fail(f"no {event_type} webhook for {payment_intent} in {WEBHOOK_WAIT} s")
            return found()


@pytest.fixture
def shop_ready(transactional_db):
    ensure_checkout_data()


@pytest.fixture
def webhooks(stripe_on, live_server, shop_ready, monkeypatch) -> Iterator[Deliveries]:
    """localstripe sends its signed events to this test server while the test runs."""
    deliveries = Deliveries()
    receive = card_payments.receive_stripe_event

    def recording(**kwargs):
        received = receive(**kwargs)
        deliveries.record(received)
        return received

    monkeypatch.setattr(card_payments, "receive_stripe_event", recording)
    url = live_server.url.replace("localhost", "127.0.0.1") + reverse("webhook-stripe")
    stripe_on.register_webhook(url=url, secret=WEBHOOK_SECRET, events=HANDLED_EVENTS)
    yield deliveries
    if stripe_on.process is not None:  # nothing more to this test's server
        stripe_on.register_webhook(url=url, secret=WEBHOOK_SECRET, events=["none.none"])


def gateway() -> StripeGateway:
    return StripeGateway.from_settings()


def stripe_client() -> stripe.StripeClient:
    return gateway().client


def place(goods: str = "10.00") -> tuple[Order, str]:
    placed = place_test_order([("KEU-001", 1)], prices={"KEU-001": Decimal(goods)})
    return placed.order, placed.access_token


def start_card_payment(api_client, order: Order, token: str):
    return api_client.post(
        reverse("order-card-payment", args=[order.number]), HTTP_X_ORDER_TOKEN=token
    )


def pay_by_card(api_client, webhooks: Deliveries, order: Order, token: str) -> str:
    """The customer's whole card payment: PaymentIntent, test card, signed webhook."""
    response = start_card_payment(api_client, order, token)
    assert response.status_code == 200, response.content
    intent = response.json()["payment_intent"]
    assert gateway().confirm_test_payment(payment_intent=intent, payment_method="pm_card_visa")
    assert webhooks.wait_for("payment_intent.succeeded", intent) == "applied"
    return intent


def stripe_refunds_of(intent: str) -> list:
    return list(stripe_client().v1.refunds.list(params={"payment_intent": intent}).data)


def signed_post(client, body: str, *, secret: str = WEBHOOK_SECRET, timestamp=None, header=None):
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


# --- Money in -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r11s_pay_by_card_the_signed_event_arrives_and_the_order_is_paid_once(api_client, webhooks):
    order, token = place()  # EUR 10.00 + 2.00 delivery
    mail.outbox.clear()

    response = start_card_payment(api_client, order, token)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["amount"] == "12.00"
    assert body["currency"] == "EUR"
    assert body["client_secret"].startswith(body["payment_intent"] + "_secret_")
    intent = stripe_client().v1.payment_intents.retrieve(body["payment_intent"])
    assert (intent.amount, intent.currency) == (1200, "eur")
    invoice = order.invoices.get()
    assert intent.metadata.to_dict() == {
        "order_number": order.number,
        "invoice_number": invoice.number,
    }
    # R27: what Stripe received is logged.
    disclosure = Disclosure.objects.get(order=order)
    assert (disclosure.recipient, disclosure.categories, disclosure.reference) == (
        "stripe",
        ["settlement"],
        intent.id,
    )

    assert gateway().confirm_test_payment(payment_intent=intent.id, payment_method="pm_card_visa")
    assert webhooks.wait_for("payment_intent.succeeded", intent.id) == "applied"

    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    payment = Payment.objects.get(order=order)
    assert (payment.method, payment.amount, payment.stripe_payment_intent) == (
        PaymentMethod.CARD,
        Decimal("12.00"),
        intent.id,
    )
    event = StripeEvent.objects.get(payment_intent=intent.id, type="payment_intent.succeeded")
    assert (event.result, event.order_id) == ("applied", order.pk)
    assert [m.to for m in mail.outbox] == [[order.email]]  # the payment confirmation

    # The customer sees it paid; a second card payment is refused.
    detail = api_client.get(reverse("order-detail", args=[order.number]), HTTP_X_ORDER_TOKEN=token)
    assert detail.json()["status"] == "paid"
    again = start_card_payment(api_client, order, token)
    assert again.status_code == 422
    assert again["Content-Type"] == "application/problem+json"
    assert again.json()["code"] == "order_paid"

    # Stripe delivers the same event again (new timestamp, new signature): nothing changes.
    replay = signed_post(api_client, json.dumps(event.payload))
    assert (replay.status_code, replay.json()) == (200, {"result": "duplicate"})
    assert Payment.objects.filter(order=order).count() == 1
    assert StripeEvent.objects.filter(event_id=event.event_id).count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_r11s_forged_tampered_or_stale_signatures_are_400_and_change_nothing(api_client, webhooks):
    order, token = place()
    intent = pay_by_card(api_client, webhooks, order, token)
    real = StripeEvent.objects.get(payment_intent=intent, type="payment_intent.succeeded")
    # The same event under a new id, as an attacker would try to have it applied again.
    payload = {**real.payload, "id": "evt_forged_000001"}
    body = json.dumps(payload)
    tampered = body.replace('"amount": 1200', '"amount": 1')
    assert tampered != body
    good_header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)

    answers = [
        signed_post(api_client, body, secret="whsec_not_ours"),  # forged
        signed_post(api_client, body, timestamp=int(time.time()) - 301),  # stale (> 5 min)
        signed_post(api_client, tampered, header=good_header),  # tampered
        signed_post(api_client, body, header="t=1,v1=deadbeef"),
        signed_post(api_client, body, header=""),
    ]

    for response in answers:
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "Stripe-Signature"
    assert not StripeEvent.objects.filter(event_id="evt_forged_000001").exists()
    assert Payment.objects.filter(order=order).count() == 1


@pytest.mark.django_db(transaction=True)
def test_r11s_a_declined_card_is_recorded_for_staff_and_the_order_still_waits(api_client, webhooks):
    order, token = place()
    intent = start_card_payment(api_client, order, token).json()["payment_intent"]

    with pytest.raises(GatewayRejected) as declined:
        gateway().confirm_test_payment(
            payment_intent=intent, payment_method="pm_card_chargeCustomerFail"
        )

    assert declined.value.code == "card_declined"
    assert webhooks.wait_for("payment_intent.payment_failed", intent) == "recorded"
    event = StripeEvent.objects.get(payment_intent=intent)
    assert event.order_id == order.pk
    assert event.note.startswith("card_declined")
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED
    assert not Payment.objects.filter(order=order).exists()


@pytest.mark.django_db(transaction=True)
def test_r11s_card_pays_the_rest_after_a_part_bank_payment(api_client, webhooks):
    """R11 rules for card payments too: the PaymentIntent is for what is still open."""
    order, token = place()
    record_payment(
        order_id=order.pk,
        amount=Decimal("5.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=PAYER_IBAN,
    )

    intent = pay_by_card(api_client, webhooks, order, token)

    assert stripe_client().v1.payment_intents.retrieve(intent).amount == 700
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert sorted(p.amount for p in order.payments.all()) == [Decimal("5.00"), Decimal("7.00")]
    assert not order.refunds.exists()


# --- Money back -----------------------------------------------------------------------------


@pytest.fixture
def admin_clerk(transactional_db, client):
    user = User.objects.create_user("refund-clerk", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def cancelled_card_order(api_client, webhooks) -> tuple[Order, str, Refund]:
    """A card-paid order the customer cancelled: everything comes back to the card."""
    order, token = place()
    intent = pay_by_card(api_client, webhooks, order, token)
    response = api_client.post(
        reverse("order-cancel", args=[order.number]), HTTP_X_ORDER_TOKEN=token
    )
    assert response.status_code == 200, response.content
    refund = Refund.objects.get(order=order)
    assert (refund.destination, refund.amount, refund.payment.stripe_payment_intent) == (
        RefundDestination.CARD,
        Decimal("12.00"),
        intent,
    )
    return order, intent, refund


@pytest.mark.django_db(transaction=True)
def test_r11s_staff_send_an_approved_card_refund_to_stripe_from_the_refund_queue(
    api_client, webhooks, client, admin_clerk
):
    order, intent, refund = cancelled_card_order(api_client, webhooks)
    approve_refunds(refund_ids=[refund.pk], by=admin_clerk)

    response = client.post(
        reverse("admin:orders_refund_changelist"),
        {"action": "send_card_refunds", "index": 0, ACTION_CHECKBOX_NAME: [refund.pk]},
        follow=True,
    )

    assert response.status_code == 200
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED
    at_stripe = stripe_refunds_of(intent)
    assert [(r.id, r.amount, r.status) for r in at_stripe] == [
        (refund.external_id, 1200, "succeeded")
    ]
    assert at_stripe[0].metadata.to_dict() == {
        "refund_id": str(refund.pk),
        "order_number": order.number,
    }
    assert Disclosure.objects.filter(order=order, reference=refund.external_id).exists()
    # The queue shows the Stripe id; sending again does nothing.
    page = client.get(reverse("admin:orders_refund_change", args=[refund.pk]))
    assert refund.external_id in page.content.decode()
    card_payments.send_card_refund(refund_id=refund.pk)
    assert len(stripe_refunds_of(intent)) == 1


@pytest.mark.django_db(transaction=True)
def test_r11s_a_refund_larger_than_what_was_captured_is_refused_before_any_call_to_stripe(
    api_client, webhooks, monkeypatch
):
    order, token = place()  # 12.00: 5.00 by bank, 7.00 by card
    record_payment(
        order_id=order.pk,
        amount=Decimal("5.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_iban=PAYER_IBAN,
    )
    intent = pay_by_card(api_client, webhooks, order, token)
    card = Payment.objects.get(stripe_payment_intent=intent)
    staff = User.objects.create_user("approver", is_staff=True)
    # Within what the order was paid (12.00), more than the card captured (7.00).
    refund = create_refund(
        order_id=order.pk, amount=Decimal("9.00"), reason=RefundReason.STAFF, payment=card
    )
    assert refund.destination == RefundDestination.CARD
    approve_refunds(refund_ids=[refund.pk], by=staff)
    calls = []
    for name in ("create_refund", "find_refund"):
        original = getattr(StripeGateway, name)
        monkeypatch.setattr(
            StripeGateway,
            name,
            lambda self, *a, _n=name, _o=original, **kw: calls.append(_n) or _o(self, *a, **kw),
        )

    with pytest.raises(Refused) as refused:
        card_payments.send_card_refund(refund_id=refund.pk)
    queued = card_payments.queue_card_refunds(refund_ids=[refund.pk])

    assert refused.value.code == "refund_exceeds_captured"
    assert refused.value.facts == {
        "captured": "7.00",
        "refunded": "0.00",
        "requested": "9.00",
        "available": "7.00",
    }
    assert queued.queued == [] and [r.pk for r, _e in queued.refused] == [refund.pk]
    assert calls == []  # not one request to Stripe
    assert stripe_refunds_of(intent) == []
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED  # left for staff, nothing sent


@pytest.mark.django_db(transaction=True)
def test_r11s_network_failure_during_a_refund_is_retried_and_stripe_holds_one_refund(
    api_client, webhooks, stripe_on
):
    order, intent, refund = cancelled_card_order(api_client, webhooks)
    approve_refunds(refund_ids=[refund.pk], by=User.objects.create_user("approver"))

    stripe_on.stop()  # the network between us and Stripe is down
    card_payments.queue_card_refunds(refund_ids=[refund.pk])  # sent after commit: fails

    message = OutboxMessage.objects.get(topic="stripe.refund")
    assert message.delivered_at is None
    assert (message.attempts, message.last_error) == (1, "GatewayUnavailable")
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED
    assert message.available_at > timezone.now()  # backing off: not due again yet

    stripe_on.start()  # same port, same state
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=True):
        assert outbox.relay() == 1

    message.refresh_from_db()
    assert message.delivered_at is not None and message.attempts == 2
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED
    at_stripe = stripe_refunds_of(intent)
    assert [(r.id, r.amount) for r in at_stripe] == [(refund.external_id, 1200)]
    assert Refund.objects.filter(order=order).count() == 1
    # Nothing left to retry, and a stray retry changes nothing.
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=True):
        assert outbox.relay() == 0
    card_payments.send_card_refund(refund_id=refund.pk)
    assert len(stripe_refunds_of(intent)) == 1


@pytest.mark.django_db(transaction=True)
def test_r11s_an_answer_lost_after_stripe_refunded_is_retried_without_a_second_refund(
    api_client, webhooks, monkeypatch
):
    """The worst case: Stripe made the refund, the answer never came back. Stripe would
    replay its answer for the same idempotency key; localstripe ignores the key, so this
    also proves our own lookup of the refund by its metadata."""
    _order, intent, refund = cancelled_card_order(api_client, webhooks)
    approve_refunds(refund_ids=[refund.pk], by=User.objects.create_user("approver"))
    sent_keys = []
    request = stripe.RequestsClient.request

    def lose_first_refund_answer(self, method, url, headers, post_data=None):
        answer = request(self, method, url, headers, post_data)
        if method == "post" and url.endswith("/v1/refunds"):
            sent_keys.append(headers.get("Idempotency-Key"))
            if len(sent_keys) == 1:
                raise stripe.APIConnectionError("connection reset after the request was sent")
        return answer

    monkeypatch.setattr(stripe.RequestsClient, "request", lose_first_refund_answer)

    card_payments.queue_card_refunds(refund_ids=[refund.pk])
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED  # we do not know yet
    assert len(stripe_refunds_of(intent)) == 1  # but Stripe made it

    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=True):
        assert outbox.relay() == 1

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SETTLED
    at_stripe = stripe_refunds_of(intent)
    assert [r.id for r in at_stripe] == [refund.external_id]
    assert sent_keys == [f"refund-{refund.pk}"]  # found by its metadata, not made again
