"""A clerk enters and decides conformity claims in the admin (R24, R25, T6.9)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from orders.models import Refund, RefundReason
from returns.claims import services
from returns.models.claims import Claim, ClaimStatus
from tests.factories import image_bytes, pdf_bytes
from tests.returns.claims_support import delivered_order, file_claim, make_staff, riga

pytestmark = pytest.mark.django_db

CLAIMS_URL = reverse("admin:returns_claim_changelist")
ADD_URL = reverse("admin:returns_claim_add")
CLERK_PERMISSIONS = [
    "returns.view_claim",
    "returns.add_claim",
    "returns.view_claimline",
    "returns.view_claimphoto",
    "returns.view_claimdecision",
    "returns.decide_claim",
]


@pytest.fixture
def clerk(db):
    return make_staff("clerk", *CLERK_PERMISSIONS)


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


def act(client, action: str, claims, **form):
    data = {"action": action, ACTION_CHECKBOX_NAME: [c.pk for c in claims], **form}
    return client.post(CLAIMS_URL, data)


def test_t6_9_clerk_enters_an_oral_claim_with_the_time_received(
    clerk_client, clerk, django_capture_on_commit_callbacks
):
    """T6.9, R25: an oral claim entered with the time it was received; the answer deadline
    runs from then and the customer is emailed a receipt."""
    order, _token = delivered_order(delivered_at=riga(2026, 11, 2, 12, 0))
    assert clerk_client.get(ADD_URL).status_code == 200
    with (
        time_machine.travel(riga(2026, 11, 23, 9, 0), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = clerk_client.post(
            ADD_URL,
            {
                "order_number": order.number.lower(),
                "channel": "oral",
                "received_at_0": "2026-11-20",
                "received_at_1": "16:00",
                "discovered_on": "2026-11-19",
                "lines": "KEU-001 1",
                "remedy": "repair",
                "description": "Told us by phone: the pump is broken.",
                "photos": [SimpleUploadedFile("p.jpg", image_bytes("JPEG"))],
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    claim = Claim.objects.get()
    assert response["Location"] == reverse("admin:returns_claim_change", args=[claim.pk])
    assert claim.channel == "oral"
    assert claim.entered_by == clerk
    assert claim.received_at == riga(2026, 11, 20, 16, 0)
    assert claim.answer_deadline == riga(2026, 12, 11, 23, 59, 59, 999999)
    assert claim.photos.get().content_type == "image/jpeg"
    assert len(mail.outbox) == 1 and "11.12.2026" in mail.outbox[0].body


def test_staff_entry_shows_refusals_on_the_form(clerk_client, clerk):
    order, _token = delivered_order(delivered_at=riga(2026, 3, 10, 12, 0))
    with time_machine.travel(riga(2028, 3, 12, 9, 0), tick=False):
        clerk_client.force_login(clerk)  # the earlier session has expired by then
        response = clerk_client.post(
            ADD_URL,
            {
                "order_number": order.number,
                "channel": "paper",
                "received_at_0": "2028-03-11",
                "received_at_1": "10:00",
                "discovered_on": "2028-03-01",
                "lines": "KEU-001 1",
                "remedy": "repair",
                "description": "Letter: pump broken.",
            },
        )
    assert response.status_code == 200
    assert "(claim_period_expired, deadline: 2028-03-10" in response.content.decode()
    assert not Claim.objects.exists()


def test_r25_open_claims_by_answer_deadline_overdue_highlighted(clerk_client, clerk):
    """R25: the list shows open claims, earliest answer deadline first; overdue ones carry
    a badge; closed ones only when asked for."""
    order, _token = delivered_order(delivered_at=riga(2026, 10, 1, 12, 0))
    with time_machine.travel(riga(2026, 11, 20, 16, 0), tick=False):
        newer = file_claim(order)
    with time_machine.travel(riga(2026, 10, 5, 10, 0), tick=False):
        older = file_claim(order)
        closed = file_claim(order)
    services.reject_claim(claim_id=closed.pk, reason="Not a defect.", by=clerk)
    with time_machine.travel(riga(2026, 11, 23, 10, 0), tick=False):
        page = clerk_client.get(CLAIMS_URL)
    assert page.status_code == 200
    shown = [claim.pk for claim in page.context["cl"].result_list]
    assert shown == [older.pk, newer.pk]
    html = page.content.decode()
    assert html.count('class="claim-overdue"') == 1  # the older claim's deadline passed
    everything = clerk_client.get(CLAIMS_URL, {"state": "all"})
    assert closed.pk in [c.pk for c in everything.context["cl"].result_list]


def test_r24_decision_action_asks_for_the_reason_then_calls_the_service(clerk_client, clerk):
    order, _token = delivered_order()
    claim = file_claim(order)
    form_page = act(clerk_client, "decide_repair", [claim])
    assert form_page.status_code == 200
    assert "reason" in form_page.context["form"].fields
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.SUBMITTED
    missing = act(clerk_client, "decide_repair", [claim], apply="yes", reason="")
    assert missing.status_code == 200 and missing.context["form"].errors
    done = act(clerk_client, "decide_repair", [claim], apply="yes", reason="We fix the pump.")
    assert done.status_code == 302
    claim = Claim.objects.get(pk=claim.pk)
    assert claim.status == ClaimStatus.REPAIR
    decision = claim.decisions.get(kind="repair")
    assert (decision.decided_by, decision.reason) == (clerk, "We fix the pump.")


def test_r24_price_reduction_in_the_admin_refunds_through_orders(clerk_client):
    order, _token = delivered_order(prices={"KEU-001": Decimal("20.00")})
    claim = file_claim(order, remedy="price_reduction")
    line_field = f"line_{claim.lines.get().pk}"
    page = act(clerk_client, "decide_price_reduction", [claim])
    assert line_field in page.context["form"].fields
    # Without the reason that repair and replacement are excluded: refused, nothing paid.
    act(
        clerk_client,
        "decide_price_reduction",
        [claim],
        apply="yes",
        reason="Asked.",
        **{line_field: "5.00"},
    )
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.SUBMITTED
    assert not Refund.objects.exists()
    response = act(
        clerk_client,
        "decide_price_reduction",
        [claim],
        apply="yes",
        reason="Scratch; agreed 5 EUR.",
        obstacle="disproportionate",
        obstacle_reason="A new bottle costs more than the scratch.",
        **{line_field: "5.00"},
    )
    assert response.status_code == 302
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.PRICE_REDUCTION
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.reason) == (Decimal("5.00"), RefundReason.CONFORMITY)


def test_r24_termination_of_a_minor_defect_is_refused_with_a_message(clerk_client, clerk):
    order, _token = delivered_order()
    claim = file_claim(order, remedy="termination")
    services.set_minor_defect(claim_id=claim.pk, minor=True, reason="Label scratch.", by=clerk)
    line_field = f"line_{claim.lines.get().pk}"
    response = act(
        clerk_client,
        "decide_termination",
        [claim],
        apply="yes",
        reason="Customer insists.",
        obstacle="impossible",
        obstacle_reason="No spare pumps.",
        **{line_field: ""},
    )
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("(minor_defect_no_termination" in m for m in messages)
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.SUBMITTED
    assert not Refund.objects.exists()


def test_change_page_offers_the_decisions_possible_now(clerk_client):
    order, _token = delivered_order()
    claim = file_claim(order)
    page = clerk_client.get(reverse("admin:returns_claim_change", args=[claim.pk]))
    assert page.status_code == 200
    offered = [name for name, _label in page.context["decision_actions"]]
    assert offered[:3] == ["start_review", "decide_repair", "decide_replacement"]
    assert "resolve" not in offered
    back = clerk_client.post(
        CLAIMS_URL,
        {"action": "start_review", ACTION_CHECKBOX_NAME: [claim.pk], "_from_change": "1"},
    )
    assert back["Location"] == reverse("admin:returns_claim_change", args=[claim.pk])
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.UNDER_REVIEW


def test_without_the_decide_permission_no_decisions(client):
    viewer = make_staff("viewer", "returns.view_claim")
    client.force_login(viewer)
    order, _token = delivered_order()
    claim = file_claim(order)
    page = client.get(CLAIMS_URL)
    assert page.status_code == 200
    assert "decide_repair" not in page.content.decode()
    act(client, "decide_repair", [claim], apply="yes", reason="x")
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.SUBMITTED
    assert client.get(ADD_URL).status_code == 403


def test_photos_download_for_staff_only(clerk_client, client):
    order, _token = delivered_order()
    claim = file_claim(order, photos_in=[SimpleUploadedFile("a.pdf", pdf_bytes())])
    photo = claim.photos.get()
    url = reverse("admin:returns_claim_photo", args=[claim.pk, photo.pk])
    response = clerk_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content).startswith(b"%PDF-")
    anonymous = client.__class__()
    assert anonymous.get(url).status_code == 302  # to the admin login
