"""The pages reached from the order emails: order view and the confirm step (R12)."""

from __future__ import annotations

import pytest
from django.core import mail

from orders.links import confirm_url, order_link_token
from orders.models import OrderStatus
from tests.factories import place_test_order

pytestmark = pytest.mark.django_db


def test_r12_confirm_link_shows_a_button_and_only_the_post_confirms(client):
    order = place_test_order().order
    url = confirm_url(order).split("8000", 1)[-1]
    page = client.get(url, follow=True)
    assert page.status_code == 200
    assert "Apstiprināt pasūtījumu" in page.content.decode() or "Confirm" in page.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED  # a GET (a link scanner) changes nothing

    response = client.post(url.split("?")[0], follow=True)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED


def test_order_page_needs_a_valid_link(client):
    order = place_test_order().order
    assert client.get(f"/orders/{order.number}/").status_code == 404
    assert client.get(f"/orders/{order.number}/?token=forged").status_code == 404
    ok = client.get(f"/orders/{order.number}/?token={order_link_token(order)}", follow=True)
    assert ok.status_code == 200
    assert ok.redirect_chain == [(f"/orders/{order.number}/", 303)]  # the token is gone
    assert order.number in ok.content.decode()


def test_order_page_in_english(client):
    order = place_test_order().order
    page = client.get(
        f"/orders/{order.number}/?token={order_link_token(order)}",
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    assert "Order" in page.content.decode()


def test_r9_confirmation_email_after_commit_with_invoice_and_withdrawal_form(
    django_capture_on_commit_callbacks,
):
    """R9, R12, CRD Annex I(B): one email after commit, invoice PDF attached, confirm link,
    withdrawal information and the model withdrawal form, Latvian then English."""
    with django_capture_on_commit_callbacks(execute=True):
        order = place_test_order().order
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["anna@example.lv"]
    assert order.number in email.subject
    invoice = order.invoices.get()
    assert email.attachments[0][0] == f"{invoice.number}.pdf"
    assert email.attachments[0][1][:4] == b"%PDF"
    body = email.body
    assert f"/orders/{order.number}/confirm/?token=" in body
    assert "Atteikuma veidlapas paraugs" in body and "Model withdrawal form" in body
    assert body.index("Atteikuma") < body.index("Model withdrawal form")
    assert invoice.number in body
