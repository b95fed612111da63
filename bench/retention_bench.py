"""enforce_retention benchmark (DESIGN.md section 12: 100k expired orders under 60 s, peak
memory under 300 MB).

    DJANGO_DEBUG=true .venv/bin/python bench/retention_bench.py [--orders 100000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop_h7 DJANGO_DEBUG=true \\
        .venv/bin/python bench/retention_bench.py

Runs against a throw-away test database of the configured engine (never the dev
database): bulk-creates `--orders` orders placed in 2017-2018 (tests/legal/synthetic.py:
lines, invoices, payments, late refunds, consents, legal holds, history copies, an email
each), builds their ledgers as checkout and delivery would have, then runs
`manage.py enforce_retention` in a fresh process (its wall time includes starting Django;
its peak memory is its own) twice: the sweep, and a second sweep that must change
nothing. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
os.environ.setdefault("EMAIL_URL", "memorymail://")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _database_url(settings_dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


# The sweep runs in a fresh interpreter that reports its own peak memory (VmHWM: a
# forked child's ru_maxrss would count the parent's pages too).
_SWEEP = """
import runpy, sys
sys.argv = ["manage.py", "enforce_retention", "--no-progress", "--batch-size", sys.argv[1]]
try:
    runpy.run_path({manage!r}, run_name="__main__")
finally:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak_kb", line.split()[1])
"""


def _sweep(database_url: str, batch_size: int) -> tuple[float, int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "false",  # as in production: no query log kept in memory
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-not-a-secret"),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _SWEEP.format(manage=str(ROOT / "manage.py")), str(batch_size)],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    lines = done.stdout.splitlines()
    peak_kb = next(int(x.split()[1]) for x in lines if x.startswith("peak_kb"))
    report = "\n".join(x for x in lines if not x.startswith("peak_kb"))
    return seconds, peak_kb, report


def _counts():
    from legal.models import ErasureRecord, PersonalDataRecord
    from legal.registry import MARKER
    from orders.models import Order

    return {
        "orders": Order.objects.count(),
        "orders_erased": Order.objects.filter(email=MARKER).count(),
        "erasure_records": ErasureRecord.objects.count(),
        "ledger_rows_open": PersonalDataRecord.objects.filter(erased_at__isnull=True).count(),
    }


def run(orders: int, batch_size: int) -> dict[str, object]:
    from datetime import date

    from django.db import connection

    from legal.models import PersonalDataRecord
    from legal.services import ledger
    from orders.models import Order
    from tests.legal.synthetic import build_history

    started = time.perf_counter()
    build_history(orders, first_day=date(2017, 1, 1), last_day=date(2018, 6, 30), open_share=0.0)
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    ledger.recompute_ledger(order_ids=list(Order.objects.values_list("pk", flat=True)))
    ledger_built = time.perf_counter() - started
    rows = PersonalDataRecord.objects.count()
    with connection.cursor() as cursor:  # statistics, as a live database has them
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    connection.close()

    url = _database_url(connection.settings_dict)
    first_s, peak_kb, first_out = _sweep(url, batch_size)
    after_first = _counts()
    second_s, _peak, second_out = _sweep(url, batch_size)
    after_second = _counts()
    return {
        "database": connection.vendor,
        "orders": orders,
        "seeded_s": round(seeded, 1),
        "ledger_rows": rows,
        "ledger_build_s": round(ledger_built, 1),
        "sweep_s": round(first_s, 1),
        "sweep_peak_rss_mb": peak_kb // 1024,
        "orders_erased": after_first["orders_erased"],
        "erasure_records": after_first["erasure_records"],
        "ledger_rows_left": after_first["ledger_rows_open"],
        "second_sweep_s": round(second_s, 1),
        "second_sweep_changed_nothing": str(
            after_first == after_second and "nothing was past its date" in second_out
        ),
        "sweep_report": " | ".join(line.strip() for line in first_out.splitlines()[1:]),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10000)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    with tempfile.TemporaryDirectory() as tmp:
        if connection.vendor == "sqlite":
            connection.settings_dict["TEST"]["NAME"] = str(Path(tmp) / "bench.sqlite3")
        old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            figures = run(args.orders, args.batch_size)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    return figures


if __name__ == "__main__":
    main()
