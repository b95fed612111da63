"""Throughput of the checkout and the courier webhook next to bare baselines (section 12).

Both run against gunicorn (2 sync workers) with PostgreSQL and Redis, on a fresh database
`shop_bench_http`, with `concurrency` clients for `seconds` each on the real endpoint and
on its bare baseline (shop/bench_views.py): both warmed up, then measured in interleaved
slices of 5 s (ABBA order), so that whatever else the machine does weighs on both alike.

- checkout: POST /api/orders/ with 5 lines (random products of 200, quantities 1-3, a
  parcel machine, one customer in five gives a marketing consent, an Idempotency-Key as a
  careful client sends); the baseline writes the same order, lines, stock decrement,
  invoice and invoice lines with none of the rules.
- courier webhook: POST /api/webhooks/omniva/, signed, on parcels registered by hand:
  each gets accepted, in_transit, ready_for_pickup and delivered in turn (a quarter of
  the events deliver an order), and every 25th call repeats the previous event (the
  courier retrying: `duplicate`); the baseline checks the signature and stores the raw
  event once.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count

from bench.common import (
    Figure,
    commit_latency_ms,
    create_database,
    drop_database,
    migrate,
    note,
    use_database,
)
from bench.load import Request, Result, Server, drive

DATABASE = "shop_bench_http"
PRODUCTS = 200
LINES = 5
SLICE = 5.0  # seconds per interleaved slice
FIRST_NAMES = ["Anna", "Jānis", "Līga", "Mārtiņš", "Ilze", "Kristaps", "Elīna", "Artūrs"]
LAST_NAMES = ["Bērziņa", "Kalniņš", "Ozola", "Liepiņš", "Krūmiņa", "Zariņš", "Vītola"]


def prepare_shop(database: str = DATABASE) -> None:
    """A fresh database with the legal documents, parcel machines and a catalogue."""
    from shop import demo
    from shop.models import Product

    create_database(database)
    with use_database(database):
        migrate()
        demo.seed_legal_documents()
        demo.load_demo_parcel_machines()
        rng = random.Random(1)
        Product.objects.bulk_create(
            [
                Product(
                    sku=f"BENCH-{n:03d}",
                    name_lv=f"Šampūns {n}",
                    name_en=f"Shampoo {n}",
                    price=Decimal(rng.randrange(390, 3990)) / 100,
                    stock=100_000_000,
                )
                for n in range(PRODUCTS)
            ]
        )


def parcel_machine_zip(database: str = DATABASE) -> str:
    from delivery.models import ParcelMachine

    with use_database(database):
        return (
            ParcelMachine.objects.filter(active=True)
            .order_by("zip")
            .values_list("zip", flat=True)[0]
        )


def checkout_body(i: int, machine: str, lines: int = LINES) -> dict:
    rng = random.Random(i)
    skus = rng.sample(range(PRODUCTS), lines)
    return {
        "customer": {
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES),
            "email": f"customer{i}@example.lv",
            "phone": f"+37126{rng.randrange(10**6):06d}",
            "is_consumer": True,
            "company_name": None,
            "company_reg_no": None,
        },
        "capacity": "adult",
        "delivery": {"method": "omniva_parcel_machine", "parcel_machine_id": machine},
        "lines": [{"sku": f"BENCH-{n:03d}", "quantity": rng.randint(1, 3)} for n in skus],
        "accepted_terms_version": "2026-01",
        "consents": {"marketing_email": i % 5 == 0},
    }


def latency_figures(label: str, result: Result) -> list[Figure]:
    figures = [
        Figure(f"{label}: requests/s", f"{result.rps:.1f}"),
        Figure(f"{label}: latency p50", f"{result.percentile(50):.0f} ms"),
        Figure(f"{label}: latency p95", f"{result.percentile(95):.0f} ms"),
        Figure(f"{label}: latency p99", f"{result.percentile(99):.0f} ms"),
    ]
    if result.errors:
        figures.append(Figure(f"{label}: failed requests", str(result.errors), "0", met=False))
        note(f"{label}: first failure {result.first_error}")
    return figures


def numbered(make: Callable[[int], Request]) -> Callable[[int], Request]:
    counter = itertools.count()
    return lambda _i: make(next(counter))


def side_by_side(
    server: Server,
    real: tuple[str, Callable[[int], Request]],
    baseline: tuple[str, Callable[[int], Request]],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
) -> tuple[Result, Result]:
    """Warm both up, then measure both for `seconds` each, interleaved in slices of 5 s
    in ABBA order, so that whatever else the machine does weighs on both alike."""
    # One numbering per endpoint across warm-up and slices: no request is sent twice.
    real = (real[0], numbered(real[1]))
    baseline = (baseline[0], numbered(baseline[1]))
    for _label, make in (real, baseline):
        drive(server.base_url, make, concurrency=concurrency, seconds=warmup)
    slices = max(1, math.ceil(seconds / SLICE))
    note(
        f"{real[0]} and {baseline[0]}: {concurrency} clients for {seconds:g} s each, "
        f"in {slices} interleaved slices ..."
    )
    results = {real[0]: Result(seconds=0.0), baseline[0]: Result(seconds=0.0)}
    for n in range(slices):
        order = (real, baseline) if n % 4 in (0, 3) else (baseline, real)
        for label, make in order:
            part = drive(server.base_url, make, concurrency=concurrency, seconds=seconds / slices)
            results[label].merge(part)
    return results[real[0]], results[baseline[0]]


def run_checkout(*, concurrency: int, seconds: float, warmup: float) -> list[Figure]:
    prepare_shop()
    machine = parcel_machine_zip()
    commit_ms = commit_latency_ms(DATABASE)

    def real(i: int) -> Request:
        body = json.dumps(checkout_body(i, machine)).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        return "POST", "/api/orders/", body, headers

    def baseline(i: int) -> Request:
        body = json.dumps(checkout_body(i, machine)).encode()
        return "POST", "/bench/checkout/", body, {"Content-Type": "application/json"}

    try:
        with Server(DATABASE) as server:
            checkout, bare = side_by_side(
                server,
                ("checkout", real),
                ("baseline", baseline),
                concurrency=concurrency,
                seconds=seconds,
                warmup=warmup,
            )
    finally:
        drop_database(DATABASE)
    ratio = checkout.rps / bare.rps if bare.rps else 0.0
    return [
        *latency_figures(f"checkout {LINES} lines", checkout),
        *latency_figures("bare baseline (same rows)", bare),
        Figure("checkout / baseline", f"{ratio:.2f}", ">= 0.5", met=ratio >= 0.5),
        Figure("PostgreSQL commit of a small write (idle)", f"{commit_ms:.1f} ms"),
    ]


# --- The courier webhook ---------------------------------------------------------------------

WEBHOOK_SECRET = "bench-omniva-webhook-secret"  # noqa: S105


def sign(body: bytes, timestamp: int, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Omniva-Timestamp": str(timestamp),
        "X-Omniva-Signature": f"sha256={digest}",
    }


def webhook_available() -> bool:
    from django.urls import Resolver404, resolve

    try:
        match = resolve("/api/webhooks/omniva/")
    except Resolver404:
        return False
    return match.func.__name__ != "api_not_found"


COURIER_EVENTS = ["accepted", "in_transit", "ready_for_pickup", "delivered"]
POOL = 64  # shipments a round of events goes through before the next event name


def courier_event(i: int, first_order: int, shipments: int, prefix: str) -> bytes:
    """The i-th event: rounds of one event name over a pool of shipments, so each parcel
    gets accepted, in transit, ready for pickup and delivered in order; every 25th call
    repeats an earlier event (the courier retrying), which must answer `duplicate`."""
    from bench.dataset import barcode

    repeat = i % 25 == 24
    n = i - 1 if repeat else i
    pool, rest = divmod(n, POOL * len(COURIER_EVENTS))
    step, slot = divmod(rest, POOL)
    shipment = (pool * POOL + slot) % shipments
    event = COURIER_EVENTS[step]
    return json.dumps(
        {
            "event_id": f"{prefix}-{shipment}-{event}",
            "barcode": barcode(first_order + shipment),
            "event": event,
            "occurred_at": datetime.now(UTC).isoformat(),
            "location": "Rīga Origo Omniva pakomāts",
            "reason": "",
        }
    ).encode()


def run_webhook(*, concurrency: int, seconds: float, warmup: float) -> list[Figure]:
    from bench.common import setup_django

    setup_django()
    if not webhook_available():
        note("POST /api/webhooks/omniva/ does not exist yet (delivery/): nothing to measure.")
        return [Figure("courier webhook / baseline", "n/a", ">= 0.7", met=None)]
    from bench.dataset import Generator

    prepare_shop()
    # Enough parcels for every event of the run (about 200 events/s at most).
    shipments = int((seconds + warmup) * 200 / len(COURIER_EVENTS)) + POOL
    with use_database(DATABASE):
        from orders.models import Order

        now = datetime.now(UTC)
        first = (Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        Generator.add_orders(
            as_of=now, placed=now - timedelta(days=1), kinds=[("shipped", shipments)]
        )

    def real(i: int) -> Request:
        body = courier_event(i, first, shipments, "evt")
        return "POST", "/api/webhooks/omniva/", body, sign(body, int(time.time()))

    def baseline(i: int) -> Request:
        body = courier_event(i, first, shipments, "bare")
        return "POST", "/bench/webhook/", body, sign(body, int(time.time()))

    try:
        with Server(DATABASE, OMNIVA_WEBHOOK_SECRET=WEBHOOK_SECRET) as server:
            webhook, bare = side_by_side(
                server,
                ("courier webhook", real),
                ("baseline", baseline),
                concurrency=concurrency,
                seconds=seconds,
                warmup=warmup,
            )
        with use_database(DATABASE):
            from delivery.models import CourierEvent

            results = dict(
                CourierEvent.objects.filter(event_id__startswith="evt-")
                .values_list("result")
                .annotate(n=Count("pk"))
                .values_list("result", "n")
            )
            delivered = Order.objects.filter(status="delivered").count()
    finally:
        drop_database(DATABASE)
    note(f"courier webhook: stored events by result {results}; {delivered} orders delivered")
    ratio = webhook.rps / bare.rps if bare.rps else 0.0
    return [
        *latency_figures("courier webhook", webhook),
        *latency_figures("bare baseline (verify, insert)", bare),
        Figure("courier webhook / baseline", f"{ratio:.2f}", ">= 0.7", met=ratio >= 0.7),
    ]
