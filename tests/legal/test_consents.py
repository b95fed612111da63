"""Consents (R31): per purpose, with the policy version, time and source; withdrawing is as
easy as giving and takes effect at once; every marketing email carries a signed
unsubscribe link (AP4.3)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from django.core import mail

from legal.access import subject_token
from legal.models import Consent
from legal.services import consents
from shop.errors import Refused
from tests.legal.helpers import confirm_checkout_consents, place

pytestmark = pytest.mark.django_db


def auth(email="anna@example.lv"):
    return {"HTTP_AUTHORIZATION": f"Bearer {subject_token(email)}"}


def test_r31_give_list_and_withdraw_consents_through_the_api(api_client, shop_ready):
    place(email="anna@example.lv")
    response = api_client.post(
        "/api/me/consents/",
        {"purpose": "marketing_email", "text_version": "news-v2"},
        format="json",
        **auth(),
    )
    assert response.status_code == 201
    consent = response.json()["consents"][0]
    assert consent["active"] is True and consent["source"] == "api"
    assert consent["policy_version"] == "2026-01" and consent["text_version"] == "news-v2"
    assert consent["given_at"]
    again = api_client.post(
        "/api/me/consents/", {"purpose": "marketing_email"}, format="json", **auth()
    )
    assert again.status_code == 200  # already standing: not twice
    api_client.post("/api/me/consents/", {"purpose": "profiling"}, format="json", **auth())
    assert consents.marketing_allowed("anna@example.lv", "marketing_email")

    response = api_client.delete("/api/me/consents/?purpose=marketing_email", **auth())
    assert response.status_code == 200
    assert response.json()["withdrawn"] == ["marketing_email"]
    assert not consents.marketing_allowed("anna@example.lv", "marketing_email")  # at once
    response = api_client.delete("/api/me/consents/profiling/", **auth())
    assert response.json()["withdrawn"] == ["profiling"]
    states = {c["purpose"]: c["active"] for c in response.json()["consents"]}
    assert states == {"marketing_email": False, "profiling": False}
    assert Consent.objects.get(purpose="profiling").withdrawn_via == "api"


def test_r31_bad_purposes_are_refused(api_client, shop_ready):
    place(email="anna@example.lv")
    assert (
        api_client.post(
            "/api/me/consents/", {"purpose": "spam"}, format="json", **auth()
        ).status_code
        == 400
    )
    assert api_client.delete("/api/me/consents/", **auth()).status_code == 400
    assert api_client.delete("/api/me/consents/spam/", **auth()).status_code == 404


def test_r31_every_marketing_email_has_an_unsubscribe_link_that_works_without_login(
    client, shop_ready, django_capture_on_commit_callbacks
):
    confirm_checkout_consents(place(email="anna@example.lv", consents={"marketing_email": True}))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        consents.queue_marketing_email(
            to="anna@example.lv", template="account_verify", context={"verify_url": "x"}
        )
    body = mail.outbox[-1].body
    match = re.search(r"(http://\S+/privacy/unsubscribe/\?token=(\S+))", body)
    assert match, body
    assert "anna@example.lv" not in match.group(1)  # the link carries no email address
    token = unquote(match.group(2))
    page = client.get("/privacy/unsubscribe/", {"token": token})
    assert page.status_code == 200
    assert consents.marketing_allowed("anna@example.lv", "marketing_email")  # GET changes nothing
    done = client.post("/privacy/unsubscribe/", {"token": token})
    assert done.status_code == 200
    assert not consents.marketing_allowed("anna@example.lv", "marketing_email")
    consent = Consent.objects.get()
    assert consent.withdrawn_via == "unsubscribe_link" and consent.withdrawn_at is not None
    assert client.get("/privacy/unsubscribe/", {"token": "forged"}).status_code == 404


def test_r31_no_marketing_without_consent(shop_ready):
    place(email="anna@example.lv")
    with pytest.raises(Refused):
        consents.queue_marketing_email(to="anna@example.lv", template="account_verify", context={})
    with pytest.raises(Refused):
        consents.unsubscribe_url("anna@example.lv", "marketing_email")


def test_r31_checkout_consent_records_the_policy_version_and_source(shop_ready):
    order = place(email="anna@example.lv", consents={"marketing_sms": True})
    consent = Consent.objects.get(order=order)
    assert consent.purpose == "marketing_sms" and consent.source == "checkout"
    assert consent.policy_version.version == "2026-01"
