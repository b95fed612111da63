"""Refunds under 200 parallel attempts (DESIGN.md section 12; R21, T4.3, T7.6).

One paid order; 200 attempts on real threads (48 connections at once) race to create
refunds, approve them, export them into SEPA files and fail some of them again (the bank
returned the money, which frees the amount). A watcher reads the order's refunds all the
while. Goal: what the refunds take back never exceeds what was paid, at no moment, and
every refund leaves in exactly one SEPA file.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from orders.models import Order, PaymentMethod, Refund, RefundReason, RefundStatus, SepaExport
from orders.services.payments import record_payment
from orders.services.refunds import (
    approve_refunds,
    create_refund,
    fail_refunds,
    refunded_total,
)
from orders.services.sepa import export_sepa_refunds
from shop.errors import Refused
from shop.money import money_sum
from tests.conftest import requires_postgresql
from tests.factories import place_test_order
from tests.reliability.conftest import errors, run_parallel

ATTEMPTS = 200
PAYER_IBAN = "LV80BANK0000435195001"
END_TO_END = re.compile(r"<EndToEndId>R(\d+)-")


def paid_order() -> Order:
    order = place_test_order([("RACE-1", 5)], prices={"RACE-1": Decimal("20.00")}).order
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban=PAYER_IBAN,
    )
    return Order.objects.get(pk=order.pk)


class Watcher(threading.Thread):
    """Reads the order's committed refunds in a loop on its own connection."""

    def __init__(self, order: Order) -> None:
        super().__init__(daemon=True)
        self.order = order
        self.stop = threading.Event()
        self.highest = Decimal("0.00")
        self.reads = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.highest = max(self.highest, refunded_total(self.order))
                self.reads += 1
        finally:
            connection.close()


@pytest.mark.postgres
@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_refunds_never_exceed_paid_under_200_parallel_attempts(shop_ready, figure):
    """Section 12: 200 parallel refund creations, approvals, SEPA sends and failures on
    one order: the refunds never take back more than was paid, each refund is exported
    exactly once."""
    order = paid_order()
    paid = order.total
    assert paid == Decimal("100.00")
    approver = User.objects.create_user("approver", is_staff=True)
    requested: list[Decimal] = []

    def attempt(index: int) -> str:
        kind = index % 20
        if kind == 19:  # the bank returned a sent refund: its amount is free again
            sent = list(
                Refund.objects.filter(order=order, status=RefundStatus.SENT)
                .order_by("pk")
                .values_list("pk", flat=True)[:1]
            )
            return f"failed {fail_refunds(refund_ids=sent, reason='account closed')}"
        if kind % 4 == 2:  # approve whatever is ready
            ready = Refund.objects.filter(order=order, status=RefundStatus.READY)
            return f"approved {len(approve_refunds(refund_ids=ready.values_list('pk', flat=True), by=approver))}"  # noqa: E501
        if kind % 4 == 3:  # export everything approved, like the daily command
            export = export_sepa_refunds()
            return f"exported {export.count if export else 0}"
        amount = Decimal(1 + index % 9)
        requested.append(amount)
        refund = create_refund(order_id=order.pk, amount=amount, reason=RefundReason.STAFF)
        approve_refunds(refund_ids=[refund.pk], by=approver)
        export_sepa_refunds(refund_ids=[refund.pk])
        return f"refund {refund.pk}"

    watcher = Watcher(order)
    watcher.start()
    try:
        results = run_parallel(ATTEMPTS, attempt)
    finally:
        watcher.stop.set()
        watcher.join(timeout=30)
    # Whatever is still waiting goes out now.
    approve_refunds(
        refund_ids=Refund.objects.filter(status=RefundStatus.READY).values_list("pk", flat=True),
        by=approver,
    )
    export_sepa_refunds()

    refused = errors(results)
    assert all(isinstance(exc, Refused) for exc in refused), [repr(e) for e in refused]
    assert {exc.code for exc in refused} <= {"refund_exceeds_paid"}
    assert sum(requested) > paid  # the limit was really reached
    refunds = list(Refund.objects.filter(order=order))
    committed = money_sum(r.amount for r in refunds if r.status != RefundStatus.FAILED)
    assert committed <= paid
    assert watcher.highest <= paid
    assert watcher.reads > 0

    # Every refund left in exactly one SEPA file, and the files add up.
    exports = list(SepaExport.objects.all())
    in_files = Counter(int(pk) for export in exports for pk in END_TO_END.findall(export.content))
    assert all(count == 1 for count in in_files.values()), in_files.most_common(3)
    assert set(in_files) == {r.pk for r in refunds}
    assert all(r.sepa_export_id is not None for r in refunds)
    assert sum(e.count for e in exports) == len(refunds)
    assert money_sum(e.total for e in exports) == money_sum(r.amount for r in refunds)
    for export in exports:
        mine = [r for r in refunds if r.sepa_export_id == export.pk]
        assert export.count == len(mine)
        assert export.total == money_sum(r.amount for r in mine)

    failed = sum(1 for r in refunds if r.status == RefundStatus.FAILED)
    figure(
        "refunds under 200 parallel attempts",
        f"paid {paid}, requested {money_sum(requested)}, refunded {committed} "
        f"(highest seen by the watcher in {watcher.reads} reads: {watcher.highest}); "
        f"{len(refunds)} refunds ({failed} failed and freed), each in exactly 1 of "
        f"{len(exports)} SEPA files; {len(refused)} attempts refused refund_exceeds_paid",
    )
