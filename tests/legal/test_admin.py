"""The admin: a clerk sees, for any order, which personal data it holds, why and until when
(R26); requests are queued with their deadlines (R30); staff place legal holds (R28)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from legal.access import Subject
from legal.models import DataSubjectRequest, LegalHold
from legal.services import requests as request_services
from tests.legal.helpers import deliver, pay, place

pytestmark = pytest.mark.django_db


def delivered():
    order = place(now=datetime(2026, 1, 12, 9, tzinfo=UTC))
    order = pay(order, datetime(2026, 1, 13, tzinfo=UTC))
    return deliver(order, datetime(2026, 1, 14, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))


def test_r26_the_order_page_shows_the_ledger(admin_client, shop_ready):
    order = delivered()
    page = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in (
        "KA1",
        "KA2",
        "KA8, KA9",
        "2028-03-15",
        "2031-12-31",
        "Accounting Law §28",
        "6(1)(c)",
        "6(1)(f)",
    ):
        assert text in html, text
    assert "e-pasts" in html or "email" in html  # the fields the category covers


def test_r26_the_ledger_and_erasures_have_lists(admin_client, shop_ready):
    delivered()
    assert admin_client.get("/admin/legal/personaldatarecord/").status_code == 200
    assert (
        admin_client.get("/admin/legal/personaldatarecord/?keep_until__isempty=0").status_code
        == 200
    )
    assert admin_client.get("/admin/legal/erasurerecord/").status_code == 200
    assert admin_client.get("/admin/legal/consent/").status_code == 200
    assert admin_client.get("/admin/legal/disclosure/").status_code == 200


def test_r28_staff_place_and_close_a_legal_hold(admin_client, shop_ready):
    order = delivered()
    response = admin_client.post(
        "/admin/legal/legalhold/add/",
        {"order": order.pk, "reason": "dispute", "note": "PTAC complaint"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    hold = LegalHold.objects.get()
    page = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "PTAC complaint" in page
    admin_client.post(
        "/admin/legal/legalhold/",
        {"action": "close_holds", "_selected_action": [hold.pk]},
    )
    hold.refresh_from_db()
    assert hold.closed_at is not None


def test_r30_requests_are_queued_with_their_deadlines(admin_client, shop_ready):
    place(email="anna@example.lv")
    with time_machine.travel(datetime(2026, 1, 31, 10, tzinfo=UTC), tick=False):
        request_services.receive_request(subject=Subject(email="anna@example.lv"), kind="objection")
    page = admin_client.get("/admin/legal/datasubjectrequest/")
    assert page.status_code == 200
    assert "anna@example.lv" in page.content.decode()
    request = DataSubjectRequest.objects.get()
    detail = admin_client.get(f"/admin/legal/datasubjectrequest/{request.pk}/change/")
    assert detail.status_code == 200


def test_r30_staff_enter_a_request_received_by_letter(admin_client, shop_ready):
    place(email="anna@example.lv", consents={"marketing_email": True})
    response = admin_client.post(
        "/admin/legal/datasubjectrequest/add/",
        {
            "kind": "objection",
            "email": "anna@example.lv",
            "received_at_0": "2026-02-02",
            "received_at_1": "10:00:00",
            "note": "letter of 1 Feb",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    request = DataSubjectRequest.objects.get()
    assert request.channel == "staff" and request.status == "answered"
    assert str(request.answer_due) == "2026-03-02"


def test_r27_staff_record_a_disclosure_to_an_authority(admin_client, shop_ready):
    from legal.models import Disclosure

    order = delivered()
    response = admin_client.post(
        "/admin/legal/disclosure/add/",
        {
            "recipient": "authority",
            "categories": ["identity", "contact"],
            "purpose": "State Police request no. 12",
            "order": order.pk,
            "reference": "letter 2026/12",
            "disclosed_at_0": "2026-02-02",
            "disclosed_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    disclosure = Disclosure.objects.get(recipient="authority")
    assert disclosure.categories == ["identity", "contact"] and disclosure.order == order
