"""Withdrawals in the admin: staff entry (R17), goods received (R20), inspection (R22)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from orders.models import Refund, RefundStatus
from returns.models import Withdrawal, WithdrawalChannel, WithdrawalStatus
from returns.withdrawals import services
from tests.returns.withdrawal_support import HOLDER, IBAN, delivered_order, make_staff

pytestmark = pytest.mark.django_db

PERMS = (
    "returns.view_withdrawal",
    "returns.record_withdrawal",
    "returns.receive_returned_goods",
    "returns.inspect_withdrawal",
)


@pytest.fixture
def clerk_client(client):
    client.force_login(make_staff(*PERMS))
    return client


def split(moment) -> dict:
    local = timezone.localtime(moment)
    return {
        "received_at_0": local.strftime("%Y-%m-%d"),
        "received_at_1": local.strftime("%H:%M:%S"),
    }


def test_r17_staff_enter_a_statement_received_by_phone_with_its_time(
    clerk_client, django_capture_on_commit_callbacks
):
    order, _ = delivered_order([("KEU-001", 2), ("KEU-002", 1)])
    called_at = order.delivered_at + timedelta(hours=5)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = clerk_client.post(
            "/admin/returns/withdrawal/add/",
            {
                "order_number": order.number.lower(),
                **split(called_at),
                "lines": "KEU-001 1",
                "iban": IBAN,
                "account_holder": HOLDER,
                "reason": "",
                "staff_note": "phone call",
            },
        )
    assert response.status_code == 302, response.content.decode()[-2000:]
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.channel == WithdrawalChannel.STAFF
    assert withdrawal.received_at == called_at.replace(microsecond=0)
    assert withdrawal.recorded_by.username == "clerk"
    assert list(withdrawal.lines.values_list("order_line__sku", "quantity")) == [("KEU-001", 1)]
    assert len(mail.outbox) == 1  # R19: every channel gets the acknowledgement


def test_r16_staff_entry_after_the_period_is_refused_with_the_deadline(clerk_client):
    order, _ = delivered_order(delivered_at=timezone.now() - timedelta(days=40))
    response = clerk_client.post(
        "/admin/returns/withdrawal/add/",
        {
            "order_number": order.number,
            **split(timezone.now()),
            "lines": "",
            "iban": IBAN,
            "account_holder": HOLDER,
        },
    )
    assert response.status_code == 200
    assert "withdrawal_period_expired" in response.content.decode()
    assert not Withdrawal.objects.exists()


def test_r22_goods_received_then_inspection_in_the_admin(clerk_client):
    order, _ = delivered_order(
        [("KEU-001", 1), ("KEU-002", 1)],
        prices={"KEU-001": Decimal("20.00"), "KEU-002": Decimal("10.00")},
    )
    withdrawal = services.receive_withdrawal(
        order_id=order.pk, lines=[], iban=IBAN, account_holder=HOLDER, channel="api"
    ).withdrawal
    url = f"/admin/returns/withdrawal/{withdrawal.pk}/inspect/"
    page = clerk_client.get(url)
    assert page.status_code == 200
    response = clerk_client.post(url, split(timezone.now()))
    assert response.status_code == 302
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.GOODS_RECEIVED

    page = clerk_client.get(url)
    assert "lines-TOTAL_FORMS" in page.content.decode()
    lines = list(withdrawal.lines.order_by("pk"))
    data = {"lines-TOTAL_FORMS": "2", "lines-INITIAL_FORMS": "2"}
    data.update(
        {
            "lines-0-line_id": lines[0].pk,
            "lines-0-outcome": "accepted_with_deduction",
            "lines-0-deduction": "25.00",  # more than the 20.00 line
            "lines-0-note": "used",
            "lines-1-line_id": lines[1].pk,
            "lines-1-outcome": "accepted",
        }
    )
    refused = clerk_client.post(url, data)
    assert refused.status_code == 200
    assert "never more than the line" in refused.content.decode()
    data["lines-0-deduction"] = "3.00"
    done = clerk_client.post(url, data)
    assert done.status_code == 302
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.status) == (Decimal("29.00"), RefundStatus.READY)


def test_admin_lists_and_shows_withdrawals(clerk_client):
    order, _ = delivered_order()
    withdrawal = services.receive_withdrawal(
        order_id=order.pk, lines=[], iban=IBAN, account_holder=HOLDER, channel="api"
    ).withdrawal
    listing = clerk_client.get("/admin/returns/withdrawal/")
    assert listing.status_code == 200 and order.number in listing.content.decode()
    detail = clerk_client.get(f"/admin/returns/withdrawal/{withdrawal.pk}/change/")
    html = detail.content.decode()
    assert detail.status_code == 200
    assert IBAN not in html  # masked
    assert IBAN[-4:] in html


def test_inspection_needs_its_permission(client):
    client.force_login(make_staff("returns.view_withdrawal", username="viewer"))
    order, _ = delivered_order()
    withdrawal = services.receive_withdrawal(
        order_id=order.pk, lines=[], iban=IBAN, account_holder=HOLDER, channel="api"
    ).withdrawal
    assert client.get(f"/admin/returns/withdrawal/{withdrawal.pk}/inspect/").status_code == 403
    assert client.get("/admin/returns/withdrawal/add/").status_code == 403
