"""camt.053 import benchmark (DESIGN.md section 12: 50k entries under 30 s; re-import
changes nothing).

    DJANGO_DEBUG=true .venv/bin/python bench/camt_bench.py [--entries 50000] [--orders 200]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop_h1 DJANGO_DEBUG=true \
        .venv/bin/python bench/camt_bench.py

Runs against a throw-away test database of the configured engine (never the dev
database): places `--orders` real orders, writes a camt.053.001.02 file whose credits pay
those orders and are otherwise unknown payments (a third of them with invoice-like numbers
that do not exist), imports it, then imports it again (the same file, and the same credits
in a different file) and checks that nothing changed. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
os.environ.setdefault("EMAIL_URL", "memorymail://")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _credits(orders, count: int, day):
    from orders import camt

    credits = []
    for i, (order, invoice_number) in enumerate(orders):
        credits.append(
            camt.OutgoingCredit(
                amount=order.total,
                booking_date=day,
                reference=f"BENCH-PAY-{i:06d}",
                debtor_name=f"Payer {i}",
                debtor_iban="LV80BANK0000435195001",
                remittance_info=f"Rekins {invoice_number}",
            )
        )
    for i in range(count - len(credits)):
        if i % 3 == 0:
            text = f"Rekins KEU-{day.year}-{900000 + i:06d}"  # looks like one, does not exist
        else:
            text = f"Payment {i} for services, thank you"
        credits.append(
            camt.OutgoingCredit(
                amount=Decimal(i % 5000 + 1) / 100 + 1,
                booking_date=day,
                reference=f"BENCH-{i:08d}",
                debtor_name=f"Payer {i}",
                debtor_iban="LV80BANK0000435195001",
                remittance_info=text,
            )
        )
    return credits


def _snapshot():
    from orders.models import BankEntry, BankStatement, Order, Payment, Refund
    from shop.models import OutboxMessage

    return (
        BankStatement.objects.count(),
        BankEntry.objects.count(),
        BankEntry.objects.filter(status="matched").count(),
        Payment.objects.count(),
        Refund.objects.count(),
        Order.objects.filter(status="paid").count(),
        OutboxMessage.objects.count(),
    )


def run(entries: int, orders_count: int, workdir: Path) -> dict[str, float | int | str]:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from orders import camt
    from orders.services import bank
    from shop.selectors import today_in_riga
    from tests.factories import ProductFactory, place_test_order

    day = today_in_riga()
    started = time.perf_counter()
    ProductFactory(sku="BENCH-001", price=Decimal("19.90"), stock=orders_count + 1)
    orders = []
    for _ in range(orders_count):
        placed = place_test_order([("BENCH-001", 1)], prices={"BENCH-001": Decimal("19.90")})
        orders.append((placed.order, placed.order.invoices.get().number))
    seeded = time.perf_counter() - started

    credits = _credits(orders, entries, day)
    path = workdir / "bench-camt053.xml"
    path.write_bytes(
        camt.build_camt053(
            account_iban=settings.SHOP["SELLER_IBAN"],
            statement_id="BENCH-1",
            created_at=timezone.localtime(),
            credits=credits,
        )
    )
    again_path = workdir / "bench-camt053-again.xml"  # same credits, other bytes
    again_path.write_bytes(
        camt.build_camt053(
            account_iban=settings.SHOP["SELLER_IBAN"],
            statement_id="BENCH-2",
            created_at=timezone.localtime() + timedelta(hours=1),
            credits=credits,
        )
    )

    started = time.perf_counter()
    document = camt.parse(path)
    parse_seconds = time.perf_counter() - started
    assert len(document.credits) == entries

    started = time.perf_counter()
    first = bank.import_statement_file(path=path)
    import_seconds = time.perf_counter() - started
    after_first = _snapshot()

    started = time.perf_counter()
    same_file = bank.import_statement_file(path=path)
    same_file_seconds = time.perf_counter() - started
    after_same_file = _snapshot()

    started = time.perf_counter()
    other_file = bank.import_statement_file(path=again_path)
    other_file_seconds = time.perf_counter() - started
    after_other_file = _snapshot()

    unchanged = after_first == after_same_file and after_first[1:] == after_other_file[1:]
    return {
        "database": connection.vendor,
        "entries": entries,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "orders_seeded_s": round(seeded, 1),
        "parse_s": round(parse_seconds, 2),
        "import_s": round(import_seconds, 2),
        "entries_per_s": int(entries / import_seconds),
        "new": first.new,
        "matched": first.matched,
        "unmatched": first.unmatched,
        "reimport_same_file_s": round(same_file_seconds, 3),
        "reimport_same_file_new": same_file.new,
        "reimport_same_credits_other_file_s": round(other_file_seconds, 2),
        "reimport_other_file_new": other_file.new,
        "reimport_other_file_duplicate": other_file.duplicate,
        "reimport_changed_nothing": str(unchanged),
        "peak_rss_mb": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> dict[str, float | int | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from shop.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    setup_test_environment()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings.MEDIA_ROOT = str(workdir / "media")
        if connection.vendor == "sqlite":
            # A file, like production, not the in-memory test database.
            connection.settings_dict["TEST"]["NAME"] = str(workdir / "bench.sqlite3")
        old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            figures = run(args.entries, args.orders, workdir)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    return figures


if __name__ == "__main__":
    main()
