"""Customer accounts and one-time email links (R30: identity is proved by the logged-in
account or a one-time link sent to the email on file)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from legal.models import UsedLink
from tests.legal.helpers import place

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-and-unusual-passphrase-7"


def _link(message_body: str, path: str) -> str:
    match = re.search(rf"http://[^\s]*{re.escape(path)}\?token=([^\s]+)", message_body)
    assert match, message_body
    return unquote(match.group(1))


def register(api_client, capture, email="anna@example.lv"):
    with capture(execute=True):
        response = api_client.post(
            "/api/auth/register/",
            {"email": email, "password": PASSWORD, "first_name": "Anna"},
            format="json",
        )
    return response


def log_in(api_client, email="anna@example.lv", password=PASSWORD) -> str:
    response = api_client.post(
        "/api/auth/login/", {"email": email, "password": password}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()["token"]


def test_r30_register_verify_log_in_and_out(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    order = place(email="anna@example.lv")
    response = register(api_client, django_capture_on_commit_callbacks, "Anna@Example.lv")
    assert response.status_code == 202, response.json()
    assert "token" not in response.json()  # nothing before the proof
    assert response.json()["email_verified"] is False
    # Until the email is proved, the account sees nothing placed with it.
    token = log_in(api_client)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api_client.get("/api/me/").json()
    assert me["orders"] == [] and me["email"] is None and me["account"] is True
    verify = _link(mail.outbox[-1].body, "/api/auth/verify-email/")
    response = api_client.get("/api/auth/verify-email/", {"token": verify})
    assert response.status_code == 200
    assert response.json()["orders_linked"] == 1
    me = api_client.get("/api/me/").json()
    assert me["orders"] == [order.number] and me["email"] == "anna@example.lv"
    # The account holder opens their order without the order token (section 10).
    assert api_client.get(f"/api/orders/{order.number}/").status_code == 200
    # Log in (token and session), log out.
    api_client.credentials()
    response = api_client.post(
        "/api/auth/login/", {"email": "anna@example.lv", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["email_verified"] is True
    assert api_client.get("/api/me/").status_code == 200  # the session
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api_client.post("/api/auth/logout/").status_code == 204
    assert api_client.get("/api/me/").status_code == 401


def test_r30_the_verification_link_needs_the_account_logged_in(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    place(email="anna@example.lv")
    register(api_client, django_capture_on_commit_callbacks)
    verify = _link(mail.outbox[-1].body, "/api/auth/verify-email/")
    response = api_client.get("/api/auth/verify-email/", {"token": verify})
    assert response.status_code == 422 and response.json()["code"] == "login_required"
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {log_in(api_client)}")
    assert api_client.get("/api/me/").json()["orders"] == []  # nothing linked by the try
    assert api_client.get("/api/auth/verify-email/", {"token": verify}).status_code == 200


def test_r30_registration_refuses_weak_passwords_and_hides_duplicates(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    response = api_client.post(
        "/api/auth/register/", {"email": "x@example.lv", "password": "12345"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "password"
    first = register(api_client, django_capture_on_commit_callbacks)
    again = register(api_client, django_capture_on_commit_callbacks)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()


def test_r30_wrong_password_is_400(api_client, shop_ready, django_capture_on_commit_callbacks):
    register(api_client, django_capture_on_commit_callbacks)
    response = api_client.post(
        "/api/auth/login/", {"email": "anna@example.lv", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_credentials"


def test_r30_email_link_always_202_and_only_emails_known_addresses(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    place(email="anna@example.lv")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        unknown = api_client.post(
            "/api/me/email-link/", {"email": "nobody@example.lv"}, format="json"
        )
        known = api_client.post("/api/me/email-link/", {"email": "Anna@example.lv"}, format="json")
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()  # no account enumeration
    assert [m.to for m in mail.outbox] == [["anna@example.lv"]]


def test_r30_the_email_link_works_once_and_gives_a_30_minute_token(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    order = place(email="anna@example.lv")
    place(email="berta@example.lv", first_name="Berta")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post("/api/me/email-link/", {"email": "anna@example.lv"}, format="json")
    link = _link(mail.outbox[-1].body, "/api/me/email-link/confirm/")
    response = api_client.get("/api/me/email-link/confirm/", {"token": link})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    again = api_client.get("/api/me/email-link/confirm/", {"token": link})
    assert again.status_code == 422 and again.json()["code"] == "link_used"
    assert UsedLink.objects.count() == 1
    # Bearer or X-Subject-Token.
    me = api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert me.status_code == 200 and me.json()["orders"] == [order.number]
    me = api_client.get("/api/me/", HTTP_X_SUBJECT_TOKEN=body["token"])
    assert me.json()["email"] == "anna@example.lv"
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        expired = api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert expired.status_code == 401


def test_r30_without_proof_me_endpoints_answer_401(api_client, shop_ready):
    for path in (
        "/api/me/",
        "/api/me/data/",
        "/api/me/consents/",
        "/api/me/requests/",
        "/api/me/recipients/",
    ):
        assert api_client.get(path).status_code == 401, path
    assert api_client.get("/api/me/", HTTP_AUTHORIZATION="Bearer forged").status_code == 401
    bad = api_client.get("/api/me/email-link/confirm/", {"token": "forged"})
    assert bad.status_code == 422
