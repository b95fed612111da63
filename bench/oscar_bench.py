"""Checkout next to django-oscar's `OrderCreator`, 5 lines, in process (section 12).

Both sides place orders of 5 lines (the same products, quantities and names for order i:
`bench.throughput.checkout_body(i)`), one at a time, in process, on PostgreSQL databases of
their own on the same server, in the same run:

- oscar: a minimal django-oscar project (`bench/oscar/`, pinned in
  `bench/oscar/requirements.txt`) in its own virtualenv (var/bench-oscar-venv, made with
  `python -m venv` and pip on first use and whenever the requirements change), run by
  `bench/oscar/worker.py` in a process of its own on `shop_bench_oscar`. What one order
  is, see that module: the basket is built first (measured apart), then the placement
  around `OrderCreator().place_order`.
- ours: `orders.services.checkout.place_order` in this process on
  `shop_bench_oscar_shop` (`bench.throughput.prepare_shop`), with the arguments
  `POST /api/orders/` passes and inside `transaction.atomic()` as the view runs it (no
  Idempotency-Key, no serializers); the confirmation email goes through the outbox and
  Celery's real broker (the runner's Redis db), nobody consumes it.

Both are warmed up, then measured for `seconds` each in interleaved slices of 5 s (ABBA
order), so what else the machine does weighs on both alike. Orders per second count the
time spent placing orders only (not making up the input); the queries are those of one
5-line order after the warm-up (order 1's products and customer again: no marketing
consent, products sold before), as Django's CaptureQueriesContext records them on both
sides (BEGIN, COMMIT and savepoints included).

If django-oscar cannot be installed or its side fails, the figures say n/a and why.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Figure, create_database, database_url, drop_database, note

VENV = ROOT / "var" / "bench-oscar-venv"
REQUIREMENTS = ROOT / "bench" / "oscar" / "requirements.txt"
OSCAR_DATABASE = "shop_bench_oscar"
SHOP_DATABASE = "shop_bench_oscar_shop"
PRODUCTS = 200
LINES = 5
SLICE = 5.0
GOAL = 3.0
QUERIED_ORDER = 1  # placed in the warm-up; no marketing consent
INSTALL_TIMEOUT = 900  # seconds for pip on first use


class Unavailable(Exception):
    """The oscar side cannot run; the message says why."""


# --- The oscar virtualenv and worker ---------------------------------------------------------


def venv_python() -> Path:
    """The oscar virtualenv's python, made or updated from the requirements if needed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    note(f"installing django-oscar into {VENV} (first use, or new requirements) ...")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(REQUIREMENTS)],
    ]  # fmt: skip
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{' '.join(step[:4])} failed: {exc}") from exc
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
            last = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"{' '.join(step[:4])} exited {done.returncode}: {last[:300]}")
    stamp.write_text(wanted + "\n")
    return python


class Worker:
    """`python -m bench.oscar.worker` in the oscar virtualenv: one JSON line each way."""

    def __init__(self, python: Path, database: str):
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "VIRTUAL_ENV", "PYTHON"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "bench.oscar.settings",
                "BENCH_OSCAR_DATABASE_URL": database_url(database),
                "PYTHONPATH": str(ROOT),
            }
        )
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close())
        self.process = subprocess.Popen(
            [str(python), "-m", "bench.oscar.worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.info = self._read()

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            self.log.seek(0)
            lines = [x for x in self.log.read().strip().splitlines() if x.strip()]
            raise Unavailable(
                f"the oscar worker exited {self.process.returncode}: "
                + (lines[-1][:300] if lines else "no output")
            )
        answer = json.loads(line)
        if "error" in answer:
            raise Unavailable(f"the oscar worker failed: {answer['error'][:300]}")
        return answer

    def call(self, cmd: str, **arguments) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **arguments}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("quit")
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait()
        self.log.close()


# --- Our side ----------------------------------------------------------------------------------


class Ours:
    """`place_order` in this process, called as `POST /api/orders/` calls it."""

    def __init__(self, machine: str):
        from django.contrib.auth.models import AnonymousUser

        self.machine = machine
        self.user = AnonymousUser()
        self.next = 0

    def arguments(self, i: int) -> dict:
        from bench.throughput import checkout_body
        from orders.services.checkout import CustomerData, DeliveryData, LineRequest

        body = checkout_body(i, self.machine)
        customer = body["customer"]
        return {
            "customer": CustomerData(
                first_name=customer["first_name"],
                last_name=customer["last_name"],
                email=customer["email"],
                phone=customer["phone"],
                is_consumer=customer["is_consumer"],
                company_name=customer.get("company_name") or "",
                company_reg_no=customer.get("company_reg_no") or "",
            ),
            "capacity": body["capacity"],
            "delivery": DeliveryData(
                method=body["delivery"]["method"],
                parcel_machine_id=body["delivery"].get("parcel_machine_id") or "",
            ),
            "lines": [LineRequest(sku=x["sku"], quantity=x["quantity"]) for x in body["lines"]],
            "accepted_terms_version": body["accepted_terms_version"],
            "consents": body.get("consents") or {},
            "user": self.user,
            "language": "lv",
        }

    def place(self, order: int | None = None):
        from django.db import transaction

        from orders.services.checkout import place_order

        if order is None:
            order, self.next = self.next, self.next + 1
        arguments = self.arguments(order)
        started = time.perf_counter()
        with transaction.atomic():
            placed = place_order(**arguments)
        return placed, time.perf_counter() - started

    def run(self, seconds: float) -> dict:
        orders, busy, cpu = 0, 0.0, 0.0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            cpu_before = time.process_time()
            _placed, elapsed = self.place()
            cpu += time.process_time() - cpu_before
            busy += elapsed
            orders += 1
        return {"orders": orders, "seconds": busy, "cpu_seconds": cpu}

    def queries(self, order: int) -> dict:
        """The statements of one more order with the data of order `order`."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from bench.oscar.statements import summarize

        with CaptureQueriesContext(connection) as captured:
            placed, _elapsed = self.place(order)
        return {
            "place": len(captured.captured_queries),
            "place_kinds": summarize(q["sql"] for q in captured.captured_queries),
            "lines": len(placed.lines),
        }

    def check(self) -> dict:
        from orders.models import Order, OrderLine

        return {"orders": Order.objects.count(), "lines": OrderLine.objects.count()}


# --- The run --------------------------------------------------------------------------------------


def unavailable(reason: str) -> list[Figure]:
    note(f"django-oscar comparison not measured: {reason}")
    return [
        Figure("django-oscar OrderCreator: orders/s", "n/a"),
        Figure(f"ours / oscar OrderCreator, {LINES} lines", "n/a", f">= {GOAL:g}", met=None),
    ]


def run_oscar(*, seconds: float, warmup: float) -> list[Figure]:
    try:
        python = venv_python()
    except Unavailable as exc:
        return unavailable(str(exc))
    except OSError as exc:
        return unavailable(f"cannot make {VENV}: {exc}")
    worker: Worker | None = None
    try:
        create_database(OSCAR_DATABASE)
        worker = Worker(python, OSCAR_DATABASE)
        note(
            f"django-oscar {worker.info['oscar']}, Django {worker.info['django']}, "
            f"Python {worker.info['python']}; migrating {OSCAR_DATABASE} ..."
        )
        prepared = worker.call("prepare", products=PRODUCTS)
        note(f"oscar database ready in {prepared['seconds']:.0f} s")
        return measure(worker, seconds=seconds, warmup=warmup)
    except Unavailable as exc:
        return unavailable(str(exc))
    finally:
        if worker is not None:
            worker.close()
        drop_database(OSCAR_DATABASE)
        drop_database(SHOP_DATABASE)


def measure(worker: Worker, *, seconds: float, warmup: float) -> list[Figure]:
    from collections import Counter

    from bench.common import use_database
    from bench.throughput import parcel_machine_zip, prepare_shop

    prepare_shop(SHOP_DATABASE)
    machine = parcel_machine_zip(SHOP_DATABASE)
    with use_database(SHOP_DATABASE):
        ours = Ours(machine)
        warmup = max(warmup, 1.0)  # order QUERIED_ORDER must have been placed
        worker.call("run", seconds=warmup)
        ours.run(warmup)
        # Order 1 again (no marketing consent, as 4 orders in 5; its products bought once
        # already, so oscar's analytics counters are updated, not created).
        oscar_queries = worker.call("queries", order=QUERIED_ORDER)
        our_queries = ours.queries(QUERIED_ORDER)
        with_consent = ours.queries(0)["place"]
        slices = max(1, math.ceil(seconds / SLICE))
        note(
            f"oscar and ours: {LINES}-line orders one at a time for {seconds:g} s each, "
            f"in {slices} interleaved slices ..."
        )
        oscar, mine = Counter(), Counter()
        for n in range(slices):
            for side in ("oscar", "ours") if n % 4 in (0, 3) else ("ours", "oscar"):
                if side == "oscar":
                    oscar.update(worker.call("run", seconds=seconds / slices))
                else:
                    mine.update(ours.run(seconds / slices))
        our_check = ours.check()
    oscar_check = worker.call("check")
    note(
        f"oscar: {oscar_check['orders']} orders, {oscar_check['lines']} lines, "
        f"{oscar_check['items']} items, {oscar_check['allocated']} allocated; "
        f"ours: {our_check['orders']} orders, {our_check['lines']} lines"
    )
    note(f"oscar placement statements: {fmt_kinds(oscar_queries['place_kinds'])}")
    note(f"oscar basket statements: {fmt_kinds(oscar_queries['basket_kinds'])}")
    note(f"our statements: {fmt_kinds(our_queries['place_kinds'])}")
    note(f"ours with a marketing consent (1 order in 5): {with_consent} statements")
    if oscar["orders"] and mine["orders"]:
        note(
            "CPU of the placing process per order: oscar "
            f"{oscar['place_cpu_seconds'] / oscar['orders'] * 1000:.0f} ms, ours "
            f"{mine['cpu_seconds'] / mine['orders'] * 1000:.0f} ms; wall time per order: oscar "
            f"{oscar['place_seconds'] / oscar['orders'] * 1000:.0f} ms, ours "
            f"{mine['seconds'] / mine['orders'] * 1000:.0f} ms (the difference is waiting: "
            "PostgreSQL, Redis, and the CPU shared with other processes)"
        )

    oscar_rate = rate(oscar["orders"], oscar["place_seconds"])
    oscar_full = rate(oscar["orders"], oscar["place_seconds"] + oscar["basket_seconds"])
    our_rate = rate(mine["orders"], mine["seconds"])
    ratio = our_rate / oscar_rate if oscar_rate else 0.0
    ratio_full = our_rate / oscar_full if oscar_full else 0.0
    both = oscar_queries["basket"] + oscar_queries["place"]
    return [
        Figure("django-oscar OrderCreator: orders/s", f"{oscar_rate:.1f}"),
        Figure(f"  queries per {LINES}-line order", str(oscar_queries["place"])),
        Figure("  with building the basket: orders/s", f"{oscar_full:.1f}"),
        Figure("  with building the basket: queries", str(both)),
        Figure("ours, place_order: orders/s", f"{our_rate:.1f}"),
        Figure(f"  queries per {LINES}-line order", str(our_queries["place"])),
        Figure(
            f"ours / oscar OrderCreator, {LINES} lines",
            f"{ratio:.2f}",
            f">= {GOAL:g}",
            met=ratio >= GOAL,
        ),
        Figure("ours / oscar with building the basket", f"{ratio_full:.2f}"),
    ]


def rate(orders: float, seconds: float) -> float:
    return orders / seconds if seconds else 0.0


def fmt_kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in kinds.items())
