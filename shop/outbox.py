"""The durable outbox (STYLE.md, after Sentry's hybridcloud outbox).

    with transaction.atomic():
        order = ...                                   # the state change
        outbox.publish("email.send", {...})           # same transaction

After commit the message is handed to Celery (`shop.tasks.deliver_outbox_message`); a
beat job (`relay_outbox`) retries anything not delivered. Delivery runs the topic's
handler while holding a row lock and marks the row delivered in the same transaction, so
concurrent or repeated deliveries run the handler once. Handlers take plain JSON
payloads and must be idempotent towards their receiver where the receiver allows it
(an idempotency key, a Message-ID).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from shop.db import insert_once
from shop.models import OutboxMessage

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], OutboxMessage], None]
_handlers: dict[str, Handler] = {}

MAX_ATTEMPTS = 12


class UnknownTopic(LookupError):
    pass


def handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the function that delivers messages of `topic`."""

    def register(func: Handler) -> Handler:
        if topic in _handlers and _handlers[topic] is not func:
            raise ValueError(f"outbox topic {topic!r} already has a handler")
        _handlers[topic] = func
        return func

    return register


def publish(topic: str, payload: dict[str, Any], *, dedupe_key: str | None = None) -> OutboxMessage:
    """Write a message in the current transaction; hand it to Celery after commit.

    With a `dedupe_key`, publishing the same key again returns the existing message.
    """
    if topic not in _handlers:
        raise UnknownTopic(topic)
    with transaction.atomic(savepoint=False):
        message = OutboxMessage(topic=topic, payload=payload, dedupe_key=dedupe_key)
        if dedupe_key is None:
            message.save(force_insert=True)
        elif not insert_once(message, ["dedupe_key"]):
            # The key is nearly always new: one INSERT ... ON CONFLICT DO NOTHING, and a
            # read only on a clash.
            return OutboxMessage.objects.get(dedupe_key=dedupe_key)
        transaction.on_commit(lambda: _enqueue(message.pk))
    return message


def _enqueue(message_id: int) -> None:
    from shop.tasks import deliver_outbox_message

    try:
        deliver_outbox_message.delay(message_id)
    except Exception:
        # The broker is down or the eager delivery failed: the relay will retry.
        logger.exception("outbox message %s not handed over; the relay will retry", message_id)


def deliver(message_id: int) -> bool:
    """Deliver one message; True when this call delivered it, False when nothing to do."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, delivered_at__isnull=True)
            .first()
        )
        if message is None:
            return False  # already delivered, or another worker holds it right now
        func = _handlers.get(message.topic)
        if func is None:
            raise UnknownTopic(message.topic)
        try:
            with transaction.atomic():
                func(message.payload, message)
        except Exception as exc:
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}"[:500]
            message.available_at = timezone.now() + backoff(message.attempts)
            message.save(update_fields=["attempts", "last_error", "available_at"])
            logger.warning(
                "outbox message %s (%s) failed, attempt %s: %s",
                message.pk,
                message.topic,
                message.attempts,
                type(exc).__name__,
            )
            return False
        message.attempts += 1
        message.delivered_at = timezone.now()
        message.last_error = ""
        message.save(update_fields=["attempts", "delivered_at", "last_error"])
    return True


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 6 * 3600))


def pending_ids(*, limit: int = 500, grace: timedelta = timedelta(seconds=30)) -> list[int]:
    """Messages due for (re)delivery: not delivered, available, and not just created."""
    now = timezone.now()
    return list(
        OutboxMessage.objects.filter(
            delivered_at__isnull=True,
            available_at__lte=now,
            created_at__lte=now - grace,
            attempts__lt=MAX_ATTEMPTS,
        )
        .order_by("available_at")
        .values_list("pk", flat=True)[:limit]
    )


def relay(*, limit: int = 500, grace: timedelta = timedelta(seconds=30)) -> int:
    """Hand every due message to Celery again; returns how many were handed over."""
    ids = pending_ids(limit=limit, grace=grace)
    for message_id in ids:
        _enqueue(message_id)
    return len(ids)
