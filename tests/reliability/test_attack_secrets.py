"""No bearer secrets where others can read them (issue 14, item 2; R18, R26, R30).

Each attack is one an attacker tried against the old code: read the live links out of
the data export, the admin and the outbox rows; use an emailed order link as the API's
`X-Order-Token`; keep using a link after it was revoked or after its purpose ended;
replay a one-time login link; read tokens out of access logs and `Location` headers;
tell known order numbers from unknown ones by the work a lookup does.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from legal.access import subject_token
from orders import links
from orders.models import Order
from returns.withdrawals.services import RequestedLine, receive_withdrawal
from shop import tokens
from shop.models import OutboxMessage
from tests.legal.helpers import shop_ready
from tests.returns.withdrawal_support import HOLDER, IBAN, delivered_order

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "anna@example.lv"
LINK = re.compile(r"https?://[^\s\"'<>]+")
# Anything that could be a bearer secret: long runs of token characters.
TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-:.%]{20,}")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("token", [""])[0]


@pytest.fixture
def emails_sent(django_capture_on_commit_callbacks):
    """A delivered order with a withdrawal, a one-time login link and an account
    registration: every kind of email that carries a link, sent through the outbox."""
    shop_ready()
    with django_capture_on_commit_callbacks(execute=True):
        order, access_token = delivered_order()
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_one(order, "KEU-001")
    api = Client()
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            api.post(
                "/api/me/email-link/", {"email": EMAIL}, content_type="application/json"
            ).status_code
            == 202
        )
    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            "/api/auth/register/",
            {"email": EMAIL, "password": "a-long-and-unusual-passphrase-7", "first_name": "A"},
            content_type="application/json",
        )
    sent = [m for m in mail.outbox if EMAIL in m.to]
    templates = {m.extra_headers.get("X-Shop-Template") for m in sent}
    assert {"order_placed", "withdrawal_received", "email_link"} <= templates, templates
    return {"order": Order.objects.get(pk=order.pk), "access_token": access_token, "sent": sent}


def live_links(sent) -> list[str]:
    return [url for m in sent for url in LINK.findall(m.body) if "token=" in url]


def link_endpoints(order: Order) -> list[str]:
    """Every page or endpoint that takes a link's `?token=`."""
    withdrawal = order.withdrawals.first()
    return [
        reverse("orders-web:detail", args=[order.number]),
        reverse("orders-web:confirm", args=[order.number]),
        reverse("orders-web:invoice", args=[order.number]),
        reverse("withdrawals-web:start", args=[order.number]),
        reverse("withdrawals-web:receipt", args=[order.number, withdrawal.pk]),
        "/api/me/email-link/confirm/",
        "/api/auth/verify-email/",
        "/privacy/unsubscribe/",
    ]


def assert_nothing_opens(order: Order, candidates: set[str]) -> None:
    """Each candidate string, used as X-Order-Token and as ?token= anywhere: refused."""
    assert candidates, "the attack needs strings to try"
    for candidate in candidates:
        cache.clear()  # about who gets in, not about the token_guess rate
        api = Client().get(f"/api/orders/{order.number}/", HTTP_X_ORDER_TOKEN=candidate)
        assert api.status_code == 404, candidate
        for endpoint in link_endpoints(order):
            response = Client().get(endpoint, {"token": candidate})
            assert response.status_code >= 400, (endpoint, candidate, response.status_code)


def withdraw_one(order, sku: str):
    """One unit of `sku` withdrawn through the API channel (its acknowledgement email
    carries the withdrawal links the attacks look for)."""
    return receive_withdrawal(
        order_id=order.pk,
        lines=[RequestedLine(sku, 1)],
        iban=IBAN,
        account_holder=HOLDER,
        channel="api",
    )


def test_attack_export_holds_no_usable_link_or_token(emails_sent):
    """Attack: R30 — the data export shows what each email said, but every link with a
    token is struck out, and no token-looking string in it opens anything."""
    response = Client().get("/api/me/data/", HTTP_X_SUBJECT_TOKEN=subject_token(EMAIL))
    assert response.status_code == 200
    export = response.content.decode()
    assert emails_sent["order"].number in export  # what was said is kept...
    assert tokens.LINK_REMOVED in json.loads(export).__repr__()  # ...without its links
    for url in live_links(emails_sent["sent"]):
        assert token_of(url) not in export
    assert "token=" not in export
    assert_nothing_opens(emails_sent["order"], set(TOKEN_LIKE.findall(export)))


def test_attack_admin_outbox_page_holds_no_usable_link(emails_sent):
    """Attack: R26 — a staff user reading the outbox in the admin sees no live link."""
    staff = User.objects.create_superuser("boss", "boss@example.lv", "pw-for-tests")
    client = Client()
    client.force_login(staff)
    pages = ""
    for pk in OutboxMessage.objects.values_list("pk", flat=True):
        page = client.get(f"/admin/shop/outboxmessage/{pk}/change/")
        assert page.status_code == 200
        pages += page.content.decode()
    assert tokens.LINK_REMOVED in pages
    for url in live_links(emails_sent["sent"]):
        assert token_of(url) not in pages
    found = {t for t in TOKEN_LIKE.findall(pages) if "token" not in t.lower()}
    assert_nothing_opens(emails_sent["order"], found - {"csrfmiddlewaretoken"})


def test_attack_outbox_rows_never_hold_a_live_token(django_capture_on_commit_callbacks):
    """Attack: R26 — no outbox row holds a live link in clear text, neither while the
    email waits to be sent nor after; the email sent still carries the live link."""
    shop_ready()
    order, _ = delivered_order()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        withdraw_one(order, "KEU-001")
    waiting = OutboxMessage.objects.get(payload__template="withdrawal_received")
    assert waiting.delivered_at is None
    assert tokens.LINK_REMOVED in waiting.payload["body"]
    mail.outbox.clear()
    for callback in callbacks:
        callback()
    (email,) = [
        m for m in mail.outbox if m.extra_headers["X-Shop-Template"] == "withdrawal_received"
    ]
    (receipt,) = {u for u in LINK.findall(email.body) if "/withdrawals/" in u}
    secret = token_of(receipt)
    assert secret and secret not in json.dumps(waiting.payload)
    waiting.refresh_from_db()
    assert waiting.delivered_at is not None and "sealed" not in waiting.payload
    assert secret not in json.dumps([m.payload for m in OutboxMessage.objects.all()])
    assert Client().get(path_of(receipt), follow=True).status_code == 200


def test_r18_emailed_links_still_work_and_redirect_to_clean_urls(emails_sent):
    """Attack: R18 — the emails sent carry working links; opening one exchanges the
    token for a page session and a 303 to the same page without the token."""
    order = emails_sent["order"]
    urls = [u for u in live_links(emails_sent["sent"]) if f"/orders/{order.number}/" in u]
    assert any("/withdraw/" in u for u in urls) and any("/confirm/" in u for u in urls)
    for url in urls:
        client = Client()
        response = client.get(path_of(url))
        assert response.status_code == 303, url
        assert "token" not in response["Location"]
        assert response["Location"] == urlsplit(url).path
        page = client.get(response["Location"])
        assert page.status_code == 200, url
        if not page.streaming:  # the invoice PDF streams
            assert token_of(url) not in page.content.decode()


def test_attack_emailed_order_link_is_not_an_api_credential(emails_sent):
    """Attack: section 10 — an emailed order link does not open the API (the withdrawal
    with a refund to the attacker's IBAN from issue 14 is refused)."""
    order = emails_sent["order"]
    for url in live_links(emails_sent["sent"]):
        if f"/orders/{order.number}/" not in url:
            continue
        headers = {"HTTP_X_ORDER_TOKEN": token_of(url)}
        assert Client().get(f"/api/orders/{order.number}/", **headers).status_code == 404
        response = Client().post(
            f"/api/orders/{order.number}/withdrawals/",
            {"lines": [], "iban": "LV97HABA0012345678910", "account_holder": "Attacker"},
            content_type="application/json",
            **headers,
        )
        assert response.status_code == 404
    assert order.withdrawals.count() == 1
    # The access token returned at placement still opens it.
    response = Client().get(
        f"/api/orders/{order.number}/", HTTP_X_ORDER_TOKEN=emails_sent["access_token"]
    )
    assert response.status_code == 200


def test_attack_revoked_links_and_their_sessions_stop_working():
    """Attack: R18 — once the order's links are revoked, neither the link nor a page
    session it opened gets in; a new link works."""
    shop_ready()
    order, _ = delivered_order()
    url = links.withdraw_url(order)
    session = Client()
    assert session.get(path_of(url), follow=True).status_code == 200
    links.revoke_order_links(order_id=order.pk)
    assert Client().get(path_of(url)).status_code == 404
    assert session.get(urlsplit(url).path).status_code == 404
    fresh = links.withdraw_url(Order.objects.get(pk=order.pk))
    assert Client().get(path_of(fresh), follow=True).status_code == 200


def test_r18_withdraw_link_lives_for_the_withdrawal_period_other_links_less():
    """Attack: R18 — the withdrawal button's link works for the whole withdrawal period
    and ends after it; the order page link ends after ORDER_LINK_MAX_AGE; a page session
    ends after ORDER_LINK_SESSION_MAX_AGE."""
    shop_ready()
    order, _ = delivered_order(delivered_at=timezone.now())
    from orders.selectors import withdrawal_deadline

    deadline = withdrawal_deadline(order)
    withdraw, view = links.withdraw_url(order), links.order_url(order)
    with time_machine.travel(deadline - timedelta(minutes=5), tick=False):
        page = Client().get(path_of(withdraw), follow=True)
        assert "Atteikties no līguma šeit" in page.content.decode()
    with time_machine.travel(deadline + timedelta(days=1, minutes=1), tick=False):
        assert Client().get(path_of(withdraw)).status_code == 404
    max_age = timedelta(seconds=settings.ORDER_LINK_MAX_AGE)
    with time_machine.travel(timezone.now() + max_age - timedelta(minutes=1), tick=False):
        assert Client().get(path_of(view)).status_code == 303
    with time_machine.travel(timezone.now() + max_age + timedelta(minutes=1), tick=False):
        assert Client().get(path_of(view)).status_code == 404
    session = Client()
    assert session.get(path_of(view)).status_code == 303
    detail = urlsplit(view).path
    assert session.get(detail).status_code == 200
    later = timedelta(seconds=settings.ORDER_LINK_SESSION_MAX_AGE, minutes=1)
    with time_machine.travel(timezone.now() + later, tick=False):
        assert session.get(detail).status_code == 404


def test_attack_one_time_login_link_works_once(emails_sent):
    """Attack: R30 — the one-time login link opens a subject session once; replayed, it
    is refused."""
    (email,) = [
        m for m in emails_sent["sent"] if m.extra_headers["X-Shop-Template"] == "email_link"
    ]
    (url,) = {u for u in LINK.findall(email.body) if "token=" in u}
    first = Client().get(path_of(url))
    assert first.status_code == 200 and first.json()["token"]
    again = Client().get(path_of(url))
    assert again.status_code in (400, 404, 410, 422)
    assert "token" not in again.json() or not again.json().get("token")


def test_attack_access_log_lines_carry_no_token():
    """Attack: R26 — request lines written by Django's server log and by gunicorn's
    access log keep the path but cut out the token's value."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger as GunicornLogger

    from legal.log_redaction import ensure_redaction

    secret = tokens.sign_link("order-web", {"n": "X"}, expires_at=timezone.now())
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    server = logging.getLogger("django.server")
    server.addHandler(handler)
    try:
        ensure_redaction()
        server.info('"%s" %s %s', f"GET /orders/AB12/?token={secret} HTTP/1.1", 303, 0)
    finally:
        server.removeHandler(handler)
    assert "/orders/AB12/?token=[removed]" in stream.getvalue()
    assert secret not in stream.getvalue()

    config = Config()
    config.set("accesslog", "-")
    gunicorn = GunicornLogger(config)
    access_stream = io.StringIO()
    for h in gunicorn.access_log.handlers:
        h.setStream(access_stream)
    ensure_redaction()
    response = mock.Mock(status="303 See Other", sent=0, headers=[])
    request = mock.Mock(headers=[], method="GET", path="/orders/AB12/")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/orders/AB12/?token={secret}",
        "PATH_INFO": "/orders/AB12/",
        "QUERY_STRING": f"token={secret}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.1",
        "HTTP_REFERER": f"https://shop.example.lv/orders/AB12/?token={secret}",
    }
    gunicorn.access(response, request, environ, timedelta(milliseconds=5))
    line = access_stream.getvalue()
    assert "/orders/AB12/" in line and secret not in line, line


def test_attack_redirects_after_actions_carry_no_token(emails_sent):
    """Attack: R18 — the confirm button and the withdrawal confirmation redirect to pages
    of the order without a token in `Location`."""
    order = emails_sent["order"]
    client = Client()
    client.get(path_of(links.confirm_url(order)))
    done = client.post(reverse("orders-web:confirm", args=[order.number]))
    assert done.status_code == 302 and "token" not in done["Location"]
    client.get(path_of(links.withdraw_url(order)))
    form = {"iban": IBAN, "account_holder": HOLDER}
    for line in order.lines.exclude(sku="KEU-001"):
        form[f"line_{line.pk}"], form[f"qty_{line.pk}"] = "on", str(line.quantity)
    confirmed = client.post(reverse("withdrawals-web:confirm", args=[order.number]), form)
    assert confirmed.status_code in (200, 302)
    if confirmed.status_code == 302:
        assert "token" not in confirmed["Location"]


def test_attack_unknown_order_number_costs_the_same_work_as_a_wrong_token():
    """Attack: a lookup of an unknown order number hashes and compares the token just as
    a known number with a wrong token does, so the answer time tells nothing."""
    shop_ready()
    order, _ = delivered_order()
    calls = []
    real = tokens.hash_secret
    with mock.patch.object(tokens, "hash_secret", lambda s: calls.append(s) or real(s)):
        for number in (order.number, "NOSUCH00"):
            calls.clear()
            response = Client().get(f"/api/orders/{number}/", HTTP_X_ORDER_TOKEN="guess-123")
            assert response.status_code == 404
            assert calls == ["guess-123"], number
            calls.clear()
            response = Client().get(f"/orders/{number}/", {"token": "guess-123"})
            assert response.status_code == 404
            assert calls == ["guess-123"], number


def test_console_email_backend_refused_in_production():
    """Attack: the console backend would print every live link into the worker's log;
    with DJANGO_DEBUG off and EMAIL_URL left at the console default, nothing starts."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "production-secret-from-the-environment-0123456789",
        "ALLOWED_HOSTS": "shop.example.lv",
        "DATABASE_URL": "sqlite:////tmp/console-check.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "EMAIL_URL" in result.stderr


def test_staff_revoke_the_links_of_an_order_in_the_admin():
    """R18: staff with the change permission revoke an order's emailed links (one leaked,
    or the customer asked); a staff user without it cannot."""
    from django.contrib.auth.models import Permission

    shop_ready()
    order, _ = delivered_order()
    url = links.order_url(order)
    clerk = User.objects.create_user("clerk", password="pw-for-tests", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_order"))
    client = Client()
    client.force_login(clerk)
    changelist = reverse("admin:orders_order_changelist")
    action = {"action": "revoke_links", "_selected_action": [order.pk]}
    client.post(changelist, action)
    assert Client().get(path_of(url)).status_code == 303  # no permission: nothing changed
    clerk.user_permissions.add(Permission.objects.get(codename="change_order"))
    client.post(changelist, action)
    assert Client().get(path_of(url)).status_code == 404


def test_attack_rows_kept_before_the_fix_lose_their_links():
    """Attack: R30 — the migration strikes the live links out of the outbox rows written
    before the fix (sent ones), and seals the text of those still waiting to be sent."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("shop.migrations.0003_outbox_strike_links")
    live = "Jūsu pasūtījums: http://127.0.0.1:8000/orders/AB12/?token=AB12:1tZ:secret-part"
    sent = OutboxMessage.objects.create(
        topic="email.send",
        payload={"to": [EMAIL], "subject": "S", "body": live},
        delivered_at=timezone.now(),
    )
    waiting = OutboxMessage.objects.create(
        topic="email.send", payload={"to": [EMAIL], "subject": "S", "body": live}
    )
    migration.strike_links(apps, None)
    sent.refresh_from_db()
    waiting.refresh_from_db()
    for row in (sent, waiting):
        assert row.payload["body"] == f"Jūsu pasūtījums: {tokens.LINK_REMOVED}"
        assert "secret-part" not in json.dumps(row.payload)
    assert "sealed" not in sent.payload
    assert json.loads(tokens.unseal(waiting.payload["sealed"])) == ["S", live]


def test_sealed_email_survives_a_secret_key_rotation(django_capture_on_commit_callbacks, settings):
    """R19: an email waiting in the outbox while SECRET_KEY rotates is still sent with
    its live link (the old key in SECRET_KEY_FALLBACKS); were the old key gone, it is
    sent without its link rather than never."""
    shop_ready()
    order, _ = delivered_order([("KEU-001", 1), ("KEU-002", 1)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        withdraw_one(order, "KEU-001")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "rotated-" + "k" * 50
    settings.SECRET_KEY_FALLBACKS = [old_key]
    mail.outbox.clear()
    for callback in callbacks:
        callback()
    (email,) = mail.outbox
    assert "/withdrawals/" in email.body and "token=" in email.body

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        withdraw_one(order, "KEU-002")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-again-" + "k" * 50, []
    mail.outbox.clear()
    for callback in callbacks:
        callback()
    (email,) = mail.outbox
    assert tokens.LINK_REMOVED in email.body and "KEU-002" in email.body
