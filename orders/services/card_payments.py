"""Card payment of invoices through Stripe (R11s): money in by PaymentIntent and signed
webhook, money back through the Stripe Refund API.

- `start_card_payment`: a PaymentIntent for the amount still open (integer cents, EUR,
  metadata with the order and invoice number, one idempotency key per order and amount);
  what Stripe receives is logged as a disclosure (R27).
- `receive_stripe_event`: the raw body is checked with `stripe.Webhook.construct_event`,
  stored once under its event id, and applied through the `EVENT_HANDLERS` dispatch dict
  under the event's row lock: a replayed event changes nothing. `payment_intent.succeeded`
  records the payment once (`Payment.stripe_payment_intent` is unique) through
  `payments.record_payment`, so part- and over-payments follow the bank-transfer rules.
- `queue_card_refunds` / `send_card_refund`: approved card refunds go to the Stripe
  Refund API from the outbox (topic `stripe.refund`), never for more than was captured
  (our own check, before any call to Stripe: test servers do not enforce it), with the
  idempotency key `refund-<our id>` and our id in the refund's metadata, so a retry after
  a network error finds or repeats the same refund and never makes a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from legal.models import Recipient
from legal.services.disclosures import record_disclosure
from orders import selectors
from orders.models import (
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    Refund,
    RefundDestination,
    RefundStatus,
    StripeEvent,
    StripeEventResult,
)
from orders.payments import (
    GatewayRejected,
    GatewayUnavailable,
    ProviderRefund,
    get_card_gateway,
)
from orders.services.locks import lock_order
from orders.services.payments import record_payment
from shop import outbox
from shop.api.parsers import loads_bounded
from shop.errors import InvalidInput, Refused
from shop.models import OutboxMessage
from shop.money import ZERO, from_cents, to_cents, to_money

logger = logging.getLogger(__name__)

CURRENCY = "eur"
MIN_CARD_AMOUNT = Decimal("0.50")  # Stripe's smallest charge in EUR
REFUND_TOPIC = "stripe.refund"
# Refunds that went, or are about to go, to Stripe: what counts against the capture.
TOWARDS_CAPTURE = [RefundStatus.APPROVED, RefundStatus.SENT, RefundStatus.SETTLED]
R27_CATEGORIES = ["settlement"]  # order and invoice numbers, amounts (KA9)


def _gateway_or_refuse():
    gateway = get_card_gateway()
    if gateway is None:
        raise Refused(
            "card_payments_unavailable",
            "Card payments are not available; please pay the invoice by bank transfer.",
        )
    return gateway


def _disclose(*, order: Order, purpose: str, reference: str) -> None:
    """R27: what Stripe receives (order and invoice numbers, amounts), logged once."""
    record_disclosure(
        recipient=Recipient.STRIPE,
        categories=R27_CATEGORIES,
        purpose=purpose,
        order=order,
        reference=reference,
        once=True,
    )


# --- Money in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CardPaymentStart:
    client_secret: str
    amount: Decimal
    currency: str
    payment_intent: str


def start_card_payment(*, order_id: int) -> CardPaymentStart:
    """R11s: a PaymentIntent for what is still open on the order's invoice."""
    gateway = _gateway_or_refuse()
    order = selectors.order_with_details().get(pk=order_id)
    if order.status == OrderStatus.CANCELLED:
        raise Refused(
            "order_cancelled", "The order is cancelled.", cancel_reason=order.cancel_reason
        )
    summary = selectors.order_summary(order)
    if summary.amount_open <= ZERO:
        raise Refused(
            "order_paid",
            "Nothing is left to pay on this order.",
            status=order.status,
            amount_paid=str(summary.amount_paid),
        )
    if summary.amount_open < MIN_CARD_AMOUNT:
        raise Refused(
            "amount_below_card_minimum",
            "The amount still open is too small for a card payment; please pay it by bank "
            "transfer.",
            amount_open=str(summary.amount_open),
            minimum=str(MIN_CARD_AMOUNT),
        )
    cents = to_cents(summary.amount_open)
    invoice_number = summary.invoice.number if summary.invoice else ""
    try:
        intent = gateway.create_payment_intent(
            amount_cents=cents,
            currency=CURRENCY,
            metadata={"order_number": order.number, "invoice_number": invoice_number},
            idempotency_key=f"pi-{order.number}-{cents}",
        )
    except GatewayUnavailable as exc:
        raise Refused(
            "card_payments_unavailable",
            "Card payments cannot be reached right now; please try again later or pay the "
            "invoice by bank transfer.",
        ) from exc
    except GatewayRejected as exc:
        raise Refused("card_payment_refused", exc.message, provider_code=exc.code) from exc
    _disclose(order=order, purpose="card payment", reference=intent.id)
    return CardPaymentStart(
        client_secret=intent.client_secret,
        amount=from_cents(intent.amount_cents),
        currency=intent.currency.upper(),
        payment_intent=intent.id,
    )


# --- Webhook events -------------------------------------------------------------------------


@dataclass
class Applied:
    result: str
    order: Order | None = None
    note: str = ""


Handler = Callable[[StripeEvent, dict[str, Any]], Applied]


def verify_stripe_event(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event as JSON, once `stripe.Webhook.construct_event` accepted its signature
    and timestamp (5 minutes' tolerance); InvalidInput (400) otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise InvalidInput.single(
            "Stripe-Signature", "webhook_not_configured", "Stripe webhooks are not configured."
        )
    try:
        # The signature first (Stripe's own check), then our bounded parser: a signed
        # body nested too deep, with a NUL or a huge number is a 400, never a 500.
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
        event = loads_bounded(payload)
    except stripe.SignatureVerificationError as exc:
        raise InvalidInput.single(
            "Stripe-Signature", "invalid_signature", "The signature is wrong or too old."
        ) from exc
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # JSONRefused (a ValueError) included: too deep, NUL, huge numbers.
        raise InvalidInput.single("body", "malformed", "Not a Stripe event.") from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidInput.single("body", "malformed", "Not a Stripe event.")
    return event


@dataclass(frozen=True)
class Received:
    event: StripeEvent
    result: str  # what this delivery did: a StripeEventResult value


def receive_stripe_event(*, payload: bytes, signature: str | None) -> Received:
    """Verify, store once under the event id, apply; a replayed event changes nothing."""
    event = verify_stripe_event(payload=payload, signature=signature)
    stored, _created = StripeEvent.objects.get_or_create(
        event_id=event["id"][:255],
        defaults={
            "type": event["type"][:100],
            "payload": event,
            "payment_intent": _intent_id(event["data"]["object"])[:255],
        },
    )
    return apply_stripe_event(event_pk=stored.pk)


def apply_stripe_event(*, event_pk: int) -> Received:
    """Apply a stored event through its handler, once (under the event's row lock)."""
    with transaction.atomic():
        stored = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if stored.processed_at is not None:
            return Received(stored, StripeEventResult.DUPLICATE)
        handler = EVENT_HANDLERS.get(stored.type)
        if handler is None:
            applied = Applied(StripeEventResult.IGNORED)
        else:
            applied = handler(stored, stored.payload["data"]["object"])
        stored.result = applied.result
        stored.order = applied.order or stored.order
        stored.note = applied.note[:300]
        stored.processed_at = timezone.now()
        stored.save(update_fields=["result", "order", "note", "processed_at"])
    logger.info("Stripe event %s (%s): %s", stored.event_id, stored.type, stored.result)
    return Received(stored, stored.result)


def _intent_id(data: dict[str, Any]) -> str:
    if data.get("object") == "payment_intent":
        return str(data.get("id") or "")
    intent = data.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return str(intent or "")


def _order_of(data: dict[str, Any]) -> Order | None:
    metadata = data.get("metadata") or {}
    number = metadata.get("order_number") if isinstance(metadata, dict) else None
    if not isinstance(number, str) or not number:
        return None
    return Order.objects.filter(number=number).first()


def _event_time(event: StripeEvent) -> datetime:
    created = event.payload.get("created")
    if isinstance(created, int) and created > 0:
        try:
            return datetime.fromtimestamp(created, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return timezone.now()


def payment_intent_succeeded(event: StripeEvent, intent: dict[str, Any]) -> Applied:
    """R11s: the card payment is recorded once, with the bank-transfer rules (R11)."""
    order = _order_of(intent)
    if order is None:
        return Applied(StripeEventResult.UNMATCHED, note="No order in the metadata.")
    currency = str(intent.get("currency") or "").lower()
    # localstripe leaves out amount_received; Stripe sets it on every succeeded intent.
    cents = intent.get("amount_received") or intent.get("amount")
    if currency != CURRENCY or not isinstance(cents, int) or cents <= 0:
        return Applied(
            StripeEventResult.UNMATCHED, order, note=f"Unexpected amount or currency {currency}."
        )
    with transaction.atomic():
        lock_order(order.pk)
        if Payment.objects.filter(stripe_payment_intent=intent["id"]).exists():
            return Applied(StripeEventResult.DUPLICATE, order)
        record_payment(
            order_id=order.pk,
            amount=from_cents(cents),
            method=PaymentMethod.CARD,
            received_at=_event_time(event),
            stripe_payment_intent=intent["id"],
        )
    return Applied(StripeEventResult.APPLIED, order)


def payment_intent_failed(event: StripeEvent, intent: dict[str, Any]) -> Applied:
    """A declined card: nothing changes on the order; staff see the event and its reason."""
    error = intent.get("last_payment_error") or {}
    if not isinstance(error, dict):
        error = {}
    note = (
        " ".join(str(part) for part in (error.get("code"), error.get("decline_code")) if part)
        or "payment_failed"
    )
    message = error.get("message")
    if message:
        note = f"{note}: {message}"
    return Applied(StripeEventResult.RECORDED, _order_of(intent), note=note)


def refund_event(event: StripeEvent, refund: dict[str, Any]) -> Applied:
    """refund.created / refund.updated / refund.failed / charge.refund.updated."""
    return _apply_provider_refund(refund)


def charge_refunded(event: StripeEvent, charge: dict[str, Any]) -> Applied:
    """charge.refunded: the charge lists its refunds in API versions that include them."""
    refunds = (charge.get("refunds") or {}).get("data") if isinstance(charge, dict) else None
    if not isinstance(refunds, list) or not refunds:
        return Applied(StripeEventResult.IGNORED, note="No refunds listed on the charge.")
    results = [_apply_provider_refund(r) for r in refunds if isinstance(r, dict)]
    changed = [r for r in results if r.result == StripeEventResult.APPLIED]
    first = (changed or results or [Applied(StripeEventResult.UNMATCHED)])[0]
    return Applied(
        StripeEventResult.APPLIED if changed else first.result, first.order, note=first.note
    )


EVENT_HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "charge.refunded": charge_refunded,
    "charge.refund.updated": refund_event,
    "refund.created": refund_event,
    "refund.updated": refund_event,
    "refund.failed": refund_event,
}


def _our_refund_for(data: dict[str, Any]) -> Refund | None:
    """Our card refund behind a Stripe refund: by the id we stored, or by the metadata we
    sent (refund id and order number must both match, whatever else is in the account)."""
    refund_id = str(data.get("id") or "")
    qs = Refund.objects.select_for_update().filter(destination=RefundDestination.CARD)
    if refund_id:
        ours = qs.filter(external_id=refund_id).first()
        if ours is not None:
            return ours
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        return None
    key, number = str(metadata.get("refund_id") or ""), metadata.get("order_number")
    if not key.isdigit() or not isinstance(number, str):
        return None
    return qs.filter(pk=int(key), order__number=number).first()


def _apply_provider_refund(data: dict[str, Any]) -> Applied:
    """Bring our refund in line with what Stripe says about it (never backwards)."""
    ours = _our_refund_for(data)
    if ours is None:
        return Applied(StripeEventResult.UNMATCHED, note="No refund of ours matches.")
    order = Order.objects.filter(pk=ours.order_id).first()
    changed = _record_provider_state(
        ours,
        ProviderRefund(
            id=str(data.get("id") or ""),
            status=str(data.get("status") or ""),
            amount_cents=int(data.get("amount") or 0),
            failure_reason=str(data.get("failure_reason") or ""),
        ),
    )
    return Applied(
        StripeEventResult.APPLIED if changed else StripeEventResult.UNCHANGED,
        order,
        note=f"refund {ours.pk}: {ours.status}",
    )


def _record_provider_state(refund: Refund, provider: ProviderRefund) -> bool:
    """approved -> sent (Stripe has it) -> settled (succeeded) | failed; refund locked."""
    now = timezone.now()
    before = refund.status
    if provider.status in ("failed", "canceled"):
        if refund.status in TOWARDS_CAPTURE:
            if refund.status == RefundStatus.APPROVED:
                refund.mark_sent(at=now, external_id=provider.id)
            refund.fail(reason=f"Stripe: {provider.failure_reason or provider.status}", at=now)
    else:
        if refund.status == RefundStatus.APPROVED and provider.id:
            refund.mark_sent(at=now, external_id=provider.id)
        if refund.status == RefundStatus.SENT and provider.status == "succeeded":
            refund.settle(at=now)
    if refund.status == before:
        return False
    refund.save()
    return True


# --- Money back ---------------------------------------------------------------------------


def ensure_within_captured(refund: Refund) -> None:
    """Refunds of a card payment never exceed what was captured (our own check: Stripe's
    test servers and localstripe do not enforce it). Locks the payment row."""
    if refund.payment_id is None:
        raise Refused(
            "refund_without_card_payment",
            "This card refund has no card payment to go back to.",
            refund=refund.pk,
        )
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    if payment.method != PaymentMethod.CARD or not payment.stripe_payment_intent:
        raise Refused(
            "refund_without_card_payment",
            "This card refund has no card payment to go back to.",
            refund=refund.pk,
        )
    others = to_money(
        Refund.objects.filter(payment=payment, status__in=TOWARDS_CAPTURE)
        .exclude(pk=refund.pk)
        .aggregate(s=Sum("amount"))["s"]
        or ZERO
    )
    if others + refund.amount > payment.amount:
        raise Refused(
            "refund_exceeds_captured",
            "The card refunds of this payment would exceed what was captured.",
            captured=str(payment.amount),
            refunded=str(others),
            requested=str(refund.amount),
            available=str(max(ZERO, payment.amount - others)),
        )


@dataclass
class QueuedRefunds:
    queued: list[Refund] = field(default_factory=list)
    refused: list[tuple[Refund, Refused]] = field(default_factory=list)


def queue_card_refunds(*, refund_ids: Iterable[int]) -> QueuedRefunds:
    """Staff send approved card refunds to Stripe: each is checked now (refused ones are
    reported and left as they are) and sent from the outbox after commit."""
    _gateway_or_refuse()
    outcome = QueuedRefunds()
    with transaction.atomic():
        refunds = (
            Refund.objects.select_for_update()
            .filter(
                pk__in=list(refund_ids),
                status=RefundStatus.APPROVED,
                destination=RefundDestination.CARD,
            )
            .order_by("pk")
        )
        for refund in refunds:
            try:
                ensure_within_captured(refund)
            except Refused as exc:
                outcome.refused.append((refund, exc))
                continue
            # No dedupe key: sending again is how staff retry at once; every delivery
            # after the first finds the refund sent and does nothing.
            outbox.publish(REFUND_TOPIC, {"refund_id": refund.pk})
            outcome.queued.append(refund)
    return outcome


def send_card_refund(*, refund_id: int) -> Refund:
    """Send one approved card refund to Stripe and record the result. Idempotent.

    The capture check comes before any call to Stripe. A network error propagates (the
    outbox tries again with backoff); the retry first looks for the refund under our id,
    then repeats the request with the same idempotency key, so Stripe holds one refund.
    """
    gateway = _gateway_or_refuse()
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != RefundStatus.APPROVED or refund.destination != RefundDestination.CARD:
            return refund  # already sent (or not a card refund): nothing to do
        ensure_within_captured(refund)
        payment = Payment.objects.get(pk=refund.payment_id)
        order = Order.objects.get(pk=refund.order_id)
        key = str(refund.pk)
        try:
            provider = gateway.find_refund(
                payment_intent=payment.stripe_payment_intent, refund_key=key
            ) or gateway.create_refund(
                payment_intent=payment.stripe_payment_intent,
                amount_cents=to_cents(refund.amount),
                metadata={"refund_id": key, "order_number": order.number},
                idempotency_key=f"refund-{refund.pk}",
            )
        except GatewayRejected as exc:
            now = timezone.now()
            refund.fail(reason=f"Stripe refused: {exc.message}"[:300], at=now)
            refund.save()
            return refund
        _record_provider_state(refund, provider)
        _disclose(order=order, purpose="card refund", reference=provider.id)
    logger.info("card refund %s at Stripe as %s: %s", refund.pk, provider.id, provider.status)
    return refund


def fail_refused_refund(*, refund_id: int, refusal: Refused) -> Refund:
    """A queued card refund that our own checks refuse is marked failed, with the reason,
    so staff see it in the queue and its amount is free again."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status in TOWARDS_CAPTURE:
            refund.fail(reason=f"{refusal.code}: {refusal.detail}"[:300], at=timezone.now())
            refund.save()
    return refund


@outbox.handler(REFUND_TOPIC)
def deliver_card_refund(payload: dict[str, Any], message: OutboxMessage) -> None:
    """Outbox receiver: GatewayUnavailable propagates, so the outbox retries with backoff."""
    refund_id = int(payload["refund_id"])
    try:
        send_card_refund(refund_id=refund_id)
    except Refused as exc:
        if exc.code == "card_payments_unavailable":
            raise  # switched off for now: keep the message for when it is back
        fail_refused_refund(refund_id=refund_id, refusal=exc)
