"""Production safety and crypto from a library (issue 14, items 6 and 7).

- `seed_demo` with DJANGO_DEBUG off creates no superuser with the published demo password.
- A Content-Security-Policy on every answer: API, admin, customer pages, API docs.
- The API docs (Swagger UI) are served from our own static files, no other host; in
  Chromium they render with no CSP violation (browser test, `-m browser`).
- `manage.py check --deploy` is clean on settings built from the environment alone, in a
  fresh process, without setting the values it checks.
- An Idempotency-Key is scoped to its client, and the access token in the stored reply is
  sealed with AES-256-GCM (`cryptography`): altered ciphertext is refused.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connections
from django.test import Client

from orders.models import IdempotencyRecord, Order
from orders.services import idempotency
from shop.demo import DEMO_STAFF_PASSWORD, DEMO_STAFF_USERNAME
from shop.models import Product
from tests.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    ProductFactory,
    TermsVersionFactory,
)

ROOT = Path(__file__).resolve().parents[2]
VICTIM_ADDRESS = "203.0.113.7"
ATTACKER_ADDRESS = "198.51.100.9"


@pytest.fixture
def catalogue(db):
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()
    ProductFactory(sku="HD-001", price=Decimal("20.00"), stock=50)


def order_body(email: str = "ilze@example.lv") -> dict:
    return {
        "customer": {
            "first_name": "Ilze",
            "last_name": "Upeniece",
            "email": email,
            "phone": "20000000",
            "is_consumer": True,
        },
        "capacity": "adult",
        "delivery": {"method": "omniva_parcel_machine", "parcel_machine_id": "9001"},
        "lines": [{"sku": "HD-001", "quantity": 1}],
        "accepted_terms_version": "2026-01",
    }


def post_order(client: Client, body: dict, key: str | None = None):
    return client.post(
        "/api/orders/",
        body,
        content_type="application/json",
        headers={"Idempotency-Key": key} if key else {},
    )


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a production process: only what the README's production section
    sets, nothing of this test process (no DJANGO_DEBUG=true, no SECURE_* overrides)."""
    return {
        "PATH": os.environ["PATH"],
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),  # 86 random characters
        "ALLOWED_HOSTS": "shop.example.lv",
        "DATABASE_URL": "sqlite:////tmp/attack-prod-deploy-check.sqlite3",
        "EMAIL_URL": "smtp://mail.example.lv:25",  # the console backend refuses production
        **extra,
    }


# --- seed_demo ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_with_debug_off_creates_no_superuser_with_the_known_password(settings):
    """Attack: with DJANGO_DEBUG off, `seed_demo` used to create `staff` /
    `staff-demo-password`, a superuser anyone who read the README could log in as. Now it
    creates no such user, says how to create one, and still seeds the demo data."""
    settings.DEBUG = False
    out = []

    class Out:
        def write(self, text):
            out.append(text)

        def flush(self):
            pass

    call_command("seed_demo", stdout=Out())
    printed = "".join(out)

    users = get_user_model().objects.all()
    assert not users.filter(username=DEMO_STAFF_USERNAME).exists()
    assert not any(user.check_password(DEMO_STAFF_PASSWORD) for user in users)
    assert not Client().login(username=DEMO_STAFF_USERNAME, password=DEMO_STAFF_PASSWORD)
    assert "manage.py createsuperuser" in printed
    assert Product.objects.count() == 12  # the rest of the demo data is there


@pytest.mark.django_db
def test_seed_demo_in_development_still_creates_the_demo_login(settings):
    """`make run` (DJANGO_DEBUG=true): the README's demo login `staff` /
    `staff-demo-password` works in the admin."""
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)  # idempotent
    browser = Client()
    assert browser.login(username="staff", password="staff-demo-password")
    assert browser.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_seed_demo_with_debug_off_warns_about_a_demo_login_left_from_before(settings):
    """A database seeded by an older version still has the demo superuser: the command
    says to change its password."""
    settings.DEBUG = False
    get_user_model().objects.create_superuser(
        DEMO_STAFF_USERNAME, "staff@example.lv", DEMO_STAFF_PASSWORD
    )
    out = []

    class Out:
        def write(self, text):
            out.append(text)

        def flush(self):
            pass

    call_command("seed_demo", stdout=Out())
    assert f"changepassword {DEMO_STAFF_USERNAME}" in "".join(out)


# --- Content-Security-Policy ------------------------------------------------------------------


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def assert_strict_policy(response, name: str) -> None:
    assert "Content-Security-Policy" in response, name
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for sources in policy.values():
        assert not any(s.startswith(("http:", "https:", "*")) or "." in s for s in sources)


def test_csp_on_an_api_answer_an_admin_page_a_customer_page_and_the_api_docs(
    catalogue, django_user_model
):
    """Attack: no Content-Security-Policy anywhere, so an injected script would run. Now
    every kind of answer carries a strict one."""
    placed = post_order(Client(), order_body()).json()
    staff = django_user_model.objects.create_superuser("csp-admin", "a@example.lv", "pw-12345")
    admin = Client()
    admin.force_login(staff)

    answers = {
        "API": Client().get("/api/products/"),
        "API error": Client().get("/api/no-such-thing/"),
        "admin login": Client().get("/admin/login/"),
        "admin page": admin.get("/admin/orders/order/"),
        "customer page": Client().get(
            f"/orders/{placed['number']}/confirm/?token={placed['access_token']}", follow=True
        ),
        "customer error page": Client().get("/privacy/unsubscribe/?token=forged"),
        "API docs": Client().get("/api/docs/"),
        "API docs script": Client().get("/api/docs/?script="),
        "OpenAPI schema": Client().get("/api/schema/"),
    }
    assert answers["API"].status_code == 200
    assert answers["admin page"].status_code == 200
    assert answers["customer page"].status_code == 200
    assert answers["API docs"].status_code == 200
    for name, response in answers.items():
        assert_strict_policy(response, name)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        self._in_script = tag == "script" and not attrs.get("src")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_api_docs_reference_no_external_host(db):
    """Attack: Swagger UI's script came from a CDN without Subresource Integrity, so
    whoever controls the CDN runs script on our origin. Now the page, its start script
    and its assets come from our own static files."""
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    refs = _References()
    refs.feed(html)
    assert refs.urls, "the page loads its assets"
    assert refs.inline_scripts == 0  # the start script is a file too (CSP)
    for url in refs.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # same origin
    assert "cdn" not in html.lower() and "http" not in html

    static_url = "/static/"
    for url in refs.urls:
        if url.startswith(static_url):
            assert finders.find(url.removeprefix(static_url)), f"{url} is served from static"

    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert not re.search(r"https?://", script.content.decode())  # no validator badge either


# --- check --deploy on honestly built production settings -------------------------------------


def test_deploy_check_is_clean_on_production_settings_from_the_environment():
    """`manage.py check --deploy` in a fresh process whose only environment is the
    production one from the README (DJANGO_DEBUG=false, a random SECRET_KEY, the host):
    no warning at all, without the test setting HSTS, cookies or TLS itself."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_answers_carry_hsts_csp_and_secure_cookies():
    """What settings built fresh with DJANGO_DEBUG=false do to a real answer, read in that
    process: HTTPS redirect, HSTS for a year with subdomains and preload, CSP, DENY,
    nosniff and a CSRF cookie only over TLS."""
    code = """
import django, json
django.setup()
from django.test import Client
client = Client(HTTP_HOST="shop.example.lv")
plain = client.get("/admin/login/")
page = client.get("/admin/login/", secure=True)
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "status": page.status_code,
    "headers": dict(page.headers),
    "csrf_cookie_secure": bool(page.cookies["csrftoken"]["secure"]),
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**production_env(), "DJANGO_SETTINGS_MODULE": "shop.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain_status"] == 301
    assert seen["plain_location"] == "https://shop.example.lv/admin/login/"
    assert seen["status"] == 200
    headers = seen["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert directives(headers["Content-Security-Policy"])["script-src"] == ["'self'"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert seen["csrf_cookie_secure"] is True


# --- Idempotency-Key: scoped to the client, sealed with AES-GCM ---------------------------------


def test_an_idempotency_key_replayed_by_another_client_does_not_get_the_first_reply(
    catalogue, settings
):
    """Attack: Idempotency-Keys were global, so another client sending the same key and
    body got the first client's reply, the order number and its access token (the key to
    the order, its invoice and its withdrawal). Now the key is scoped to the client: the
    other client's request is a request of its own."""
    settings.SHOP_MAX_OPEN_UNPAID_ORDERS = 100  # several orders of one email on purpose
    victim = Client(REMOTE_ADDR=VICTIM_ADDRESS)
    attacker = Client(REMOTE_ADDR=ATTACKER_ADDRESS)
    first = post_order(victim, order_body(), key="order-1")
    assert first.status_code == 201
    placed = first.json()

    stolen = post_order(attacker, order_body(), key="order-1")
    assert stolen.status_code == 201
    assert stolen.get("Idempotent-Replayed") is None
    assert stolen.json()["number"] != placed["number"]
    assert stolen.json()["access_token"] != placed["access_token"]
    assert placed["access_token"] not in stolen.content.decode()

    # The same key with another body from another client is not a conflict either: it
    # tells the attacker nothing about the victim's key.
    other = post_order(attacker, order_body("other@example.lv"), key="order-2")
    assert other.status_code == 201
    assert post_order(victim, order_body(), key="order-2").status_code == 201

    # A signed-in customer's key is theirs alone, not shared with anonymous clients.
    user = get_user_model().objects.create_user("ilze", "ilze@example.lv")
    signed_in = Client(REMOTE_ADDR=VICTIM_ADDRESS)
    signed_in.force_login(user)
    own = post_order(signed_in, order_body(), key="order-1")
    assert own.status_code == 201
    assert own.json()["number"] not in (placed["number"], stolen.json()["number"])


def test_the_same_client_still_gets_its_reply_and_409_for_another_body(catalogue):
    """DESIGN.md section 10: same key and body from the same client, the same reply and no
    second order; same key, other body: 409."""
    client = Client(REMOTE_ADDR=VICTIM_ADDRESS)
    first = post_order(client, order_body(), key="retry-1")
    again = post_order(Client(REMOTE_ADDR=VICTIM_ADDRESS), order_body(), key="retry-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    conflict = post_order(client, order_body("else@example.lv"), key="retry-1")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_the_sealed_token_is_aes_gcm_and_altered_ciphertext_is_refused(catalogue):
    """Attack: the token was XORed with a hand-made HMAC keystream, with no integrity:
    flipping a bit of the stored value flipped the same bit of the token handed out.
    Now it is AES-256-GCM from `cryptography`: an altered value is refused (409
    problem+json), never opened to garbage."""
    client = Client(REMOTE_ADDR=VICTIM_ADDRESS)
    placed = post_order(client, order_body(), key="sealed-1").json()
    record = IdempotencyRecord.objects.get()
    sealed = record.response_body["access_token"]
    assert sealed.startswith("aesgcm:")
    assert placed["access_token"] not in json.dumps(record.response_body)
    raw = base64.urlsafe_b64decode(sealed.removeprefix("aesgcm:"))
    # 12-byte nonce, the ciphertext (as long as the token) and a 16-byte tag.
    assert len(raw) == 12 + len(placed["access_token"]) + 16

    flipped = bytearray(raw)
    flipped[12] ^= 0x01  # the first byte of the ciphertext
    record.response_body = {
        **record.response_body,
        "access_token": "aesgcm:" + base64.urlsafe_b64encode(bytes(flipped)).decode(),
    }
    record.save()

    replay = post_order(client, order_body(), key="sealed-1")
    assert replay.status_code == 409
    assert replay["Content-Type"].startswith("application/problem+json")
    assert replay.json()["code"] == "idempotency_record_unreadable"
    assert "access_token" not in replay.json()
    assert Order.objects.count() == 1  # no second order either

    client_id = f"anonymous:{VICTIM_ADDRESS}"
    with pytest.raises(idempotency.SealBroken):
        idempotency.unseal_body(record.response_body, "sealed-1", client=client_id)
    # Sealed for one client, it does not open for another (the key is bound to both).
    good = idempotency.seal_body({"access_token": "t0ken"}, "k", client=client_id)
    assert idempotency.unseal_body(good, "k", client=client_id) == {"access_token": "t0ken"}
    with pytest.raises(idempotency.SealBroken):
        idempotency.unseal_body(good, "k", client=f"anonymous:{ATTACKER_ADDRESS}")


def test_a_record_sealed_by_the_old_keystream_counts_as_absent(catalogue):
    """A row sealed before AES-GCM (filed under the SHA-256 of the bare key, "sealed:")
    is never opened: the key is looked up under its client now, so the old row is not
    found and the request is served as a new one."""
    import hashlib

    old = post_order(Client(REMOTE_ADDR=ATTACKER_ADDRESS), order_body("x@example.lv")).json()
    IdempotencyRecord.objects.create(
        key=hashlib.sha256(b"legacy-1").hexdigest(),
        request_hash=idempotency.request_fingerprint(order_body()),
        response_status=201,
        response_body={**old, "access_token": "sealed:AAAA"},
        order=Order.objects.get(number=old["number"]),
    )
    fresh = post_order(Client(REMOTE_ADDR=VICTIM_ADDRESS), order_body(), key="legacy-1")
    assert fresh.status_code == 201
    assert fresh.get("Idempotent-Replayed") is None
    assert fresh.json()["number"] != old["number"]


# --- In Chromium: Swagger UI and the admin render under the policy ---------------------------


@pytest.fixture
def page(tmp_path, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        # Runs before any page script, outside the page's CSP: records every violation.
        context.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation', e => window.__csp.push("
            "e.violatedDirective + ' ' + e.blockedURI));"
        )
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page
        context.close()
        connections.close_all()


def watch(page, origin: str) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"console": [], "foreign": []}
    page.on(
        "console",
        lambda m: seen["console"].append(m.text) if m.type in ("error", "warning") else None,
    )
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((origin, "data:", "blob:")) else seen["foreign"].append(r.url)
        ),
    )
    return seen


browser_test = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.django_db(transaction=True),
]


def _browser(test):
    for mark in reversed(browser_test):
        test = mark(test)
    return test


@_browser
def test_swagger_ui_renders_under_the_csp_with_no_violation(live_server, page):
    """Chromium loads /api/docs/: Swagger UI draws the API's title and operations, every
    request stays on our origin, and the console shows no Content-Security-Policy
    violation."""
    seen = watch(page, live_server.url)
    response = page.goto(live_server.url + "/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Keune.lv back office API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() > 20  # every operation is drawn
    page.locator(".opblock-summary", has_text="/api/products/").first.click()
    page.wait_for_selector(".opblock.is-open")

    assert page.evaluate("window.__csp") == []
    assert [m for m in seen["console"] if "Content Security Policy" in m] == []
    assert seen["foreign"] == []


@_browser
def test_the_admin_renders_and_works_under_the_csp(live_server, page, django_user_model):
    """Chromium: the admin login page and the order list render with their stylesheet and
    scripts (the sidebar filter script runs), with no CSP violation."""
    django_user_model.objects.create_superuser("csp-staff", "s@example.lv", "csp-pass-123")
    seen = watch(page, live_server.url)
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "csp-staff")
    page.fill("#id_password", "csp-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    page.goto(live_server.url + "/admin/orders/order/")
    page.wait_for_selector("#changelist")
    # The admin's stylesheet applied (not blocked): the header has its dark background.
    background = page.evaluate("getComputedStyle(document.querySelector('#header')).background")
    assert "rgba(0, 0, 0, 0)" not in background
    # Its scripts ran: the navigation sidebar toggle is wired by nav_sidebar.js.
    assert page.evaluate("typeof django !== 'undefined'")

    assert page.evaluate("window.__csp") == []
    assert [m for m in seen["console"] if "Content Security Policy" in m] == []
    assert seen["foreign"] == []
