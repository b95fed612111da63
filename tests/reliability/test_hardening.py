"""Hardening (issue 9, part 5): production settings, cookies, HSTS, CSRF on the web pages,
order tokens hashed and compared in constant time, uploads checked for size and type, a
request body size limit.

`manage.py check --deploy` on the production settings is tests/shop/test_demo_and_settings.py
::test_production_settings_pass_check_deploy (and tests/reliability/test_attack_prod.py).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.db.models.functions import Cast
from django.test import Client
from django.urls import get_resolver, reverse

from orders.models import Order, OrderStatus
from shop import tokens
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    ProductFactory,
    TermsVersionFactory,
)
from tests.reliability.test_access_control import view_class, walk

ROOT = Path(__file__).resolve().parents[2]
THREE_MB = 3 * 1024 * 1024


@pytest.fixture
def catalogue(db):
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
    ProductFactory(sku="HD-001", price=Decimal("20.00"), stock=50)


def order_body() -> dict:
    return {
        "customer": {
            "first_name": "Anna",
            "last_name": "Bērziņa",
            "email": "anna@example.lv",
            "phone": "20000000",
            "is_consumer": True,
        },
        "capacity": "adult",
        "delivery": {"method": "omniva_parcel_machine", "parcel_machine_id": "9001"},
        "lines": [{"sku": "HD-001", "quantity": 1}],
        "accepted_terms_version": "2026-01",
    }


def place(client: Client | None = None, key: str | None = None) -> dict:
    client = client or Client()
    response = client.post(
        "/api/orders/",
        order_body(),
        content_type="application/json",
        headers={"Idempotency-Key": key} if key else {},
    )
    assert response.status_code == 201, response.content
    return response.json()


# --- Production settings -------------------------------------------------------------------


def test_production_settings_secure_cookies_hsts_and_tls():
    """With DJANGO_DEBUG off: cookies only over TLS, HSTS for a year with subdomains and
    preload, HTTPS redirect, no sniffing, no framing."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "production-secret-from-the-environment-0123456789",
        "ALLOWED_HOSTS": "shop.example.lv",
        "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
        "BEHIND_TLS_PROXY": "true",
        "EMAIL_URL": "smtp+tls://shop:password@mail.example.lv:587",
    }
    names = [
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "X_FRAME_OPTIONS",
        "SECURE_PROXY_SSL_HEADER",
        "DATA_UPLOAD_MAX_MEMORY_SIZE",
    ]
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "shop.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert 0 < values["DATA_UPLOAD_MAX_MEMORY_SIZE"] <= THREE_MB


def test_hsts_header_and_secure_cookies_on_a_page():
    """What the production settings do to a response: HSTS, secure CSRF cookie, DENY.

    The settings are built fresh in another process from DJANGO_DEBUG=false and the
    README's production environment; the test sets none of the values it checks (an
    earlier version set SECURE_HSTS_* itself and so could not see them missing)."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "shop.example.lv",
        "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "EMAIL_URL": "smtp://mail.example.lv:25",  # the console backend refuses production
    }
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client(HTTP_HOST='shop.example.lv').get('/admin/login/', secure=True); "
        "print(json.dumps({'status': r.status_code, 'headers': dict(r.headers), "
        "'csrf_secure': bool(r.cookies['csrftoken']['secure'])}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200
    headers = seen["headers"]
    assert headers["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert seen["csrf_secure"] is True


# --- CSRF ------------------------------------------------------------------------------------


def web_post_routes() -> list[str]:
    """Every server-rendered route outside the API and the admin that may take a POST."""
    found = []
    for route, callback in walk(get_resolver().url_patterns):
        if route.startswith(("api/", "^api/", "admin/", "i18n/")) or route == "":
            continue
        cls = view_class(callback)
        if cls is not None and not hasattr(cls, "post"):
            continue
        if getattr(callback, "csrf_exempt", False):
            continue  # e.g. one-click unsubscribe (RFC 8058): no session, a signed token
        found.append(route)
    return found


def test_order_confirm_page_post_without_csrf_token_is_403(catalogue):
    """R12 page: a forged cross-site POST (no CSRF token) is refused and confirms nothing;
    the same POST with the page's CSRF token confirms the order."""
    placed = place()
    path = f"/orders/{placed['number']}/confirm/?token={placed['access_token']}"
    browser = Client(enforce_csrf_checks=True)

    forged = browser.post(path, {"token": placed["access_token"]})
    assert forged.status_code == 403
    assert Order.objects.get(number=placed["number"]).status == OrderStatus.PLACED

    page = browser.get(path, follow=True)  # the link opens a page session
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert csrf, "the confirm form carries a CSRF token"
    genuine = browser.post(path.split("?")[0], {"csrfmiddlewaretoken": csrf[1]})
    assert genuine.status_code == 302
    assert Order.objects.get(number=placed["number"]).status == OrderStatus.CONFIRMED


def test_every_web_form_refuses_a_post_without_csrf_token(catalogue):
    """Every page that takes a POST (confirm, withdraw, proof upload...): 403 without the
    CSRF token, even with the order's valid token in the link."""
    placed = place()
    browser = Client(enforce_csrf_checks=True)
    routes = web_post_routes()
    assert any("confirm" in r for r in routes)
    for route in routes:
        path = "/" + re.sub(
            r"<(?:\w+:)?(\w+)>",
            lambda m: placed["number"] if m.group(1) == "number" else "1",
            route,
        )
        response = browser.post(f"{path}?token={placed['access_token']}", {})
        assert response.status_code == 403, (route, response.status_code)


def test_api_session_callers_need_the_csrf_token_too(catalogue):
    """DRF's SessionAuthentication: a logged-in customer's unsafe API call without the
    CSRF token is refused (a token-only caller has no cookie to abuse)."""
    user = User.objects.create_user("anna")
    shop_page = Client()
    shop_page.force_login(user)
    placed = place(shop_page)
    owner = Client(enforce_csrf_checks=True)
    owner.force_login(user)
    assert owner.get(f"/api/orders/{placed['number']}/").status_code == 200  # safe: allowed
    response = owner.post(f"/api/orders/{placed['number']}/cancel/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    assert Order.objects.get(number=placed["number"]).status == OrderStatus.PLACED


# --- Tokens -----------------------------------------------------------------------------------


def text_columns():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField | models.JSONField):
                yield model, field


def test_the_database_never_holds_a_raw_access_token(catalogue, django_capture_on_commit_callbacks):
    """The order's access token is shown once and stored only as its SHA-256; not in the
    order, its history, the idempotency record (sealed there), the outbox or anywhere."""
    with django_capture_on_commit_callbacks(execute=True):
        plain = place()
        keyed = place(key="hardening-key-1")
    replay = Client().post(
        "/api/orders/",
        order_body(),
        content_type="application/json",
        headers={"Idempotency-Key": "hardening-key-1"},
    )
    assert replay.status_code == 201
    assert replay.json()["access_token"] == keyed["access_token"]  # the replay still works

    for placed in (plain, keyed):
        token = placed["access_token"]
        order = Order.objects.get(number=placed["number"])
        assert order.access_token_hash == tokens.hash_secret(token)
        holders = [
            f"{model._meta.label}.{field.name}"
            for model, field in text_columns()
            if model._default_manager.annotate(_text=Cast(field.name, models.TextField()))
            .filter(_text__contains=token)
            .exists()
        ]
        assert holders == [], f"the raw access token is stored in {holders}"


def test_tokens_are_compared_in_constant_time(catalogue, monkeypatch):
    """shop.tokens.secret_matches uses hmac.compare_digest on the hashes."""
    placed = place()
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    wrong = Client().get(f"/api/orders/{placed['number']}/", headers={"X-Order-Token": "x" * 32})
    assert wrong.status_code == 404
    right = Client().get(
        f"/api/orders/{placed['number']}/", headers={"X-Order-Token": placed["access_token"]}
    )
    assert right.status_code == 200
    assert calls, "the token comparison goes through hmac.compare_digest"
    assert all(len(a) == len(b) == 64 for a, b in calls)  # hashes, never the raw token


# --- Uploads and request size ------------------------------------------------------------------


@pytest.fixture
def bank_clerk(db):
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("bank-clerk", is_staff=True)
    for codename in ("add_bankstatement", "view_bankstatement"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_bank_statement_upload_checks_type_and_size(bank_clerk, settings):
    """The upload refuses a file that is not a camt.053/054 document, and one above
    BANK_STATEMENT_MAX_BYTES, before storing anything."""
    from orders.models import BankStatement

    url = reverse("admin:orders_bankstatement_upload")
    not_xml = SimpleUploadedFile("statement.xml", b"%PDF-1.4 not a statement", "application/xml")
    response = bank_clerk.post(url, {"file": not_xml})
    assert response.status_code == 200
    assert "file" in response.context["form"].errors

    settings.BANK_STATEMENT_MAX_BYTES = 1024
    big = SimpleUploadedFile(
        "big.xml",
        b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        + b" " * 2048
        + b"</Document>",
        "application/xml",
    )
    response = bank_clerk.post(url, {"file": big})
    assert response.status_code == 200
    assert response.context["form"].errors["file"][0].startswith("Fails ir lielāks")  # lv admin
    assert not BankStatement.objects.exists()


@pytest.mark.parametrize("path", ["/api/orders/", "/api/webhooks/stripe/", "/api/webhooks/omniva/"])
def test_a_3_mb_json_body_is_refused_with_413_problem_json(catalogue, path):
    """DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) holds for JSON too: 413 problem+json, before
    anything parses the body; never a 5xx."""
    huge = json.dumps({**order_body(), "padding": "x" * THREE_MB})
    response = Client().post(path, huge, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "request_too_large"
    assert not Order.objects.exists()


def test_a_body_too_large_read_without_content_length_is_413_not_500(catalogue, settings):
    """When Django itself finds the body too large (RequestDataTooBig), the API answers
    413 problem+json, not 500."""
    from django.core.exceptions import RequestDataTooBig
    from rest_framework.test import APIRequestFactory

    from orders.api.views import OrderCreateView

    request = APIRequestFactory().post("/api/orders/", {}, format="json")

    view = OrderCreateView.as_view()
    original = OrderCreateView.post

    def post(self, request):
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")

    OrderCreateView.post = post
    try:
        response = view(request)
    finally:
        OrderCreateView.post = original
    response.render()
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")
    assert json.loads(response.content)["code"] == "request_too_large"


def test_customer_uploads_refuse_wrong_types_and_sizes(db):
    """Claim photos (JPEG, PNG or PDF, 5 MB each) and the withdrawal's proof of dispatch
    (image or PDF, 10 MB): a file of another type, or one too large, is a 400
    problem+json naming the field; nothing is stored. The type comes from the content,
    never from the file name or the Content-Type the client sends."""
    from tests.reliability.test_access_control import VICTIM, VICTIM_IBAN, place_through_api
    from tests.reliability.test_access_control import deliver as deliver_order
    from tests.reliability.test_access_control import today_in_riga as today

    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
    ProductFactory(sku="AC-001", price=Decimal("20.00"), stock=5)
    ProductFactory(sku="AC-002", price=Decimal("15.00"), stock=5)
    customer = place_through_api(VICTIM, "upload-owner")
    deliver_order(customer.order)
    client = Client(headers={"X-Order-Token": customer.token})

    script = SimpleUploadedFile("photo.jpg", b"#!/bin/sh\nrm -rf /\n", "image/jpeg")
    claim = client.post(
        f"/api/orders/{customer.number}/claims/",
        {
            "lines": json.dumps([{"sku": "AC-002", "quantity": 1}]),
            "description": "Broken pump.",
            "discovered_on": today().isoformat(),
            "remedy": "replacement",
            "photos": [script],
        },
    )
    assert claim.status_code == 400, claim.content
    assert claim["Content-Type"].startswith("application/problem+json")
    assert [e["code"] for e in claim.json()["errors"]] == ["photo_type_not_allowed"]

    big = SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * (6 * 1024 * 1024))
    claim = client.post(
        f"/api/orders/{customer.number}/claims/",
        {
            "lines": json.dumps([{"sku": "AC-002", "quantity": 1}]),
            "description": "Broken pump.",
            "discovered_on": today().isoformat(),
            "remedy": "replacement",
            "photos": [big],
        },
    )
    assert claim.status_code == 400, claim.content
    assert [e["code"] for e in claim.json()["errors"]] == ["photo_too_large"]
    assert not customer.order.claims.exists()

    withdrawal = client.post(
        f"/api/orders/{customer.number}/withdrawals/",
        {"lines": [], "iban": VICTIM_IBAN, "account_holder": "Ilze Upeniece", "reason": ""},
        content_type="application/json",
    )
    assert withdrawal.status_code == 201, withdrawal.content
    proof = client.post(
        f"/api/withdrawals/{withdrawal.json()['id']}/proof-of-dispatch/",
        {"file": SimpleUploadedFile("receipt.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")},
    )
    assert proof.status_code == 400, proof.content
    assert proof["Content-Type"].startswith("application/problem+json")
    proof = client.post(
        f"/api/withdrawals/{withdrawal.json()['id']}/proof-of-dispatch/",
        {"file": SimpleUploadedFile("r.pdf", b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024))},
    )
    assert proof.status_code in (400, 413), proof.content
    assert proof["Content-Type"].startswith("application/problem+json")
