"""POST /api/orders/{number}/withdrawals/ and GET /api/withdrawals/{id}/ (R15-R17, R19, R21)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from orders.models import Order, Refund, RefundReason, RefundStatus
from returns.models import Withdrawal, WithdrawalChannel, WithdrawalStatus
from shop.calendar import RIGA
from tests.returns.withdrawal_support import (
    HOLDER,
    IBAN,
    deliver,
    delivered_order,
    paid_order,
    withdrawal_body,
)

pytestmark = pytest.mark.django_db


def riga(*args) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def post_withdrawal(client, order: Order, token: str, body: dict, **headers):
    return client.post(
        f"/api/orders/{order.number}/withdrawals/",
        body,
        format="json",
        HTTP_X_ORDER_TOKEN=token,
        **headers,
    )


def delivered_at_riga(when: datetime, lines=None, prices=None):
    """An order paid and delivered at `when` (the clock travels there)."""
    with time_machine.travel(when - timedelta(days=3), tick=False):
        order, token = paid_order(lines, prices=prices)
    with time_machine.travel(when, tick=False):
        order = deliver(order, at=when)
    return order, token


# --- R16: the period -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "last_day"),
    [
        (riga(2026, 11, 2, 14, 0), date(2026, 11, 16)),
        (datetime(2026, 11, 3, 22, 30, tzinfo=UTC), date(2026, 11, 19)),  # 4 Nov in Riga
        (riga(2026, 12, 10, 9, 0), date(2026, 12, 28)),
        (riga(2026, 6, 8, 9, 0), date(2026, 6, 25)),
    ],
    ids=["2-nov-ends-16-nov", "4-nov-riga-ends-19-nov-past-18-nov", "10-dec-ends-28-dec", "8-jun"],
)
def test_r16_statement_one_minute_before_and_after_the_end(api_client, delivered, last_day):
    """R16 (R0.4): delivered on 2 Nov 2026 the period ends 16 Nov; on 4 Nov (Riga time)
    it ends 19 Nov, past the 18 Nov holiday; on 10 Dec it ends 28 Dec; on 8 Jun it ends
    25 Jun. A statement one minute before the end is accepted, one minute after refused
    with the deadline."""
    end = riga(last_day.year, last_day.month, last_day.day, 23, 59, 59, 999999)
    order, token = delivered_at_riga(delivered)
    other, other_token = delivered_at_riga(delivered)

    with time_machine.travel(end - timedelta(minutes=1), tick=False):
        accepted = post_withdrawal(api_client, order, token, withdrawal_body())
        order_json = api_client.get(f"/api/orders/{order.number}/", HTTP_X_ORDER_TOKEN=token)
    assert accepted.status_code == 201, accepted.json()
    assert accepted.json()["status"] == "received"
    assert order_json.json()["withdrawal_deadline"] == end.isoformat()

    with time_machine.travel(end + timedelta(minutes=1), tick=False):
        refused = post_withdrawal(api_client, other, other_token, withdrawal_body())
    assert refused.status_code == 422
    assert refused["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "withdrawal_period_expired"
    assert problem["deadline"] == end.isoformat()
    assert not Withdrawal.objects.filter(order=other).exists()


def test_r16_riga_midnight_decides_the_delivery_day(api_client):
    """R16 (R0.2): delivered 23:30 UTC on 1 Nov is 2 Nov in Riga: the period ends 16 Nov
    23:59:59 Riga time, which is 21:59:59 UTC."""
    order, token = delivered_at_riga(datetime(2026, 11, 1, 22, 30, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 11, 16, 21, 59, tzinfo=UTC), tick=False):
        assert post_withdrawal(api_client, order, token, withdrawal_body()).status_code == 201
    late, late_token = delivered_at_riga(datetime(2026, 11, 1, 22, 30, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 11, 16, 22, 0, 1, tzinfo=UTC), tick=False):
        refused = post_withdrawal(api_client, late, late_token, withdrawal_body())
    assert refused.json()["code"] == "withdrawal_period_expired"


def test_r16_summer_time_changes_inside_the_period(api_client):
    """R16 (R0.2): delivered 20 Oct 2026 (UTC+3); clocks go back on 25 Oct; the period
    ends 3 Nov at midnight Riga time (UTC+2): 21:59 UTC is in time, 22:01 UTC is not."""
    order, token = delivered_at_riga(riga(2026, 10, 20, 10, 0))
    with time_machine.travel(datetime(2026, 11, 3, 21, 59, tzinfo=UTC), tick=False):
        assert post_withdrawal(api_client, order, token, withdrawal_body()).status_code == 201
    late, late_token = delivered_at_riga(riga(2026, 10, 20, 10, 0))
    with time_machine.travel(datetime(2026, 11, 3, 22, 1, tzinfo=UTC), tick=False):
        refused = post_withdrawal(api_client, late, late_token, withdrawal_body())
    assert refused.json()["deadline"] == "2026-11-03T23:59:59.999999+02:00"

    spring, spring_token = delivered_at_riga(riga(2026, 3, 20, 10, 0))  # DST starts 29 Mar
    with time_machine.travel(datetime(2026, 4, 7, 20, 59, tzinfo=UTC), tick=False):
        ok = post_withdrawal(api_client, spring, spring_token, withdrawal_body())
    assert ok.status_code == 201  # 7 Apr 23:59 Riga (UTC+3): Easter rolled the end on


def test_r16_withdrawal_before_delivery_stops_the_goods_and_refunds_at_once(api_client):
    """R16 (CRD Art 9(3)): paid, not dispatched: the order is cancelled, everything paid
    (delivery fee included) is refunded at once, not held, and nothing is to be sent back."""
    order, token = paid_order([("KEU-001", 1), ("KEU-002", 2)])
    response = post_withdrawal(api_client, order, token, withdrawal_body())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "refunded"
    assert body["return_deadline"] is None
    assert Decimal(body["refund_amount"]) == order.total
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.status) == (order.total, RefundStatus.READY)
    order.refresh_from_db()
    assert order.status == "cancelled" and order.cancel_reason == "customer"
    assert Refund.objects.filter(order=order).count() == 1  # the cancellation adds nothing


def test_r16_partial_withdrawal_before_dispatch_cancels_that_line(api_client):
    order, token = paid_order([("KEU-001", 1), ("KEU-002", 1)])
    response = post_withdrawal(
        api_client, order, token, withdrawal_body([{"sku": "KEU-002", "quantity": 1}])
    )
    assert response.status_code == 201
    assert response.json()["refund_amount"] == "10.00"
    assert Refund.objects.get(order=order).status == RefundStatus.READY
    statuses = dict(order.lines.values_list("sku", "status"))
    assert statuses == {"KEU-001": "ordered", "KEU-002": "cancelled"}
    order.refresh_from_db()
    assert order.status == "paid"


def test_r16_shipped_not_delivered_is_in_time_and_held(api_client):
    from tests.returns.withdrawal_support import ship

    order, token = paid_order()
    order = ship(order, at=order.paid_at)
    response = post_withdrawal(api_client, order, token, withdrawal_body())
    assert response.status_code == 201
    assert Refund.objects.get(order=order).status == RefundStatus.PENDING


# --- R15, R17: who and what ------------------------------------------------------------------


def test_r15_business_buyer_refused(api_client):
    order, token = delivered_order(
        customer={"is_consumer": False, "company_name": "SIA Salons", "company_reg_no": "4000"}
    )
    response = post_withdrawal(api_client, order, token, withdrawal_body())
    assert response.status_code == 422
    assert response.json()["code"] == "not_a_consumer"
    assert not Withdrawal.objects.exists()


def test_r17_iban_checked_with_mod97(api_client):
    order, token = delivered_order()
    response = post_withdrawal(
        api_client, order, token, withdrawal_body(iban="LV80BANK0000435195002")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_iban"
    assert not Withdrawal.objects.exists()


def test_r17_reason_is_optional_and_never_required(api_client):
    order, token = delivered_order([("KEU-001", 1), ("KEU-002", 1)])
    body = withdrawal_body([{"sku": "KEU-001", "quantity": 1}])
    del body["reason"]
    assert post_withdrawal(api_client, order, token, body).status_code == 201
    with_reason = withdrawal_body([{"sku": "KEU-002", "quantity": 1}], reason="Par lielu")
    assert post_withdrawal(api_client, order, token, with_reason).status_code == 201
    assert list(Withdrawal.objects.order_by("pk").values_list("reason", flat=True)) == [
        "",
        "Par lielu",
    ]


def test_r17_quantity_exceeding_what_is_left_refused(api_client):
    order, token = delivered_order([("KEU-001", 2)])
    first = post_withdrawal(
        api_client, order, token, withdrawal_body([{"sku": "KEU-001", "quantity": 1}])
    )
    assert first.status_code == 201
    refused = post_withdrawal(
        api_client,
        order,
        token,
        withdrawal_body([{"sku": "KEU-001", "quantity": 2}], reason="otrreiz"),
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert (problem["code"], problem["remaining"], problem["requested"]) == (
        "quantity_exceeds_remaining",
        1,
        2,
    )


def test_r17_unknown_sku_is_a_field_error(api_client):
    order, token = delivered_order()
    response = post_withdrawal(
        api_client, order, token, withdrawal_body([{"sku": "NOPE", "quantity": 1}])
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "not_in_order"


def test_empty_lines_mean_the_whole_remaining_order(api_client):
    order, token = delivered_order([("KEU-001", 2), ("KEU-002", 1)])
    post_withdrawal(api_client, order, token, withdrawal_body([{"sku": "KEU-001", "quantity": 1}]))
    rest = post_withdrawal(api_client, order, token, withdrawal_body(reason="viss pārējais"))
    assert rest.status_code == 201
    withdrawal = Withdrawal.objects.get(pk=rest.json()["id"])
    assert sorted(withdrawal.lines.values_list("order_line__sku", "quantity")) == [
        ("KEU-001", 1),
        ("KEU-002", 1),
    ]
    assert withdrawal.includes_delivery_fee
    nothing = post_withdrawal(api_client, order, token, withdrawal_body(reason="vēl"))
    assert nothing.json()["code"] == "nothing_to_withdraw"


# --- Double submit ---------------------------------------------------------------------------


def test_double_submit_creates_one_withdrawal(api_client):
    order, token = delivered_order()
    first = post_withdrawal(api_client, order, token, withdrawal_body())
    again = post_withdrawal(api_client, order, token, withdrawal_body())
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    assert Withdrawal.objects.count() == 1
    assert Refund.objects.filter(order=order).count() == 1


def test_idempotency_key_replays_the_first_answer(api_client):
    order, token = delivered_order([("KEU-001", 1), ("KEU-002", 1)])
    body = withdrawal_body([{"sku": "KEU-001", "quantity": 1}])
    first = post_withdrawal(api_client, order, token, body, HTTP_IDEMPOTENCY_KEY="k-1")
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1)):
        again = post_withdrawal(api_client, order, token, body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    other = post_withdrawal(
        api_client,
        order,
        token,
        withdrawal_body([{"sku": "KEU-002", "quantity": 1}]),
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert other.status_code == 409
    assert Withdrawal.objects.count() == 1


# --- Access ----------------------------------------------------------------------------------


def test_withdrawal_endpoints_need_the_orders_token_or_owner(api_client):
    order, token = delivered_order()
    assert post_withdrawal(api_client, order, "wrong", withdrawal_body()).status_code == 404
    created = post_withdrawal(api_client, order, token, withdrawal_body()).json()
    url = f"/api/withdrawals/{created['id']}/"
    assert api_client.get(url).status_code == 404
    assert api_client.get(url, HTTP_X_ORDER_TOKEN="wrong").status_code == 404
    _other, other_token = delivered_order(customer={"email": "other@example.lv"})
    assert api_client.get(url, HTTP_X_ORDER_TOKEN=other_token).status_code == 404
    shown = api_client.get(url, HTTP_X_ORDER_TOKEN=token)
    assert shown.status_code == 200
    body = shown.json()
    assert body["order"] == order.number
    assert body["refund"]["status"] == "pending"
    assert body["channel"] == "api"
    assert api_client.get("/api/withdrawals/999999/", HTTP_X_ORDER_TOKEN=token).status_code == 404


def test_created_answer_has_the_contract_fields(api_client):
    order, token = delivered_order()
    response = post_withdrawal(api_client, order, token, withdrawal_body())
    assert set(response.json()) >= {
        "id",
        "status",
        "received_at",
        "return_deadline",
        "refund_due_date",
        "refund_amount",
        "return_code",
    }


# --- R19: the acknowledgement ----------------------------------------------------------------


def test_r19_acknowledgement_with_the_statement_and_the_time_received(
    api_client, django_capture_on_commit_callbacks
):
    """R19: after commit, through the outbox, in Latvian with English: the statement's
    content (order, goods, IBAN, holder, reason) and the date and time received."""
    order_obj, order_token = delivered_order(
        [("KEU-001", 1), ("KEU-002", 1)], delivered_at=riga(2026, 11, 19, 9, 0)
    )
    mail.outbox.clear()
    with (
        time_machine.travel(riga(2026, 11, 20, 14, 5, 7), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post_withdrawal(
            api_client,
            order_obj,
            order_token,
            withdrawal_body([{"sku": "KEU-002", "quantity": 1}], reason="Neder krāsa"),
        )
    assert response.status_code == 201
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["anna@example.lv"]
    assert order_obj.number in email.subject
    body = email.body
    assert "20.11.2026 14:05:07" in body  # the date and time received, Riga time
    assert "KEU-002" in body and "KEU-001" not in body
    assert IBAN in body and HOLDER in body and "Neder krāsa" in body
    assert "Received on" in body  # English follows the Latvian text
    assert body.index("English") > 0
    assert "/withdrawals/" in body and "token=" in body


def test_r19_acknowledgement_for_a_staff_entry_too(django_capture_on_commit_callbacks):
    from returns.withdrawals.services import receive_withdrawal

    order, _token = delivered_order()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        receive_withdrawal(
            order_id=order.pk,
            lines=[],
            iban=IBAN,
            account_holder=HOLDER,
            channel=WithdrawalChannel.STAFF,
            received_at=order.delivered_at + timedelta(hours=12),
            staff_note="phone call",
        )
    assert len(mail.outbox) == 1
    received = (order.delivered_at + timedelta(hours=12)).astimezone(RIGA)
    assert received.strftime("%d.%m.%Y %H:%M:%S") in mail.outbox[0].body


# --- R21 through the API ---------------------------------------------------------------------


def test_r21_partial_withdrawals_refund_the_fee_only_with_the_last_line(api_client):
    """R21: lines of EUR 20.00 and 10.00 with a EUR 2.00 fee: withdrawing the 10.00 line
    refunds 10.00, then the 20.00 line refunds 22.00 (the Refund rows show it)."""
    order, token = delivered_order(
        [("KEU-020", 1), ("KEU-010", 1)],
        prices={"KEU-020": Decimal("20.00"), "KEU-010": Decimal("10.00")},
    )
    assert (order.delivery_fee, order.total) == (Decimal("2.00"), Decimal("32.00"))
    first = post_withdrawal(
        api_client, order, token, withdrawal_body([{"sku": "KEU-010", "quantity": 1}])
    )
    second = post_withdrawal(
        api_client, order, token, withdrawal_body([{"sku": "KEU-020", "quantity": 1}])
    )
    assert (first.json()["refund_amount"], second.json()["refund_amount"]) == ("10.00", "22.00")
    rows = list(
        Refund.objects.filter(order=order)
        .order_by("pk")
        .values_list("amount", "reason", "status", "iban")
    )
    assert rows == [
        (Decimal("10.00"), RefundReason.WITHDRAWAL, RefundStatus.PENDING, IBAN),
        (Decimal("22.00"), RefundReason.WITHDRAWAL, RefundStatus.PENDING, IBAN),
    ]


def test_r21_free_delivery_order_one_of_two_lines(api_client):
    """R21: a EUR 60.00 order with free delivery, one of two lines withdrawn: 30.00."""
    order, token = delivered_order(
        [("KEU-030", 1), ("KEU-031", 1)],
        prices={"KEU-030": Decimal("30.00"), "KEU-031": Decimal("30.00")},
    )
    assert (order.total, order.delivery_fee) == (Decimal("60.00"), Decimal("0.00"))
    response = post_withdrawal(
        api_client, order, token, withdrawal_body([{"sku": "KEU-031", "quantity": 1}])
    )
    assert response.json()["refund_amount"] == "30.00"
    assert Refund.objects.get(order=order).amount == Decimal("30.00")


def test_r21_due_14_calendar_days_after_the_statement(api_client):
    order, token = delivered_order(delivered_at=riga(2026, 11, 19, 9, 0))
    with time_machine.travel(riga(2026, 11, 20, 23, 30), tick=False):
        response = post_withdrawal(api_client, order, token, withdrawal_body())
    assert response.json()["refund_due_date"] == "2026-12-04"
    assert response.json()["return_deadline"] == "2026-12-04T23:59:59.999999+02:00"
    assert Refund.objects.get(order=order).due_date == date(2026, 12, 4)


def test_status_values_are_the_contract():
    assert set(WithdrawalStatus.values) == {
        "received",
        "goods_in_transit",
        "goods_received",
        "inspected",
        "refunded",
        "rejected",
    }


def test_an_id_too_big_for_the_database_is_just_not_found(api_client):
    _order, token = delivered_order()
    huge = "/api/withdrawals/99999999999999999999999/"
    assert api_client.get(huge, HTTP_X_ORDER_TOKEN=token).status_code == 404
