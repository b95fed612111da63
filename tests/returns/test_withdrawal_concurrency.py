"""Concurrent statements for one order (PostgreSQL: row locks and real threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from orders.models import Refund
from returns.models import Withdrawal
from returns.withdrawals.services import RequestedLine, receive_withdrawal
from shop.errors import Refused
from tests.conftest import requires_postgresql
from tests.returns.withdrawal_support import HOLDER, IBAN, delivered_order, shop_ready

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]


def run_parallel(count: int, work) -> list:
    def wrapped(index: int):
        try:
            return work(index)
        except Refused as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(wrapped, range(count)))


def test_double_submit_under_concurrency_creates_one_withdrawal():
    shop_ready()
    order, _ = delivered_order([("KEU-001", 1)])
    results = run_parallel(
        8,
        lambda _i: (
            receive_withdrawal(
                order_id=order.pk, lines=[], iban=IBAN, account_holder=HOLDER, channel="web"
            ).withdrawal.pk
        ),
    )
    assert len(set(results)) == 1
    assert Withdrawal.objects.count() == 1
    assert Refund.objects.filter(order=order).count() == 1


def test_parallel_statements_never_withdraw_more_than_was_ordered():
    shop_ready()
    order, _ = delivered_order([("KEU-001", 3)])
    results = run_parallel(
        8,
        lambda i: (
            receive_withdrawal(
                order_id=order.pk,
                lines=[RequestedLine("KEU-001", 1)],
                iban=IBAN,
                account_holder=HOLDER,
                reason=f"statement {i}",  # all different: none is a double submit
                channel="api",
            ).withdrawal.pk
        ),
    )
    created = [r for r in results if isinstance(r, int)]
    assert len(created) == 3
    assert sorted(r for r in results if isinstance(r, str)) == ["quantity_exceeds_remaining"] * 5
    assert sum(Withdrawal.objects.values_list("lines__quantity", flat=True)) == 3
