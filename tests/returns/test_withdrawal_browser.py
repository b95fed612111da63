"""Browser tests (playwright driving Debian's chromium) of the withdrawal flow (R18-R22).

(a) A customer withdraws through the button pages and sees the receipt and the email.
(b) A clerk receives and inspects the returned goods in the admin, approves the refund and
    exports the SEPA file.

Run with `-m browser`; skipped when /usr/bin/chromium is missing (CI installs it through
.ci/system-packages.sh). `UPDATE_SCREENSHOTS=1` writes the screenshots to docs/.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone

from orders.models import Refund, RefundStatus
from returns.models import Withdrawal, WithdrawalStatus
from returns.withdrawals import links, services
from tests.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.returns.withdrawal_support import (
    HOLDER,
    IBAN,
    delivered_order,
    make_staff,
    shop_ready,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(tmp_path, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # playwright's sync API runs an event loop in this thread; the test talks to the
    # database from the same thread, which Django allows only when told so.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir for every test
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            locale="lv-LV",
            viewport={"width": 1000, "height": 900},
            accept_downloads=True,
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        # Database calls made while playwright's loop runs use a connection of their own
        # (Django keeps connections per async context): close it, or the test database
        # cannot be dropped at the end of the run.
        connections.close_all()


@pytest.fixture
def shot(tmp_path):
    """Save a full-page screenshot (docs/withdrawal-<name>.png with UPDATE_SCREENSHOTS=1)."""
    folder = DOCS if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path

    def take(page, name: str) -> Path:
        path = folder / f"withdrawal-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_customer_withdraws_through_the_button_pages(live_server, page, shot):
    """R18, R19: the signed link from the order email opens the button page; the
    customer confirms on a separate page and sees the receipt; the email has the same."""
    shop_ready()
    order, _ = delivered_order(
        [("KEU-001", 1), ("KEU-002", 2)],
        prices={"KEU-001": Decimal("18.90"), "KEU-002": Decimal("9.50")},
    )
    late, _ = delivered_order(
        customer={"email": "late@example.lv"}, delivered_at=timezone.now() - timedelta(days=30)
    )
    mail.outbox.clear()

    page.goto(live_server.url + path_of(links.withdraw_url(order)))
    button = page.get_by_role("button", name="Atteikties no līguma šeit")
    assert button.is_visible()
    body = page.inner_text("main")
    assert order.number in body and "Anna Bērziņa" in body and "anna@example.lv" in body
    assert page.evaluate("document.scripts.length") == 0  # no JavaScript on the page
    # Keep one line, withdraw 1 of the 2 units of the other; keyboard and labels only.
    page.get_by_label(re.compile("KEU-001")).uncheck()
    page.get_by_label(re.compile("Daudzums")).fill("1")
    page.get_by_label("IBAN atmaksai").fill("LV80 BANK 0000 4351 9500 1")
    page.get_by_label(re.compile("Iemesls")).fill("Neder tonis")
    shot(page, "1-form")
    button.focus()
    page.keyboard.press("Enter")

    page.wait_for_selector("text=Apstiprināt atteikumu")
    confirm_text = page.inner_text("main")
    assert "KEU-002" in confirm_text and "× 1" in confirm_text and IBAN in confirm_text
    assert not Withdrawal.objects.exists()
    shot(page, "2-confirm")
    page.get_by_role("button", name="Apstiprināt atteikumu").click()

    page.wait_for_selector("text=Jūsu atteikums ir saņemts")
    withdrawal = Withdrawal.objects.get()
    received = timezone.localtime(withdrawal.received_at)
    receipt = page.inner_text("main")
    assert received.strftime("%H:%M:%S") in receipt and "9,50 EUR" in receipt
    shot(page, "3-receipt")

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["anna@example.lv"]
    assert received.strftime("%d.%m.%Y %H:%M:%S") in email.body
    assert "KEU-002" in email.body and "Neder tonis" in email.body

    # The language switch: the same receipt in English.
    page.select_option("#language", "en")
    page.get_by_role("button", name="Mainīt").click()
    page.wait_for_selector("text=Your withdrawal is received")
    shot(page, "4-receipt-en")

    # After the period the page is clearly closed, with the deadline.
    page.goto(live_server.url + path_of(links.withdraw_url(late)))
    closed = page.inner_text("main")
    assert "period is over" in closed
    assert page.get_by_role("button", name="Withdraw from contract here").count() == 0
    shot(page, "5-closed")


def test_clerk_inspects_approves_and_exports_the_sepa_file(live_server, page, shot):
    """R20-R22: goods received, inspected per line in the admin; the refund is then
    approved in the refund queue and exported to a SEPA file."""
    shop_ready()
    order, _ = delivered_order(
        [("KEU-001", 1), ("KEU-HYG", 1)],
        prices={"KEU-001": Decimal("20.00"), "KEU-HYG": Decimal("10.00")},
    )
    order.lines.filter(sku="KEU-HYG").update(sealed_hygiene=True)
    withdrawal = services.receive_withdrawal(
        order_id=order.pk, lines=[], iban=IBAN, account_holder=HOLDER, channel="web"
    ).withdrawal
    make_staff(
        "returns.view_withdrawal",
        "returns.receive_returned_goods",
        "returns.inspect_withdrawal",
        "orders.view_refund",
        "orders.change_refund",
        "orders.approve_refund",
        username="clerk",
        password="clerk-password-1",
    )

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/returns/withdrawal/")
    page.fill("#id_username", "clerk")
    page.fill("#id_password", "clerk-password-1")
    page.locator("input[type=submit]").click()
    page.wait_for_selector(f"text={order.number}")
    shot(page, "6-admin-list")

    page.get_by_role("link", name=str(withdrawal.pk), exact=True).click()
    page.locator("a.button[href$='/inspect/']").click()  # "Goods received…"
    page.locator("input[type=submit].default").click()  # record the goods as received
    page.wait_for_selector("form#inspection")
    rows = list(withdrawal.lines.order_by("pk").select_related("order_line"))
    for index, line in enumerate(rows):
        fieldset = page.locator(f"#line-{line.pk}")
        if line.order_line.sealed_hygiene:
            fieldset.locator(f"input[name='lines-{index}-outcome'][value=rejected]").check()
            fieldset.locator(f"select[name='lines-{index}-rejection_ground']").select_option(
                "hygiene_unsealed"
            )
            fieldset.locator(f"input[name='lines-{index}-note']").fill("seal broken")
        else:
            fieldset.locator(
                f"input[name='lines-{index}-outcome'][value=accepted_with_deduction]"
            ).check()
            fieldset.locator(f"input[name='lines-{index}-deduction']").fill("2.50")
            fieldset.locator(f"input[name='lines-{index}-note']").fill("cap scratched")
    shot(page, "7-admin-inspect")
    page.locator("form#inspection input[type=submit]").click()
    page.wait_for_selector("ul.messagelist li.success")
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.REFUNDED
    refund = Refund.objects.get(pk=withdrawal.refund_id)
    # R21: the rejected hygiene product stays bought, so the fee stays charged (no 2.00).
    assert (refund.amount, refund.status) == (Decimal("17.50"), RefundStatus.READY)

    page.goto(f"{live_server.url}/admin/orders/refund/?status__exact=ready")
    page.locator(f"input[name=_selected_action][value='{refund.pk}']").check()
    page.select_option("select[name=action]", "approve")
    with page.expect_navigation():
        page.locator("button[name=index]").click()
    page.wait_for_selector("ul.messagelist li.success")
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED
    page.goto(f"{live_server.url}/admin/orders/refund/?status__exact=approved")
    shot(page, "8-admin-refunds")
    page.locator(f"input[name=_selected_action][value='{refund.pk}']").check()
    page.select_option("select[name=action]", "export_sepa")
    with page.expect_download() as download_info:
        page.locator("button[name=index]").click()
    sepa = Path(download_info.value.path()).read_text("utf-8")
    assert IBAN in sepa and "17.50" in sepa
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SENT
