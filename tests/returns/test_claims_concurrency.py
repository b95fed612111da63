"""Conformity-claim decisions under concurrency (R24): the order row, then the claim row,
are locked before any money is decided. Real threads against committed data; row locks
only mean something on PostgreSQL, so these run there only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from delivery.models import DeliveryTariff
from orders.models import Refund
from returns.claims import services
from returns.models.claims import Claim, ClaimStatus
from shop.errors import Refused
from shop.models import VatRate
from tests.conftest import requires_postgresql
from tests.returns.claims_support import delivered_order, file_claim, make_staff

pytestmark = [pytest.mark.postgres, requires_postgresql]
THREADS = 8


@pytest.fixture
def shop_ready(transactional_db):
    """A transactional test flushes data-migration rows too: VAT rates and the tariff."""
    VatRate.objects.get_or_create(
        category="standard", effective_from=date(2012, 7, 1), defaults={"rate": Decimal("21.00")}
    )
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )


def run_in_threads(count: int, work: Callable[[int], Any]) -> list[tuple[str, Any]]:
    start = threading.Barrier(count)
    results: list[tuple[str, Any]] = [("error", RuntimeError("did not run"))] * count

    def target(index: int) -> None:
        try:
            start.wait(timeout=30)
            results[index] = ("ok", work(index))
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


@pytest.mark.django_db(transaction=True)
def test_r24_parallel_price_reductions_on_one_line_never_exceed_what_was_paid(shop_ready):
    """R24: 8 claims on the same 10.00 line, each reduced by 10.00 at the same moment:
    exactly one is granted, the others are refused with the cap; 10.00 refunded in all."""
    order, _token = delivered_order(prices={"KEU-001": Decimal("10.00")})
    clerk = make_staff("clerk", "returns.decide_claim")
    claims = [file_claim(order, remedy="price_reduction") for _ in range(THREADS)]
    for claim in claims:
        services.record_obstacle(
            claim_id=claim.pk, kind="disproportionate", reason="Cheaper to reduce.", by=clerk
        )

    def work(index: int):
        claim = claims[index]
        return services.decide_price_reduction(
            claim_id=claim.pk,
            amounts={claim.lines.get().pk: Decimal("10.00")},
            reason="Full price back.",
            by=clerk,
        )

    results = run_in_threads(THREADS, work)
    granted = [value for status, value in results if status == "ok"]
    refused = [value for status, value in results if status == "error"]
    assert len(granted) == 1
    assert all(isinstance(e, Refused) for e in refused), refused
    assert {e.code for e in refused} == {"price_reduction_exceeds_paid"}
    assert sum(r.amount for r in Refund.objects.filter(order=order)) == Decimal("10.00")
    assert Claim.objects.filter(status=ClaimStatus.PRICE_REDUCTION).count() == 1


@pytest.mark.django_db(transaction=True)
def test_r25_one_decision_wins_when_clerks_decide_the_same_claim_at_once(shop_ready):
    order, _token = delivered_order()
    clerk = make_staff("clerk", "returns.decide_claim")
    claim = file_claim(order)

    def work(index: int):
        return services.reject_claim(claim_id=claim.pk, reason=f"Clerk {index}.", by=clerk)

    results = run_in_threads(THREADS, work)
    assert [status for status, _value in results].count("ok") == 1
    errors = [value for status, value in results if status == "error"]
    assert {getattr(e, "code", repr(e)) for e in errors} == {"claim_decision_not_allowed"}
    assert Claim.objects.get(pk=claim.pk).decisions.filter(kind="rejected").count() == 1
