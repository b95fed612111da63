"""No personal data in log lines: emails, phone numbers and IBANs are redacted by every
handler (shop.logging, legal.log_redaction), and no code logs a customer's name."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from celery import signals

from legal.log_redaction import ensure_redaction, unredacted_handlers
from orders.services.lifecycle import cancel_order
from orders.services.payments import record_payment
from shop.logging import RedactPersonalDataFilter
from tests.legal.helpers import place

pytestmark = pytest.mark.django_db

EMAIL, PHONE, IBAN = "zelma.kalnina@example.lv", "+37126123456", "LV80BANK0000435195001"
FIRST, LAST, PAYER = "Zelma", "Kalniņa", "Zelmas Tēvs"


def test_no_personal_data_in_logs_over_a_whole_order_lifecycle(
    caplog, client, shop_ready, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactPersonalDataFilter())
    logging.getLogger("lifecycle.test").info(
        "a careless line with %s, %s and %s", EMAIL, PHONE, IBAN
    )
    with django_capture_on_commit_callbacks(execute=True):
        order = place(
            email=EMAIL,
            first_name=FIRST,
            last_name=LAST,
            phone=PHONE,
            now=datetime(2026, 1, 12, 9, tzinfo=UTC),
        )
    with django_capture_on_commit_callbacks(execute=True):
        record_payment(
            order_id=order.pk,
            amount=order.total + Decimal("5.00"),
            method="bank_transfer",
            received_at=datetime(2026, 1, 13, tzinfo=UTC),
            payer_name=PAYER,
            payer_iban=IBAN,
        )  # overpaid: a refund to the IBAN
    with django_capture_on_commit_callbacks(execute=True):
        cancel_order(order_id=order.pk, reason="staff")  # everything paid comes back
    client.get(f"/api/orders/{order.number}/?email={EMAIL}")  # a 404 logged by Django
    assert caplog.records, "the lifecycle logs something"
    lines = [caplog.handler.format(record) for record in caplog.records]
    for secret in (EMAIL, PHONE, IBAN, FIRST, LAST, PAYER, "26123456"):
        assert not [line for line in lines if secret in line], secret
    assert any("[email]" in line and "[iban]" in line for line in lines)


def test_the_configured_handler_redacts_what_it_writes():
    stream = io.StringIO()
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    logger = logging.getLogger("redaction.test")
    logger.addHandler(handler)
    try:
        logger.warning("refund to %s for %s (%s)", IBAN, EMAIL, PHONE)
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert IBAN not in written and EMAIL not in written and PHONE not in written
    assert "[iban]" in written and "[email]" in written and "[phone]" in written


def test_every_handler_redacts_including_djangos_and_celerys():
    ours = [
        (name, handler)
        for name, handler in unredacted_handlers()
        if not type(handler).__module__.startswith("_pytest")  # pytest's own capture
    ]
    assert ours == []
    for name in ("django", "django.server", "django.request"):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue
            assert any(isinstance(f, RedactPersonalDataFilter) for f in handler.filters), name
    # A Celery worker replaces the root handlers when it sets up logging: the filter
    # is put back on whatever it installed.
    worker_handler = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(worker_handler)
    try:
        signals.after_setup_logger.send(
            sender=None, logger=root, loglevel=logging.INFO, logfile=None, format="", colorize=False
        )
        assert any(isinstance(f, RedactPersonalDataFilter) for f in worker_handler.filters)
    finally:
        root.removeHandler(worker_handler)
    assert ensure_redaction() == 0
