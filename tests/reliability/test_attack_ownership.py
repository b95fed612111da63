"""Attacks on email ownership (issue 14, item 1; R30, R31).

An account acts for nothing tied to an email (orders, the export, consents, data-subject
requests) until the address is proven by the link sent to it, opened by that account.
Registering an address that already has an account answers exactly like a new one and
emails the owner instead. Each test registers under a victim's email as an attacker who
never reads the victim's mailbox, and checks that nothing of the victim's reaches them or
changes.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from legal.models import Consent, DataSubjectRequest
from legal.services import consents
from orders.models import Order
from shop.models import OutboxMessage
from tests.legal.helpers import place
from tests.legal.helpers import shop_ready as _shop_ready

pytestmark = pytest.mark.django_db

VICTIM = "anna@example.lv"
ATTACKER_PASSWORD = "an-attackers-own-passphrase-91"
OWNER_PASSWORD = "the-owners-real-passphrase-27"


@pytest.fixture
def shop(db):
    _shop_ready()


@pytest.fixture
def victim(shop):
    """A customer with a courier order and a marketing consent given under the proven
    email (the one-time link's token)."""
    from rest_framework.test import APIClient

    order = place(email=VICTIM)
    given = APIClient().post(
        "/api/me/consents/", {"purpose": "marketing_email"}, format="json", **_guest()
    )
    assert given.status_code == 201
    return order


def _link(body: str, path: str) -> str:
    match = re.search(rf"http://[^\s]*{re.escape(path)}\?token=([^\s]+)", body)
    assert match, body
    return unquote(match.group(1))


def _register(api_client, capture, email=VICTIM, password=ATTACKER_PASSWORD):
    with capture(execute=True):
        return api_client.post(
            "/api/auth/register/", {"email": email, "password": password}, format="json"
        )


def _log_in(api_client, email=VICTIM, password=ATTACKER_PASSWORD):
    return api_client.post(
        "/api/auth/login/", {"email": email, "password": password}, format="json"
    )


def _attacker(api_client, capture):
    """Register under the victim's email and log in; the attacker never sees the mailbox."""
    assert _register(api_client, capture).status_code in (201, 202)  # 201: before issue 14
    response = _log_in(api_client)
    assert response.status_code == 200
    assert response.json()["email_verified"] is False
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return api_client


def test_r30_attack_register_as_victim_then_export_shows_nothing_of_the_victim(
    api_client, victim, django_capture_on_commit_callbacks
):
    """Attack: register with the victim's email, then GET /api/me/data/ and /api/me/."""
    attacker = _attacker(api_client, django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.filter(topic="email.send", payload__to__0=VICTIM).exists()

    response = attacker.get("/api/me/data/")
    assert response.status_code == 200
    data = response.json()
    assert data["subject"]["email"] is None
    assert data["orders"] == []
    assert data["communications"] == []  # no email sent to the address, no link in one
    assert data["consents"] == [] and data["requests"] == []
    text = json.dumps(data)
    assert victim.number not in text and "token=" not in text
    assert "Brīvības" not in text  # the victim's delivery address
    me = attacker.get("/api/me/").json()
    assert me["orders"] == [] and me["email"] is None
    assert attacker.get("/api/me/recipients/").json()["disclosures"] == []
    # Only the account's own export is listed, under the account, not the victim's name.
    assert [r["type"] for r in attacker.get("/api/me/requests/").json()] == ["access"]
    assert attacker.get(f"/api/orders/{victim.number}/").status_code == 404
    # The export was logged under the account, not in the victim's name.
    assert not DataSubjectRequest.objects.filter(email=VICTIM).exists()


def test_r30_r31_attack_unverified_account_cannot_read_or_touch_victims_consents(
    api_client, victim, django_capture_on_commit_callbacks
):
    """Attack: read, give, withdraw and erase the victim's consents through
    /api/me/consents/ from an account registered under the victim's email."""
    attacker = _attacker(api_client, django_capture_on_commit_callbacks)

    listed = attacker.get("/api/me/consents/")
    assert listed.status_code == 200 and listed.json()["consents"] == []
    given = attacker.post("/api/me/consents/", {"purpose": "profiling"}, format="json")
    assert given.status_code == 422 and given.json()["code"] == "email_not_verified"
    assert not Consent.objects.filter(purpose="profiling").exists()
    withdrawn = attacker.delete("/api/me/consents/?purpose=marketing_email")
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] == []
    detail = attacker.delete("/api/me/consents/marketing_email/")
    assert detail.status_code == 200 and detail.json()["withdrawn"] == []
    assert consents.marketing_allowed(VICTIM, "marketing_email")  # untouched


@pytest.mark.parametrize(
    "body",
    [
        {"type": "erasure"},
        {"type": "objection"},
        {"type": "restriction"},
        {"type": "rectification", "changes": {"phone": "+37129999999"}},
        {
            "type": "rectification",
            "changes": {
                "address": {
                    "street": "Attacker iela 1",
                    "city": "Rīga",
                    "postal_code": "LV-1001",
                    "country": "LV",
                }
            },
        },
    ],
    ids=lambda body: body["type"] + ("-address" if "address" in body.get("changes", {}) else ""),
)
def test_r30_attack_unverified_account_files_no_request_in_victims_name(
    api_client, victim, django_capture_on_commit_callbacks, body
):
    """Attack: erasure, objection, restriction or rectification in the victim's name from
    an account registered under the victim's email."""
    attacker = _attacker(api_client, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = attacker.post("/api/me/requests/", body, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "email_not_verified"
    assert not DataSubjectRequest.objects.filter(email=VICTIM).exists()
    assert mail.outbox == []  # the victim is not sent an answer to a request they never made
    order = Order.objects.get(pk=victim.pk)
    assert (order.phone, order.street, order.email) == (victim.phone, victim.street, VICTIM)
    assert consents.marketing_allowed(VICTIM, "marketing_email")
    assert order.personal_data.filter(erased_at__isnull=False).count() == 0
    assert order.personal_data.filter(restricted_at__isnull=False).count() == 0


def test_r30_attack_registering_an_existing_address_answers_like_a_new_one(
    api_client, shop, django_capture_on_commit_callbacks
):
    """Attack: enumerate accounts through POST /api/auth/register/ (was 409 account_exists);
    the owner is emailed instead, and the attacker's password opens nothing."""
    place(email=VICTIM)
    capture = django_capture_on_commit_callbacks
    assert _register(api_client, capture, password=OWNER_PASSWORD).status_code == 202
    verify = _link(mail.outbox[-1].body, "/api/auth/verify-email/")
    owner = _log_in(api_client, password=OWNER_PASSWORD).json()["token"]
    proved = api_client.get(
        "/api/auth/verify-email/", {"token": verify}, HTTP_AUTHORIZATION=f"Token {owner}"
    )
    assert proved.status_code == 200 and proved.json()["orders_linked"] == 1

    mail.outbox.clear()
    existing = _register(api_client, capture)
    fresh = _register(api_client, capture, email="nobody@example.lv")
    assert existing.status_code == fresh.status_code == 202
    assert set(existing.json()) == set(fresh.json()) == {"email", "email_verified", "detail"}
    assert existing.json() | {"email": "x"} == fresh.json() | {"email": "x"}
    assert "token" not in existing.json()
    to_owner = [m for m in mail.outbox if m.to == [VICTIM]]
    assert len(to_owner) == 1
    assert "tried to create an account" in to_owner[0].body
    assert "/api/auth/verify-email/" not in to_owner[0].body
    assert _log_in(api_client).status_code == 400  # the attacker's password is not set
    assert _log_in(api_client, password=OWNER_PASSWORD).json()["email_verified"] is True


def test_r30_attack_only_the_emailed_proof_links_orders(
    api_client, victim, django_capture_on_commit_callbacks
):
    """Attack: link the victim's orders to an account registered under their email
    without the emailed proof: forged links, and the victim clicking the link the
    attacker's registration sent them (account pre-hijacking)."""
    attacker = _attacker(api_client, django_capture_on_commit_callbacks)
    for forged in ("forged", "1", "1:abc:def"):
        response = attacker.get("/api/auth/verify-email/", {"token": forged})
        assert response.status_code == 422, forged
    # The victim, not logged in to the attacker's account, clicks the unsolicited link.
    link = _link([m for m in mail.outbox if m.to == [VICTIM]][-1].body, "/api/auth/verify-email/")
    from rest_framework.test import APIClient

    clicked = APIClient().get("/api/auth/verify-email/", {"token": link})
    assert clicked.status_code == 422 and clicked.json()["code"] == "login_required"
    assert Order.objects.get(pk=victim.pk).user_id is None
    assert attacker.get("/api/me/").json()["orders"] == []
    assert attacker.get(f"/api/orders/{victim.number}/").status_code == 404


def test_r30_attack_squatting_an_address_before_its_owner_registers_gains_nothing(
    api_client, victim, django_capture_on_commit_callbacks
):
    """Attack: register the victim's address first and wait for the victim to register
    and verify; the victim's registration takes the pending account over."""
    capture = django_capture_on_commit_callbacks
    squatter = _attacker(api_client, capture)
    squatter_link = _link(mail.outbox[-1].body, "/api/auth/verify-email/")
    from rest_framework.test import APIClient

    owner = APIClient()
    assert _register(owner, capture, password=OWNER_PASSWORD).status_code == 202
    assert squatter.get("/api/me/").status_code == 401  # the squatter's token is revoked
    assert _log_in(APIClient()).status_code == 400  # so is the squatter's password
    token = _log_in(owner, password=OWNER_PASSWORD).json()["token"]
    owner.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    stale = owner.get("/api/auth/verify-email/", {"token": squatter_link})
    assert stale.status_code == 422  # links sent for the old password are dead
    link = _link(mail.outbox[-1].body, "/api/auth/verify-email/")
    assert owner.get("/api/auth/verify-email/", {"token": link}).json()["orders_linked"] == 1
    assert owner.get("/api/me/").json()["orders"] == [victim.number]


def test_r30_attack_email_link_answer_does_the_same_work_for_known_and_unknown_addresses(
    api_client, victim, django_capture_on_commit_callbacks
):
    """Attack: a response-time oracle on known emails through POST /api/me/email-link/:
    the answer runs the same queries whether or not the shop holds data; the decision and
    the email come after the answer."""
    mail.outbox.clear()
    work = {}
    for email in (VICTIM, "nobody@example.lv"):
        with (
            django_capture_on_commit_callbacks(execute=False) as callbacks,
            CaptureQueriesContext(connection) as queries,
        ):
            response = api_client.post("/api/me/email-link/", {"email": email}, format="json")
        assert response.status_code == 202
        work[email] = [q["sql"].split(" ")[0] for q in queries.captured_queries]
        assert not any("orders_order" in q["sql"] for q in queries.captured_queries)
        with django_capture_on_commit_callbacks(execute=True):
            for callback in callbacks:
                callback()
    assert work[VICTIM] == work["nobody@example.lv"]
    assert [m.to for m in mail.outbox] == [[VICTIM]]  # sent after the answer, only if known
    assert not OutboxMessage.objects.filter(topic="legal.email_link", payload__email=VICTIM)


def test_r31_attack_marketing_consent_for_someone_elses_address_needs_their_confirmation(
    client, api_client, shop, django_capture_on_commit_callbacks
):
    """Attack: sign a stranger up for marketing by typing their address at checkout (R31,
    double opt-in): nothing counts until the owner confirms from their mailbox, and
    withdrawing is as easy as giving."""
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        place(email=VICTIM, consents={"marketing_email": True, "profiling": True})
    assert not consents.marketing_allowed(VICTIM, "marketing_email")
    with pytest.raises(consents.Refused):
        consents.queue_marketing_email(to=VICTIM, template="account_verify", context={})
    asks = [m for m in mail.outbox if "/privacy/consents/confirm/" in m.body]
    assert [m.to for m in asks] == [[VICTIM]]
    token = _link(asks[0].body, "/privacy/consents/confirm/")
    assert client.get("/privacy/consents/confirm/", {"token": "forged"}).status_code == 404
    assert client.post("/privacy/consents/confirm/", {"token": "o1:x:y"}).status_code == 404
    page = client.get("/privacy/consents/confirm/", {"token": token})
    assert page.status_code == 200
    assert not consents.marketing_allowed(VICTIM, "marketing_email")  # a GET confirms nothing
    listed = api_client.get("/api/me/consents/", **_guest()).json()["consents"]
    assert {(c["purpose"], c["active"], c["confirmed"]) for c in listed} == {
        ("marketing_email", False, False),
        ("profiling", False, False),
    }
    # The owner withdraws one before confirming, then confirms: only the other counts.
    api_client.delete("/api/me/consents/profiling/", **_guest())
    assert client.post("/privacy/consents/confirm/", {"token": token}).status_code == 200
    assert consents.marketing_allowed(VICTIM, "marketing_email")
    assert not consents.marketing_allowed(VICTIM, "profiling")
    assert client.post("/privacy/consents/confirm/", {"token": token}).status_code == 404  # used
    # Withdrawing is one request, as giving was.
    api_client.delete("/api/me/consents/marketing_email/", **_guest())
    assert not consents.marketing_allowed(VICTIM, "marketing_email")


def _guest(email=VICTIM):
    from legal.access import subject_token

    return {"HTTP_AUTHORIZATION": f"Bearer {subject_token(email)}"}


def test_r30_attack_login_csrf_cannot_plant_the_attackers_session_in_a_victims_browser(
    api_client, victim, django_capture_on_commit_callbacks
):
    """Attack: another site makes the victim's browser log in to the attacker's account
    (registered under the victim's email), hoping the victim then opens the verification
    link there; a login without Django's CSRF token gets a token but no session."""
    _attacker(api_client, django_capture_on_commit_callbacks)
    link = _link([m for m in mail.outbox if m.to == [VICTIM]][-1].body, "/api/auth/verify-email/")
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    planted = browser.post(
        "/api/auth/login/",
        {"email": VICTIM, "password": ATTACKER_PASSWORD},
        content_type="application/json",
    )
    assert planted.status_code == 200  # the API client's token, as before
    assert browser.get("/api/me/").status_code == 401  # no session in the browser
    clicked = browser.get("/api/auth/verify-email/", {"token": link})
    assert clicked.status_code == 422 and clicked.json()["code"] == "login_required"
    assert Order.objects.get(pk=victim.pk).user_id is None


def test_r30_attack_registering_a_staff_members_address_changes_nothing(
    api_client, shop, django_capture_on_commit_callbacks
):
    """Attack: register with the email a staff member logs in with, hoping to replace the
    password of an account that never proved a customer address."""
    from django.contrib.auth.models import User

    staff = User.objects.create_user(
        username="ops@example.lv", email="ops@example.lv", password=OWNER_PASSWORD, is_staff=True
    )
    response = _register(api_client, django_capture_on_commit_callbacks, email="ops@example.lv")
    assert response.status_code == 202
    staff.refresh_from_db()
    assert staff.check_password(OWNER_PASSWORD) and not staff.check_password(ATTACKER_PASSWORD)
    assert _log_in(api_client, email="ops@example.lv").status_code == 400
    assert "tried to create an account" in mail.outbox[-1].body
