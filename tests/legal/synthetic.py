"""A synthetic history of orders aged through the years, bulk-created (not through checkout)
for the retention tests and `bench/retention_bench.py`.

Every order gets personal values of its own (name, email, phone, address, payer and
refund IBANs), a line, an invoice, most a payment, some a refund, a consent, a legal
hold; django-simple-history copies for orders, invoices, payments and refunds; an email
in the outbox. No ledger: the sweep's backfill builds it, as for orders that predate it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from simple_history.utils import bulk_create_with_history

ORIGINAL_POSTCODE = "LV-1050"


@dataclass
class History:
    order_ids: list[int]
    first_day: date
    last_day: date


def _moment(rng: random.Random, start: date, end: date) -> datetime:
    span = (end - start).days
    day = start + timedelta(days=rng.randint(0, max(span, 0)))
    return datetime(
        day.year, day.month, day.day, rng.randint(6, 20), rng.randint(0, 59), tzinfo=UTC
    )


def personal(i: int) -> dict[str, str]:
    return {
        "first_name": f"Vārds{i}",
        "last_name": f"Uzvārds{i}",
        "email": f"person{i}@example.lv",
        "phone": f"+3712{i:07d}",
        "street": f"Iela {i}",
        "city": f"Pilsēta{i}",
        "postal_code": ORIGINAL_POSTCODE,
        "payer_name": f"Maksātājs{i}",
        "iban": f"LV{10 + i % 89:02d}BANK{i:013d}",
        "holder": f"Konta Turētājs{i}",
    }


def build_history(
    count: int,
    *,
    first_day: date = date(2019, 1, 1),
    last_day: date = date(2026, 6, 30),
    seed: int = 7,
    open_share: float = 0.08,
    batch_size: int = 2000,
) -> History:
    from delivery.models import DeliveryTariff
    from legal.models import Consent, LegalHold, PrivacyPolicyVersion, TermsVersion
    from orders.models import Invoice, Order, OrderLine, Payment, Refund
    from shop.calendar import riga_date
    from shop.models import OutboxMessage, Product

    rng = random.Random(seed)
    terms, _ = TermsVersion.objects.get_or_create(
        version="2018-01",
        defaults={
            "effective_from": datetime(2018, 1, 1, tzinfo=UTC),
            "text_lv": "T",
            "text_en": "T",
        },
    )
    policy, _ = PrivacyPolicyVersion.objects.get_or_create(
        version="2018-01",
        defaults={
            "effective_from": datetime(2018, 1, 1, tzinfo=UTC),
            "text_lv": "P",
            "text_en": "P",
        },
    )
    tariff = DeliveryTariff.objects.order_by("pk").first() or DeliveryTariff.objects.create(
        fee=Decimal("2.00"),
        free_above=Decimal("50.00"),
        effective_from=datetime(2018, 1, 1, tzinfo=UTC),
    )
    product, _ = Product.objects.get_or_create(
        sku="SYN-001", defaults={"name_lv": "Šampūns", "price": Decimal("10.00"), "stock": 0}
    )
    start_pk = (Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    order_ids: list[int] = []
    for offset in range(0, count, batch_size):
        size = min(batch_size, count - offset)
        orders = []
        for n in range(size):
            i = start_pk + offset + n
            p = personal(i)
            placed = _moment(rng, first_day, last_day)
            roll = rng.random()
            times = {"placed_at": placed}
            if roll < open_share:
                status = rng.choice(["placed", "paid", "shipped"])
                if status != "placed":
                    times["paid_at"] = placed + timedelta(days=1)
                if status == "shipped":
                    times["shipped_at"] = placed + timedelta(days=2)
            elif roll < 0.30:
                status = "cancelled"
                times["cancelled_at"] = placed + timedelta(days=rng.randint(1, 10))
            else:
                status = "delivered" if rng.random() < 0.7 else "closed"
                times["paid_at"] = placed + timedelta(days=1)
                times["shipped_at"] = placed + timedelta(days=2)
                times["delivered_at"] = placed + timedelta(days=rng.randint(3, 20))
                if status == "closed":
                    times["closed_at"] = times["delivered_at"] + timedelta(days=20)
            courier = rng.random() < 0.5
            orders.append(
                Order(
                    pk=i,
                    number=f"S{i:07d}",
                    status=status,
                    cancel_reason="unpaid" if status == "cancelled" else "",
                    access_token_hash="x" * 64,
                    terms_version=terms,
                    capacity="adult",
                    first_name=p["first_name"],
                    last_name=p["last_name"],
                    email=p["email"],
                    phone=p["phone"],
                    delivery_method="omniva_courier" if courier else "omniva_parcel_machine",
                    parcel_machine_name="" if courier else f"Pakomāts {i % 50}",
                    street=p["street"] if courier else "",
                    city=p["city"] if courier else "",
                    postal_code=p["postal_code"] if courier else "",
                    tariff=tariff,
                    goods_total=Decimal("10.00"),
                    delivery_fee=Decimal("2.00"),
                    total=Decimal("12.00"),
                    contact_deadline=placed + timedelta(days=3),
                    payment_due_at=placed + timedelta(days=5),
                    contact_established_at=times.get("paid_at"),
                    **times,
                )
            )
        bulk_create_with_history(orders, Order, batch_size=1000)
        OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order_id=o.pk,
                    product=product,
                    sku="SYN-001",
                    name_lv="Šampūns",
                    unit_price=Decimal("10.00"),
                    vat_rate=Decimal("21.00"),
                    quantity=1,
                    line_total=Decimal("10.00"),
                )
                for o in orders
            ],
            batch_size=1000,
        )
        invoices, payments, refunds, consents, messages, holds = [], [], [], [], [], []
        for o in orders:
            p = personal(o.pk)
            issued = o.placed_at
            invoices.append(
                Invoice(
                    order_id=o.pk,
                    number=f"SYN-{issued.year}-{o.pk:07d}",
                    series="SYN",
                    year=issued.year,
                    sequence=o.pk,
                    issued_at=issued,
                    issue_date=riga_date(issued),
                    due_date=riga_date(issued) + timedelta(days=7),
                    seller={"name": "SIA Orange Cosmetic"},
                    buyer_name=f"{p['first_name']} {p['last_name']}",
                    buyer_address=f"{p['street']}, {p['city']}",
                    total=Decimal("12.00"),
                )
            )
            if o.paid_at:
                payments.append(
                    Payment(
                        order_id=o.pk,
                        amount=Decimal("12.00"),
                        method="bank_transfer",
                        received_at=o.paid_at,
                        payer_name=p["payer_name"],
                        payer_iban=p["iban"],
                    )
                )
                if rng.random() < 0.15:
                    # Some refunds come a year or more later (a late claim).
                    late = rng.random() < 0.3
                    created = o.paid_at + timedelta(days=rng.randint(400, 800) if late else 10)
                    refunds.append(
                        Refund(
                            order_id=o.pk,
                            amount=Decimal("2.00"),
                            reason="staff",
                            status="settled",
                            iban=p["iban"],
                            account_holder=p["holder"],
                            due_date=riga_date(created) + timedelta(days=14),
                            created_at=created,
                            sent_at=created + timedelta(days=1),
                            settled_at=created + timedelta(days=2),
                        )
                    )
            if rng.random() < 0.2:
                withdrawn = None
                if rng.random() < 0.5:
                    withdrawn = o.placed_at + timedelta(days=rng.randint(10, 900))
                consents.append(
                    Consent(
                        email=p["email"],
                        order_id=o.pk,
                        purpose="marketing_email",
                        given_at=o.placed_at,
                        withdrawn_at=withdrawn,
                        withdrawn_via="api" if withdrawn else "",
                        keep_until=riga_date(withdrawn) if withdrawn else None,
                        policy_version=policy,
                        source="checkout",
                    )
                )
            messages.append(
                OutboxMessage(
                    topic="email.send",
                    payload={
                        "to": [p["email"]],
                        "subject": f"Order {o.number} received",
                        "body": f"Hello, {p['first_name']}!",
                        "template": "order_placed",
                        "attachments": [],
                    },
                    created_at=o.placed_at,
                    available_at=o.placed_at,
                    delivered_at=o.placed_at + timedelta(seconds=5),
                    attempts=1,
                )
            )
            if rng.random() < 0.005:
                opened = o.placed_at + timedelta(days=30)
                closed = None if rng.random() < 0.5 else opened + timedelta(days=120)
                holds.append(
                    LegalHold(order_id=o.pk, reason="dispute", opened_at=opened, closed_at=closed)
                )
        bulk_create_with_history(invoices, Invoice, batch_size=1000)
        bulk_create_with_history(payments, Payment, batch_size=1000)
        if refunds:
            bulk_create_with_history(refunds, Refund, batch_size=1000)
        Consent.objects.bulk_create(consents, batch_size=1000)
        OutboxMessage.objects.bulk_create(messages, batch_size=1000)
        LegalHold.objects.bulk_create(holds)
        order_ids.extend(o.pk for o in orders)
    return History(order_ids=order_ids, first_day=first_day, last_day=last_day)
