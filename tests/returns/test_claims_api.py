"""A customer files a conformity claim through the API (R23, R25; T6.3, T6.4, T6.9)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from returns.models.claims import Claim, ClaimPhoto, ClaimStatus
from tests.factories import image_bytes, pdf_bytes, place_test_order
from tests.returns.claims_support import delivered_order, make_staff, riga

pytestmark = pytest.mark.django_db

JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")
PDF = pdf_bytes()


def claims_url(number: str) -> str:
    return reverse("order-claim-create", kwargs={"number": number})


def claim_body(**overrides) -> dict:
    body = {
        "lines": [{"sku": "KEU-001", "quantity": 1}],
        "description": "The pump of the bottle is broken.",
        "discovered_on": str(timezone.localdate()),
        "remedy": "replacement",
    }
    body.update(overrides)
    return body


def post_claim(client, order, token, body=None, **extra):
    return client.post(
        claims_url(order.number),
        body or claim_body(),
        format="json",
        HTTP_X_ORDER_TOKEN=token,
        **extra,
    )


def test_r25_claim_filed_on_20_november_2026_answer_by_end_of_11_december(
    api_client, django_capture_on_commit_callbacks
):
    """R25: a claim made on Fri 20 Nov 2026 is answered by the end of Fri 11 Dec 2026
    (15 working days, Riga time); the customer gets a receipt with that date."""
    order, token = delivered_order(delivered_at=riga(2026, 11, 2, 12, 0))
    with (
        time_machine.travel(riga(2026, 11, 20, 16, 0), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post_claim(api_client, order, token)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "submitted"
    assert body["answer_deadline"] == "2026-12-11T23:59:59.999999+02:00"
    assert body["channel"] == "api"
    assert body["remedy"] == "replacement"
    assert body["late_notice"] is False
    assert body["is_warranty_claim"] is False
    assert body["lines"][0]["sku"] == "KEU-001"
    assert body["decisions"][0]["kind"] == "received"
    receipt = [m for m in mail.outbox if "11.12.2026" in m.body]
    assert len(receipt) == 1
    assert receipt[0].to == ["anna@example.lv"]
    assert order.number in receipt[0].subject and str(body["id"]) in receipt[0].subject
    assert "English" in receipt[0].body  # Latvian first, then English

    detail = api_client.get(
        reverse("claim-detail", kwargs={"claim_id": body["id"]}), HTTP_X_ORDER_TOKEN=token
    )
    assert detail.status_code == 200
    assert detail.json()["answer_deadline"] == "2026-12-11T23:59:59.999999+02:00"


def test_r23_two_year_edge_to_the_day_in_riga_time(api_client):
    """R23 (T6.3): delivered 10 Mar 2026; a claim at 23:59 on 10 Mar 2028 (Riga) is taken,
    at 00:01 on 11 Mar 2028 it is refused with claim_period_expired and the deadline."""
    order, token = delivered_order(delivered_at=riga(2026, 3, 10, 14, 0))
    with time_machine.travel(riga(2028, 3, 10, 23, 59), tick=False):
        taken = post_claim(api_client, order, token, claim_body(discovered_on="2028-03-10"))
    assert taken.status_code == 201, taken.json()
    assert taken.json()["is_warranty_claim"] is False

    with time_machine.travel(riga(2028, 3, 11, 0, 1), tick=False):
        refused = post_claim(api_client, order, token, claim_body(discovered_on="2028-03-10"))
    assert refused.status_code == 422
    assert refused["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "claim_period_expired"
    assert problem["deadline"] == "2028-03-10T23:59:59.999999+02:00"
    assert problem["skus"] == ["KEU-001"]
    assert Claim.objects.filter(order=order).count() == 1


def test_r23_after_two_years_the_products_warranty_takes_the_claim(api_client):
    """R23 (T6.4): after the 2 years a claim about a product whose commercial warranty still
    runs (36 months here) is taken as a warranty claim; at its end it is refused."""
    order, token = delivered_order(
        delivered_at=riga(2026, 3, 10, 14, 0), warranty_months={"KEU-001": 36}
    )
    with time_machine.travel(riga(2028, 6, 1, 10, 0), tick=False):
        response = post_claim(api_client, order, token, claim_body(discovered_on="2028-05-30"))
    assert response.status_code == 201, response.json()
    assert response.json()["is_warranty_claim"] is True

    with time_machine.travel(riga(2029, 3, 11, 0, 1), tick=False):
        late = post_claim(api_client, order, token, claim_body(discovered_on="2029-03-10"))
    assert late.status_code == 422
    assert late.json()["code"] == "claim_period_expired"


def test_r23_late_notice_is_flagged_never_refused(api_client):
    """R23 (SGD Art 12): notice more than 2 months after discovery is taken and flagged."""
    order, token = delivered_order(delivered_at=riga(2026, 3, 10, 14, 0))
    with time_machine.travel(riga(2026, 11, 20, 10, 0), tick=False):
        late = post_claim(api_client, order, token, claim_body(discovered_on="2026-09-19"))
        in_time = post_claim(api_client, order, token, claim_body(discovered_on="2026-09-20"))
    assert late.status_code == 201
    assert late.json()["late_notice"] is True
    assert in_time.status_code == 201
    assert in_time.json()["late_notice"] is False


def test_r23_claim_before_delivery_is_refused_not_delivered(api_client):
    placed = place_test_order([("KEU-001", 1)])
    response = post_claim(api_client, placed.order, placed.access_token)
    assert response.status_code == 422
    assert response.json()["code"] == "not_delivered"
    assert response.json()["status"] == "placed"


def test_r5_business_buyer_has_no_consumer_conformity_regime(api_client):
    """R5: a business buyer is not a consumer: refused with not_a_consumer unless the
    product's commercial warranty runs, then taken as a warranty claim."""
    business = {"is_consumer": False, "company_name": "SIA Salons", "company_reg_no": "40003000000"}
    order, token = delivered_order(customer=business)
    refused = post_claim(api_client, order, token)
    assert refused.status_code == 422
    assert refused.json()["code"] == "not_a_consumer"

    order, token = delivered_order(
        [("KEU-002", 1)], customer=business, warranty_months={"KEU-002": 12}
    )
    taken = post_claim(
        api_client, order, token, claim_body(lines=[{"sku": "KEU-002", "quantity": 1}])
    )
    assert taken.status_code == 201
    assert taken.json()["is_warranty_claim"] is True


def test_claims_are_404_without_the_order_token_or_owner(api_client):
    order, token = delivered_order()
    assert post_claim(api_client, order, "wrong-token").status_code == 404
    assert api_client.post(claims_url(order.number), claim_body(), format="json").status_code == 404
    created = post_claim(api_client, order, token)
    assert created.status_code == 201
    url = reverse("claim-detail", kwargs={"claim_id": created.json()["id"]})
    assert api_client.get(url).status_code == 404
    assert api_client.get(url, HTTP_X_ORDER_TOKEN="wrong").status_code == 404
    _other_order, other_token = delivered_order([("KEU-009", 1)])
    assert api_client.get(url, HTTP_X_ORDER_TOKEN=other_token).status_code == 404
    assert api_client.get(url, HTTP_X_ORDER_TOKEN=token).status_code == 200
    missing = reverse("claim-detail", kwargs={"claim_id": 999999})
    assert api_client.get(missing, HTTP_X_ORDER_TOKEN=token).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "lines"),
        ({"lines": [{"sku": "KEU-001", "quantity": 2}]}, "lines"),
        ({"lines": [{"sku": "KEU-001", "quantity": 0}]}, "lines.0.quantity"),
        ({"remedy": "money_back"}, "remedy"),
        ({"description": "   "}, "description"),
        ({"discovered_on": "2999-01-01"}, "discovered_on"),
        ({"discovered_on": "2026-11-01"}, "discovered_on"),  # before delivery
        ({"discovered_on": "yesterday"}, "discovered_on"),
        ({"iban": "LV00BANK0000000000000"}, "iban"),
        ({"lines": "x", "remedy": None}, "lines"),
    ],
)
def test_bad_claims_are_400_problem_json(api_client, overrides, field):
    order, token = delivered_order(delivered_at=riga(2026, 11, 2, 12, 0))
    with time_machine.travel(riga(2026, 11, 20, 16, 0), tick=False):
        response = post_claim(api_client, order, token, claim_body(**overrides))
    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert field in {error["field"] for error in response.json()["errors"]}
    assert not Claim.objects.exists()


def multipart(order, token, client, files, **fields):
    data = {
        "lines": json.dumps([{"sku": "KEU-001", "quantity": 1}]),
        "description": "Scratched bottle, pump leaks.",
        "discovered_on": str(timezone.localdate()),
        "remedy": "repair",
        **fields,
    }
    if files:
        data["photos"] = files
    return client.post(claims_url(order.number), data, format="multipart", HTTP_X_ORDER_TOKEN=token)


def test_photos_are_checked_by_content_and_stored(api_client):
    """JPEG, PNG and PDF by their first bytes, whatever the name says; at most 5."""
    order, token = delivered_order()
    files = [
        SimpleUploadedFile("photo.png", JPEG, content_type="image/png"),  # a JPEG, misnamed
        SimpleUploadedFile("b.png", PNG, content_type="image/png"),
        SimpleUploadedFile("receipt.pdf", PDF, content_type="application/pdf"),
    ]
    response = multipart(order, token, api_client, files)
    assert response.status_code == 201, response.json()
    kinds = [p["content_type"] for p in response.json()["photos"]]
    assert kinds == ["image/jpeg", "image/png", "application/pdf"]
    stored = list(ClaimPhoto.objects.order_by("pk"))
    assert [p.file.name.rsplit(".", 1)[-1] for p in stored] == ["jpg", "png", "pdf"]
    assert all("photo" not in p.file.name for p in stored)  # never the customer's name
    with stored[0].file.open("rb") as fh:
        assert fh.read().startswith(b"\xff\xd8\xff")  # re-encoded (issue 14), still a JPEG


def test_multipart_without_photos_is_taken(api_client):
    order, token = delivered_order()
    response = multipart(order, token, api_client, [])
    assert response.status_code == 201, response.json()
    assert response.json()["photos"] == []


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (
            [SimpleUploadedFile("x.jpg", b"GIF89a" + b"\x00" * 50, "image/jpeg")],
            "photo_type_not_allowed",
        ),
        ([SimpleUploadedFile("x.html", b"<html><script>", "image/png")], "photo_type_not_allowed"),
        (
            [SimpleUploadedFile("big.jpg", JPEG + b"\x00" * (5 * 1024 * 1024), "image/jpeg")],
            "photo_too_large",
        ),
        ([SimpleUploadedFile("empty.jpg", b"", "image/jpeg")], "empty_file"),
        ([SimpleUploadedFile(f"{i}.jpg", JPEG, "image/jpeg") for i in range(6)], "max_length"),
    ],
)
def test_bad_photos_are_refused_with_400(api_client, files, code):
    order, token = delivered_order()
    response = multipart(order, token, api_client, files)
    assert response.status_code == 400, response.json()
    assert code in {error["code"] for error in response.json()["errors"]}
    assert not Claim.objects.exists()
    assert not ClaimPhoto.objects.exists()


def test_multipart_with_bad_lines_json_is_400(api_client):
    order, token = delivered_order()
    response = multipart(order, token, api_client, [], lines="not json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "lines"


def test_get_claim_shows_decisions_and_refund_without_staff_names(api_client):
    from returns.claims import services

    order, token = delivered_order(prices={"KEU-001": Decimal("30.00")})
    created = post_claim(api_client, order, token, claim_body(remedy="price_reduction"))
    claim_id = created.json()["id"]
    clerk = make_staff("clerk", "returns.decide_claim")
    services.decide_price_reduction(
        claim_id=claim_id,
        amounts={Claim.objects.get(pk=claim_id).lines.get().pk: Decimal("7.50")},
        reason="Scratch only; the customer keeps the bottle.",
        by=clerk,
        obstacle="disproportionate",
        obstacle_reason="A new bottle costs more than the scratch is worth.",
    )
    body = api_client.get(
        reverse("claim-detail", kwargs={"claim_id": claim_id}), HTTP_X_ORDER_TOKEN=token
    ).json()
    assert body["status"] == ClaimStatus.PRICE_REDUCTION
    assert [d["kind"] for d in body["decisions"]] == ["received", "obstacle", "price_reduction"]
    decision = body["decisions"][-1]
    assert decision["amount"] == "7.50"
    assert decision["refund"]["amount"] == "7.50"
    assert decision["refund"]["status"] == "ready"
    assert body["lines"][0]["refund_amount"] == "7.50"
    assert "clerk" not in json.dumps(body)
