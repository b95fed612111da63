"""Data-subject requests (R30): erasure, restriction, objection, rectification; each logged
with its received date and its one-month answer deadline, answered in JSON and by email."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core import mail

from legal.access import subject_token
from legal.models import (
    Consent,
    DataSubjectRequest,
    ErasureRecord,
    PersonalDataRecord,
)
from legal.registry import MARKER
from legal.services import consents
from legal.services import holds as hold_services
from legal.services import requests as request_services
from orders.models import Invoice, Order
from tests.legal.helpers import confirm_checkout_consents, deliver, ledger_rows, pay, place

pytestmark = pytest.mark.django_db


def auth(email="anna@example.lv"):
    return {"HTTP_AUTHORIZATION": f"Bearer {subject_token(email)}"}


def finished_and_open_orders():
    done = place(
        email="anna@example.lv",
        now=datetime(2026, 1, 12, 9, tzinfo=UTC),
        consents={"marketing_email": True},
    )
    confirm_checkout_consents(done)
    done = pay(done, datetime(2026, 1, 13, tzinfo=UTC))
    done = deliver(done, datetime(2026, 1, 14, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
    still_open = place(
        email="anna@example.lv", now=datetime(2026, 3, 1, 9, tzinfo=UTC), courier=False
    )
    return done, still_open


def post(api_client, body, email="anna@example.lv"):
    return api_client.post("/api/me/requests/", body, format="json", **auth(email))


def test_r30_erasure_erases_what_no_basis_requires_and_says_what_is_kept(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    done, still_open = finished_and_open_orders()
    place(email="berta@example.lv", first_name="Berta")
    mail.outbox.clear()
    with (
        time_machine.travel(datetime(2026, 3, 10, 10, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post(api_client, {"type": "erasure"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "answered"
    assert body["received_at"].startswith("2026-03-10")
    assert body["answer_due"] == "2026-04-10"
    erased = {(e.get("order"), e["category"]) for e in body["answer"]["erased"]}
    assert (done.number, "contact") in erased and (done.number, "delivery") in erased
    assert (None, "consents") in erased
    kept = {(k.get("order"), k["category"]): k for k in body["answer"]["kept"]}
    # Accounting records: a legal obligation, until 31 Dec 2031.
    settlement = kept[(done.number, "settlement")]
    assert settlement["until"] == "2031-12-31" and settlement["basis"] == "c"
    assert "17(3)(b)" in settlement["exemption"] and "Accounting Law" in settlement["citation"]
    # Identity: legal claims (conformity period) until delivery + 2 years + 2 months.
    assert kept[(done.number, "identity")]["until"] == "2028-03-15"
    # The open order is still being performed: everything kept, no date yet.
    open_contact = kept[(still_open.number, "contact")]
    assert open_contact["until"] is None and "performed" in open_contact["until_text"]

    done.refresh_from_db()
    assert (done.email, done.phone, done.street) == (MARKER, MARKER, MARKER)
    assert done.first_name == "Anna"  # identity kept for legal claims
    assert Invoice.objects.get(order=done).buyer_name == "Anna Bērziņa"
    still_open.refresh_from_db()
    assert still_open.email == "anna@example.lv"
    assert Order.objects.get(email="berta@example.lv").first_name == "Berta"
    assert not Consent.objects.filter(email="anna@example.lv").exists()
    request = DataSubjectRequest.objects.get(kind="erasure")
    assert ErasureRecord.objects.filter(request=request, category="contact", order=done).exists()
    assert ledger_rows(done)["contact"].erased_at is not None
    # ... and by email.
    answer = [m for m in mail.outbox if "anna@example.lv" in m.to][-1]
    assert "2031-12-31" in answer.body and "Accounting Law" not in answer.subject


def test_r30_erasure_leaves_a_held_order_alone(api_client, shop_ready):
    done, _open = finished_and_open_orders()
    hold_services.place_hold(order_id=done.pk, reason="dispute", note="court")
    response = post(api_client, {"type": "erasure"})
    kept = {(k.get("order"), k["category"]): k for k in response.json()["answer"]["kept"]}
    assert "court" in kept[(done.number, "contact")]["why"]
    done.refresh_from_db()
    assert done.email == "anna@example.lv"


def test_r30_an_account_holder_erasure_closes_the_account(api_client, shop_ready):
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from legal.models import CustomerAccount

    finished_and_open_orders()
    user = User.objects.create_user("anna@example.lv", "anna@example.lv", "pw-Very-long-1")
    CustomerAccount.objects.create(user=user, email_verified_at=datetime(2026, 1, 1, tzinfo=UTC))
    token = Token.objects.create(user=user)
    response = api_client.post(
        "/api/me/requests/",
        {"type": "erasure"},
        format="json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 201
    assert "account" in {e["category"] for e in response.json()["answer"]["erased"]}
    user.refresh_from_db()
    assert not user.is_active and user.email == "" and not user.has_usable_password()
    assert not Token.objects.exists()
    assert not Order.objects.filter(user__isnull=False).exists()


def test_r30_restriction_marks_every_ledger_row_and_stops_marketing(
    api_client, shop_ready, admin_client
):
    done, still_open = finished_and_open_orders()
    assert consents.marketing_allowed("anna@example.lv", "marketing_email")
    response = post(api_client, {"type": "restriction", "details": "I dispute the accuracy."})
    assert response.status_code == 201
    assert response.json()["answer"]["restricted"] is True
    rows = PersonalDataRecord.objects.filter(order__in=[done, still_open])
    assert rows.count() and not rows.filter(restricted_at__isnull=True).exists()
    assert not consents.marketing_allowed("anna@example.lv", "marketing_email")
    assert api_client.get("/api/me/", **auth()).json()["restricted"] is True
    page = admin_client.get(f"/admin/orders/order/{done.pk}/change/")
    assert page.status_code == 200
    assert "apstrāde ierobežota" in page.content.decode().lower()  # "processing restricted"
    request = DataSubjectRequest.objects.get(kind="restriction")
    request_services.lift_restriction(request_id=request.pk)
    assert not rows.filter(restricted_at__isnull=False).exists()
    assert consents.marketing_allowed("anna@example.lv", "marketing_email")


def test_r30_objection_stops_profiling_and_direct_marketing(api_client, shop_ready):
    finished_and_open_orders()
    api_client.post("/api/me/consents/", {"purpose": "profiling"}, format="json", **auth())
    response = post(api_client, {"type": "objection"})
    assert response.status_code == 201
    assert set(response.json()["answer"]["withdrawn"]) == {"marketing_email", "profiling"}
    assert not Consent.objects.filter(withdrawn_at__isnull=True).exists()
    assert set(Consent.objects.values_list("withdrawn_via", flat=True)) == {"objection"}


def test_r30_rectification_of_contact_data_on_open_orders(api_client, shop_ready):
    done, still_open = finished_and_open_orders()
    courier = place(email="anna@example.lv")
    cancelled = place(email="anna@example.lv")
    from orders.services.lifecycle import cancel_order

    cancel_order(order_id=cancelled.pk, reason="customer")
    response = post(
        api_client,
        {
            "type": "rectification",
            "changes": {
                "phone": "29 123 456",
                "address": {
                    "street": "Jauna iela 2",
                    "city": "Rīga",
                    "postal_code": "lv-1010",
                    "country": "LV",
                },
            },
        },
    )
    assert response.status_code == 201, response.json()
    answer = response.json()["answer"]
    changed = {r["order"]: r["fields"] for r in answer["rectified"]}
    assert changed[courier.number] == ["phone", "street", "city", "postal_code"]
    assert changed[still_open.number] == ["phone"]  # a parcel-machine order: no address
    assert changed[done.number] == ["phone"]  # delivered: open, but already dispatched
    assert cancelled.number not in changed
    courier.refresh_from_db()
    assert (courier.phone, courier.street, courier.postal_code) == (
        "+37129123456",
        "Jauna iela 2",
        "LV-1010",
    )
    cancelled.refresh_from_db()
    assert cancelled.phone == "+37120000000"  # cancelled: not an open order
    assert {n["order"] for n in answer["not_changed"]} == {still_open.number, done.number}


def test_r30_rectification_is_validated_like_checkout(api_client, shop_ready):
    finished_and_open_orders()
    bad = post(api_client, {"type": "rectification", "changes": {"phone": "12"}})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "changes.phone"
    bad = post(
        api_client,
        {
            "type": "rectification",
            "changes": {
                "address": {
                    "street": "x",
                    "city": "Tallinn",
                    "postal_code": "10115",
                    "country": "EE",
                }
            },
        },
    )
    assert bad.status_code == 400
    assert post(api_client, {"type": "rectification"}).status_code == 400
    assert post(api_client, {"type": "access"}).status_code == 400
    assert post(api_client, {"type": "nonsense"}).status_code == 400


def test_r30_rectification_without_open_orders_is_refused_and_logged(api_client, shop_ready):
    done = place(email="anna@example.lv")
    from orders.services.lifecycle import cancel_order

    cancel_order(order_id=done.pk, reason="customer")
    response = post(api_client, {"type": "rectification", "changes": {"email": "new@example.lv"}})
    assert response.status_code == 422
    assert response.json()["code"] == "nothing_to_rectify"
    logged = DataSubjectRequest.objects.get(kind="rectification")
    assert logged.status == "refused" and logged.answer["code"] == "nothing_to_rectify"


def test_r30_answer_deadline_is_one_month_or_the_last_day_of_the_month(api_client, shop_ready):
    place(email="anna@example.lv")
    with time_machine.travel(datetime(2026, 1, 31, 10, tzinfo=UTC), tick=False):
        response = post(api_client, {"type": "objection"})
    assert response.json()["answer_due"] == "2026-02-28"
    listed = api_client.get("/api/me/requests/", **auth()).json()
    assert [r["type"] for r in listed] == ["objection"]
    assert DataSubjectRequest.objects.get().answer_due == date(2026, 2, 28)
