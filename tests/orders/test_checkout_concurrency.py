"""Checkout under concurrency (R8, R9): orders.services.checkout.place_order.

Real threads, each with its own database connection, against committed data
(`transaction=True`). Row locks only mean something on PostgreSQL, so the parallel tests
are skipped on SQLite; the rollback test runs on both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from delivery.models import DeliveryTariff
from orders import emails
from orders.models import Invoice, InvoiceCounter, Order, OrderLine
from orders.services.checkout import DeliveryData, LineRequest, place_order
from shop.calendar import riga_date
from shop.errors import Refused
from shop.models import Product, VatRate
from tests.conftest import requires_postgresql
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    ProductFactory,
    TermsVersionFactory,
    customer_data,
)

THREAD_TIMEOUT = 120  # seconds for all threads of one test to finish


@pytest.fixture
def shop_ready(transactional_db):
    """What checkout needs, committed by the main thread before any worker starts.

    A transactional test flushes the tables after it runs, data migrations' rows too, so
    the VAT rates and the delivery tariff are made here when missing."""
    for category, rate, effective_from in [
        ("standard", Decimal("21.00"), date(2012, 7, 1)),
        ("reduced", Decimal("12.00"), date(2011, 1, 1)),
    ]:
        VatRate.objects.get_or_create(
            category=category, effective_from=effective_from, defaults={"rate": rate}
        )
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )
    TermsVersionFactory()
    PrivacyPolicyVersionFactory()
    ParcelMachineFactory()


def checkout(*skus: str, first_name: str = "Anna"):
    return place_order(
        customer=customer_data(first_name=first_name),
        capacity="adult",
        delivery=DeliveryData(method="omniva_parcel_machine", parcel_machine_id="9001"),
        lines=[LineRequest(sku=sku, quantity=1) for sku in skus],
        accepted_terms_version="2026-01",
    )


def run_in_threads(count: int, work: Callable[[int], Any]) -> list[tuple[str, Any]]:
    """Run work(0) ... work(count - 1) at once in real threads; ("ok", value) or
    ("error", exception) per thread, in thread order."""
    start = threading.Barrier(count)
    results: list[tuple[str, Any]] = [("error", RuntimeError("did not run"))] * count

    def target(index: int) -> None:
        try:
            start.wait(timeout=30)
            results[index] = ("ok", work(index))
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()  # each thread has its own connection: give it back

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a checkout thread hung"
    return results


def expected_numbers(count: int) -> list[str]:
    series, year = settings.SHOP["INVOICE_SERIES"], riga_date(timezone.now()).year
    return [f"{series}-{year}-{n:06d}" for n in range(1, count + 1)]


def assert_gapless(count: int) -> None:
    """R9: invoices 1..count of the year, each number once, one invoice per order."""
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == expected_numbers(count)
    assert sorted(Invoice.objects.values_list("sequence", flat=True)) == list(range(1, count + 1))
    counter = InvoiceCounter.objects.get(
        series=settings.SHOP["INVOICE_SERIES"], year=riga_date(timezone.now()).year
    )
    assert counter.last_number == count
    assert Order.objects.count() == count
    assert all(order.invoices.count() == 1 for order in Order.objects.all())


def errors(results: list[tuple[str, Any]]) -> list[Exception]:
    return [value for status, value in results if status == "error"]


@pytest.mark.postgres
@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r9_fifty_parallel_checkouts_get_consecutive_gapless_invoice_numbers(shop_ready):
    """R9: 50 checkouts at once (each its own product, so they meet only at the invoice
    counter, which none of them has created yet) get 000001..000050, each once."""
    count = 50
    for index in range(count):
        ProductFactory(sku=f"PAR-{index:03d}", stock=5)

    results = run_in_threads(count, lambda i: checkout(f"PAR-{i:03d}").order.number)

    assert errors(results) == []
    assert_gapless(count)
    assert sorted(Invoice.objects.values_list("order__number", flat=True)) == sorted(
        value for _, value in results
    )


@pytest.mark.postgres
@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r8_stock_never_goes_negative_under_parallel_checkouts(shop_ready):
    """R8: stock 10, 30 buyers of one each at once: exactly 10 orders, 20 refusals naming
    the SKU, stock 0; the refused ones take no invoice number (R9)."""
    ProductFactory(sku="LAST-10", stock=10)

    results = run_in_threads(30, lambda i: checkout("LAST-10").order.number)

    placed = [value for status, value in results if status == "ok"]
    refused = errors(results)
    assert len(placed) == 10
    assert len(refused) == 20
    for exc in refused:
        assert isinstance(exc, Refused), repr(exc)
        assert exc.code == "insufficient_stock"
        assert exc.facts["short"] == [{"sku": "LAST-10", "requested": 1}]
    assert Product.objects.get(sku="LAST-10").stock == 0
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 10
    assert_gapless(10)


@pytest.mark.postgres
@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r8_opposite_line_order_neither_deadlocks_nor_oversells(shop_ready):
    """R8: products are locked in SKU order whatever the order of the lines, so buyers
    listing A, B and buyers listing B, A wait for each other instead of deadlocking."""
    ProductFactory(sku="PAIR-A", stock=10)
    ProductFactory(sku="PAIR-B", stock=10)

    def work(index: int) -> str:
        skus = ("PAIR-A", "PAIR-B") if index % 2 else ("PAIR-B", "PAIR-A")
        return checkout(*skus).order.number

    results = run_in_threads(24, work)

    refused = errors(results)
    assert all(isinstance(exc, Refused) for exc in refused), [repr(e) for e in refused]
    assert {exc.code for exc in refused} == {"insufficient_stock"}
    assert len(results) - len(refused) == 10
    assert Product.objects.get(sku="PAIR-A").stock == 0
    assert Product.objects.get(sku="PAIR-B").stock == 0
    assert_gapless(10)


@pytest.mark.django_db(transaction=True)
def test_r9_failed_checkout_gives_its_invoice_number_back(shop_ready, monkeypatch):
    """R9: a checkout that fails after its invoice number was allocated rolls back the
    counter with everything else (R8: its stock too); the next order gets that number."""
    ProductFactory(sku="KEU-001", stock=5)
    first = checkout("KEU-001")
    working = emails.order_placed

    def mail_queue_down(**kwargs):
        raise RuntimeError("the outbox is down")

    monkeypatch.setattr(emails, "order_placed", mail_queue_down)
    with pytest.raises(RuntimeError, match="outbox is down"):
        checkout("KEU-001")
    assert Order.objects.count() == 1
    assert Product.objects.get(sku="KEU-001").stock == 4

    monkeypatch.setattr(emails, "order_placed", working)
    second = checkout("KEU-001")

    first_number, second_number = expected_numbers(2)
    assert first.order.invoices.get().number == first_number
    assert second.order.invoices.get().number == second_number
    assert_gapless(2)


@pytest.mark.postgres
@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_r9_parallel_checkouts_that_fail_after_numbering_leave_no_gap(shop_ready, monkeypatch):
    """R9 under concurrency: every third checkout fails after it took a number; the
    others still get consecutive numbers with no hole."""
    working = emails.order_placed

    def flaky(**kwargs):
        if kwargs["order"].first_name == "Fail":
            raise RuntimeError("the outbox is down")
        return working(**kwargs)

    monkeypatch.setattr(emails, "order_placed", flaky)
    count = 30
    for index in range(count):
        ProductFactory(sku=f"FLK-{index:03d}", stock=1)

    results = run_in_threads(
        count,
        lambda i: checkout(f"FLK-{i:03d}", first_name="Fail" if i % 3 == 0 else "Anna"),
    )

    failed = errors(results)
    assert len(failed) == 10
    assert all(isinstance(exc, RuntimeError) for exc in failed), [repr(e) for e in failed]
    assert_gapless(20)
    assert Product.objects.filter(stock=1).count() == 10  # the failed ones reserved nothing
