"""The withdrawal button pages (R18, CRD Art 11a): no JavaScript, two separate steps."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from PIL import Image

from orders.links import order_link_token
from returns.models import Withdrawal, WithdrawalChannel
from returns.withdrawals import links
from shop.calendar import RIGA
from tests.returns.withdrawal_support import HOLDER, IBAN, delivered_order, paid_order

pytestmark = pytest.mark.django_db


def start_url(order) -> str:
    return links.withdraw_url(order).split("http://127.0.0.1:8000", 1)[-1]


def open_link(client, order) -> None:
    """Open the emailed link: it is exchanged for a page session (303 to the clean URL)."""
    response = client.get(start_url(order))
    assert response.status_code == 303
    assert "token" not in response["Location"]


def form_data(order, **overrides) -> dict:
    data = {"iban": IBAN, "account_holder": HOLDER}
    for line in order.lines.all():
        data[f"line_{line.pk}"] = "on"
        data[f"qty_{line.pk}"] = str(line.quantity)
    data.update(overrides)
    return data


def test_r18_the_order_email_links_to_the_withdrawal_button(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        order, _token = paid_order()
    placed = next(m for m in mail.outbox if "received" in m.subject or order.number in m.subject)
    match = re.search(r"(http://\S+/orders/\w+/withdraw/\?token=\S+)", placed.body)
    assert match, placed.body
    page = Client().get(match.group(1).split("8000", 1)[1], follow=True)
    assert page.status_code == 200
    assert "Atteikties no līguma šeit" in page.content.decode()


def test_r18_button_page_shows_the_order_name_email_and_lines(client):
    order, _ = delivered_order([("KEU-001", 2), ("KEU-002", 1)])
    page = client.get(start_url(order), follow=True)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Atteikties no līguma šeit" in html  # Latvian by default
    assert order.number in html and "Anna Bērziņa" in html and "anna@example.lv" in html
    assert "KEU-001" in html and "KEU-002" in html
    assert "<script" not in html  # works without JavaScript
    assert "<legend>" in html and 'for="id_iban"' in html
    english = client.get(start_url(order), HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Withdraw from contract here" in english.content.decode()


def test_r18_two_separate_steps_then_the_receipt(client, django_capture_on_commit_callbacks):
    order, _ = delivered_order([("KEU-001", 1), ("KEU-002", 1)])
    first = order.lines.get(sku="KEU-001")
    data = form_data(order, **{f"line_{first.pk}": ""})
    open_link(client, order)
    step2 = client.post(start_url(order).split("?")[0], data)
    assert step2.status_code == 200
    html = step2.content.decode()
    assert "Apstiprināt atteikumu" in html
    assert "KEU-002" in html and IBAN in html
    assert not Withdrawal.objects.exists()  # nothing received before the confirmation

    mail.outbox.clear()
    confirm_url = f"/orders/{order.number}/withdraw/confirm/"
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(confirm_url, data)
    assert done.status_code == 302, done.content.decode()[-3000:]
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.channel == WithdrawalChannel.WEB
    assert list(withdrawal.lines.values_list("order_line__sku", flat=True)) == ["KEU-002"]
    receipt = client.get(done["Location"])
    text = receipt.content.decode()
    received = withdrawal.received_at.astimezone(RIGA)
    assert received.strftime("%d.%m.%Y") in text and received.strftime("%H:%M:%S") in text
    assert len(mail.outbox) == 1 and received.strftime("%H:%M:%S") in mail.outbox[0].body

    again = client.post(confirm_url, data)  # a second click: still one withdrawal
    assert again.status_code == 302 and Withdrawal.objects.count() == 1


def test_r18_form_errors_are_announced(client):
    order, _ = delivered_order()
    open_link(client, order)
    page = client.post(start_url(order).split("?")[0], form_data(order, iban="LV00NOPE"))
    html = page.content.decode()
    assert 'role="alert"' in html and 'aria-invalid="true"' in html
    assert not Withdrawal.objects.exists()


def test_r18_csrf_protected():
    order, _ = delivered_order()
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(f"/orders/{order.number}/withdraw/confirm/", form_data(order))
    assert response.status_code == 403
    assert not Withdrawal.objects.exists()


def test_r18_clearly_closed_after_the_period_with_the_deadline(client):
    delivered = datetime(2026, 11, 2, 14, 0, tzinfo=RIGA)
    order, _ = delivered_order(delivered_at=delivered)
    with time_machine.travel(datetime(2026, 11, 16, 23, 58, tzinfo=RIGA), tick=False):
        assert (
            "Atteikties no līguma šeit"
            in client.get(start_url(order), follow=True).content.decode()
        )
    with time_machine.travel(datetime(2026, 11, 17, 0, 1, tzinfo=RIGA), tick=False):
        html = client.get(start_url(order), follow=True).content.decode()
        confirm = client.post(f"/orders/{order.number}/withdraw/confirm/", form_data(order))
    assert "Atteikties no līguma šeit" not in html
    assert "16.11.2026 23:59" in html
    assert "Atteikties no līguma šeit" not in confirm.content.decode()
    assert not Withdrawal.objects.exists()


def test_r18_pages_need_the_signed_link(client):
    order, _ = delivered_order()
    assert client.get(f"/orders/{order.number}/withdraw/").status_code == 404
    assert client.get(f"/orders/{order.number}/withdraw/?token=forged").status_code == 404
    other, _ = delivered_order(customer={"email": "b@example.lv"})
    token = order_link_token(other, "withdraw")
    assert client.get(f"/orders/{order.number}/withdraw/?token={token}").status_code == 404


def test_r18_business_buyer_sees_why_not(client):
    order, _ = delivered_order(
        customer={"is_consumer": False, "company_name": "SIA Salons", "company_reg_no": "4000"}
    )
    html = client.get(start_url(order), follow=True).content.decode()
    assert "Atteikties no līguma šeit" not in html


def test_r21_proof_of_dispatch_through_the_receipt_page(client):
    from returns.withdrawals.services import RequestedLine, receive_withdrawal

    order, _ = delivered_order()
    withdrawal = receive_withdrawal(
        order_id=order.pk,
        lines=[RequestedLine("KEU-001", 1)],
        iban=IBAN,
        account_holder=HOLDER,
        channel="web",
    ).withdrawal
    receipt = links.receipt_url(order, withdrawal.pk).split("8000", 1)[1]
    assert 'type="file"' in client.get(receipt, follow=True).content.decode()
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    buffer.seek(0)
    buffer.name = "receipt.jpg"
    response = client.post(
        f"/orders/{order.number}/withdrawals/{withdrawal.pk}/proof/",
        {"proof_of_dispatch": buffer},
    )
    assert response.status_code == 302
    withdrawal.refresh_from_db()
    assert withdrawal.status == "goods_in_transit"
    assert withdrawal.refund.status == "ready"

    bad = io.BytesIO(b"<html>not a picture</html>")
    bad.name = "evil.jpg"
    followed = client.post(
        f"/orders/{order.number}/withdrawals/{withdrawal.pk}/proof/",
        {"proof_of_dispatch": bad},
        follow=True,
    )
    assert 'role="alert"' in followed.content.decode()


def test_before_delivery_the_page_says_so_and_refunds_at_once(client):
    order, _ = paid_order()
    html = client.get(start_url(order), follow=True).content.decode()
    assert "Atteikties no līguma šeit" in html
    client.post(f"/orders/{order.number}/withdraw/confirm/", form_data(order))
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.before_dispatch and withdrawal.refund.status == "ready"
    assert withdrawal.received_at > datetime.now(RIGA) - timedelta(minutes=1)
