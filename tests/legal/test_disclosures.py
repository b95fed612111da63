"""legal.services.disclosures: the disclosure log (R27)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legal.models import Disclosure
from legal.services.disclosures import record_disclosure
from shop.errors import InvalidInput
from tests.factories import place_test_order

pytestmark = pytest.mark.django_db


def test_r27_a_disclosure_is_logged_with_time_recipient_categories_and_purpose():
    order = place_test_order([("KEU-001", 1)]).order
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)

    disclosure = record_disclosure(
        recipient="stripe",
        categories=["settlement"],
        purpose="  card payment ",
        order=order,
        reference="pi_1",
        at=at,
    )

    assert Disclosure.objects.get() == disclosure
    assert (
        disclosure.recipient,
        disclosure.categories,
        disclosure.purpose,
        disclosure.disclosed_at,
        disclosure.order_id,
        disclosure.reference,
        disclosure.withheld_from_subject,
    ) == ("stripe", ["settlement"], "card payment", at, order.pk, "pi_1", False)


def test_r27_once_logs_the_same_recipient_order_and_reference_a_single_time():
    """R27: a sender that may hand the same data over again (a retried card payment that
    Stripe answers with the same PaymentIntent) logs it the first time only."""
    order = place_test_order([("KEU-001", 1)]).order
    args = {"recipient": "stripe", "categories": ["settlement"], "order": order}

    first = record_disclosure(purpose="card payment", reference="pi_1", once=True, **args)
    again = record_disclosure(purpose="card payment", reference="pi_1", once=True, **args)
    other = record_disclosure(purpose="card refund", reference="re_1", once=True, **args)
    repeated = record_disclosure(purpose="card payment", reference="pi_1", **args)

    assert again == first
    assert other != first and repeated != first  # another reference; without `once`
    assert Disclosure.objects.filter(order=order, reference="pi_1").count() == 2
    assert Disclosure.objects.count() == 3


def test_r27_once_needs_a_reference():
    with pytest.raises(InvalidInput):
        record_disclosure(
            recipient="stripe", categories=["settlement"], purpose="card payment", once=True
        )
    assert not Disclosure.objects.exists()
