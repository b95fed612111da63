"""Wiring for the reliability tests (issue 9, DESIGN.md section 12).

- `shop_ready`: what checkout needs, committed (transactional tests flush the tables,
  data-migration rows too, so VAT rates and the delivery tariff are made here).
- `run_parallel`: many attempts on real threads, each thread with its own database
  connection, all released at once by a barrier.
- `figure`: a measured figure, printed in the "reliability figures" section at the end of
  the pytest run (docs/reliability.md lists them with the command for each).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    TermsVersionFactory,
)

THREAD_TIMEOUT = 180  # seconds for all threads of one test to finish
# PostgreSQL's default max_connections is 100 and other processes share the server, so
# the attempts run on at most this many connections at once (each thread holds one).
MAX_CONNECTIONS = 48

_figures: list[tuple[str, str]] = []


@pytest.fixture
def figure():
    def record(name: str, value: str) -> None:
        _figures.append((name, value))

    return record


def pytest_terminal_summary(terminalreporter):
    if not _figures:
        return
    terminalreporter.section("reliability figures")
    for name, value in _figures:
        terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def shop_ready(transactional_db):
    from delivery.models import DeliveryTariff
    from shop.models import VatRate

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


def run_parallel(
    attempts: int, work: Callable[[int], Any], *, workers: int = MAX_CONNECTIONS
) -> list[tuple[str, Any]]:
    """Run work(0) ... work(attempts - 1) on `workers` real threads released together;
    ("ok", value) or ("error", exception) per attempt, in attempt order."""
    workers = min(workers, attempts)
    start = threading.Barrier(workers)
    numbers = itertools.count()
    take = threading.Lock()
    results: list[tuple[str, Any]] = [("error", RuntimeError("did not run"))] * attempts

    def target() -> None:
        try:
            start.wait(timeout=60)
            while True:
                with take:
                    index = next(numbers)
                if index >= attempts:
                    return
                try:
                    results[index] = ("ok", work(index))
                except Exception as exc:
                    results[index] = ("error", exc)
        finally:
            connection.close()  # each thread has its own connection: give it back

    threads = [threading.Thread(target=target, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return results


def errors(results: list[tuple[str, Any]]) -> list[Exception]:
    return [value for status, value in results if status == "error"]
