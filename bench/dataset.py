"""A million orders with realistic dates, written with PostgreSQL COPY (psycopg).

`ensure_template(orders=..., expired=...)` builds the database `shop_bench_1m` (or
`shop_bench_o<N>` for other sizes) once and reuses it while the generator version and
size match: the benchmarks clone it (`CREATE DATABASE ... TEMPLATE`) and run on the
clone, so every run starts from the same data.

The data, as of the moment `as_of` it was generated (stored in the database comment; the
benchmarks run "as of" that moment, so the data never ages):

- `expired` orders placed 30 to 26 months before, all delivered and closed: their
  contact and delivery data are past retention (delivery + 2 years + 2 months, R28);
- the rest over the last 26 months with a growing daily volume and a daytime rhythm,
  each living its life: contact (R12) or cancellation for no contact, payment by bank
  transfer (a matched bank entry) or card, or cancellation as unpaid (R10), customer
  cancellations, shipping, delivery, closing 15 days after delivery; the newest ones are
  still open, every open deadline is after `as_of`, so nothing is due;
- per order 1 to 5 lines, the invoice (gapless numbers per year) and its lines, the
  payment (one in five by card), a consent for one order in ten, a withdrawal of one
  line with its refund for 2 % of the delivered orders (settled and done, or still open
  when recent: an open withdrawal and an unsettled refund hold the order, R28), a
  conformity claim with a photo for 0.5 % (closed, or open when recent: a hold that
  lasts 3 years after closing), a restriction of processing (Art 18) for 0.1 % of all
  orders, the disclosure of the delivery data to Omniva (R27);
- the ledger of every order as legal's rules compute it from these facts, holds included.

History tables stay empty. Foreign keys are not checked during the load
(`session_replication_role = replica`); the generator writes consistent ids itself.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from psycopg.types.json import Jsonb

from bench.common import (
    create_database,
    database_exists,
    database_url,
    drop_database,
    migrate,
    note,
    use_database,
)
from shop.calendar import riga_date

GENERATOR_VERSION = 2  # 2: withdrawals, claims with photos, restrictions (issue 15)
NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PRODUCTS = 300
FIRST_NAMES = [
    "Anna", "Jānis", "Līga", "Mārtiņš", "Ilze", "Kristaps", "Elīna", "Artūrs", "Laura",
    "Edgars", "Zane", "Roberts", "Inese", "Andris", "Agnese", "Pēteris",
]  # fmt: skip
LAST_NAMES = [
    "Bērziņa", "Kalniņš", "Ozola", "Liepiņš", "Krūmiņa", "Zariņš", "Vītola", "Kļaviņš",
    "Jansone", "Balodis", "Eglīte", "Pētersons",
]  # fmt: skip
STREETS = ["Brīvības iela", "Elizabetes iela", "Tērbatas iela", "Lāčplēša iela", "Rīgas iela"]
CITIES = [("Rīga", "LV-10"), ("Daugavpils", "LV-54"), ("Liepāja", "LV-34"), ("Jelgava", "LV-30")]
# Riga local hour of placement: quiet at night, busiest in the evening.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 8, 8, 8, 8, 9, 9, 10, 11, 12, 12, 10, 6, 3]


@dataclass(frozen=True)
class Dataset:
    name: str
    as_of: datetime
    orders: int
    expired: int


def template_name(orders: int) -> str:
    return "shop_bench_1m" if orders == 1_000_000 else f"shop_bench_o{orders}"


def _comment(orders: int, expired: int, as_of: datetime) -> str:
    return f"v={GENERATOR_VERSION};orders={orders};expired={expired};as_of={as_of.isoformat()}"


def _read_comment(name: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(database_url(name)) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
    text = (row and row[0]) or ""
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


def ensure_template(*, orders: int, expired: int, regenerate: bool = False) -> Dataset:
    """The generated database: reused when it matches, else (re)generated."""
    name = template_name(orders)
    if not regenerate and database_exists(name):
        meta = _read_comment(name)
        if (
            meta.get("v") == str(GENERATOR_VERSION)
            and meta.get("orders") == str(orders)
            and meta.get("expired") == str(expired)
        ):
            with use_database(name):
                migrate()  # migrations added since it was generated
            note(f"reusing {name} ({orders:,} orders, generated {meta['as_of']})")
            return Dataset(name, datetime.fromisoformat(meta["as_of"]), orders, expired)
    note(f"generating {name}: {orders:,} orders (once; later runs reuse it) ...")
    started = time.perf_counter()
    create_database(name)
    try:
        with use_database(name):
            migrate()
            as_of = datetime.now(UTC).replace(second=0, microsecond=0)
            Generator(name, orders=orders, expired=expired, as_of=as_of).run()
    except BaseException:
        drop_database(name)
        raise
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(name), autocommit=True) as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(_comment(orders, expired, as_of))
            )
        )
    note(f"generated {name} in {time.perf_counter() - started:.0f} s")
    return Dataset(name, as_of, orders, expired)


# --- The personal-data ledger (R26), computed with legal's own rules ------------------------


class LedgerRows:
    """Each order's ledger rows as `legal.services.ledger.compute` would write them, from
    the generated facts through legal's pure rules (no queries): the ledger exists from
    checkout on, so a real database has it for every order. None when the legal app does
    not offer these names (the retention sweep then backfills the ledger itself)."""

    def __init__(self) -> None:
        from django.utils.translation import override

        from legal import registry, rules
        from legal.services import ledger

        self.rules = rules
        self.open_statuses = ledger.OPEN_STATUSES
        self.consents_code = ledger.CONSENTS
        presence = set(registry.presence_checks())
        self.categories = []
        self.with_consent = []
        self.with_claims = []  # KA10: once the order has a withdrawal or a claim
        for category in ledger.applicable_categories():
            with override("en"):  # stored in English, as ledger.compute does
                purpose = str(category.purpose)[:300]
            row = (category.code, purpose, category.rule, category.basis, category.basis_after)
            if category.code == self.consents_code:
                self.with_consent.append(row)
            elif category.code in presence:  # claims and withdrawals: when there are some
                self.with_claims.append(row)
            else:
                self.categories.append(row)

    @classmethod
    def build(cls) -> LedgerRows | None:
        try:
            return cls()
        except (ImportError, AttributeError) as exc:
            note(f"  no ledger rows generated ({type(exc).__name__}: {exc})")
            return None

    def hold(self, opened, closed=None):
        """A legal hold (R28) from two moments (closed None: still open)."""
        return self.rules.Hold(
            reason="bench",
            opened_on=riga_date(opened),
            closed_on=riga_date(closed) if closed is not None else None,
        )

    def rows(self, *, status: str, consent: bool, claims: bool = False, **facts):
        is_open = status in self.open_statuses
        order_facts = self.rules.OrderFacts(is_open=is_open, **facts)
        for code, purpose, rule, basis, basis_after in (
            [*self.categories, *self.with_claims] if claims else self.categories
        ):
            keep_until = self.rules.order_data_until(rule, order_facts)
            yield code, purpose, basis if is_open else basis_after, keep_until
        if consent:
            for code, purpose, _rule, basis, _after in self.with_consent:
                yield code, purpose, basis, None  # kept while the consent stands


# --- COPY writers ----------------------------------------------------------------------------


class Table:
    """COPY into a model's table: the given columns in order, every other column its
    field default (so fields added later by migrations do not break the generator)."""

    def __init__(self, conn, model, given: list[str], as_of: datetime):
        from django.db.models import JSONField
        from psycopg.types.json import Jsonb

        self.model = model
        fields = {f.attname: f for f in model._meta.concrete_fields}
        self.rest = []
        defaults = []
        for attname, field in fields.items():
            if attname in given:
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = as_of
            elif field.has_default():
                value = field.get_default()
            elif field.null:
                value = None
            else:
                value = field.get_default()
                if value is None:
                    raise ValueError(f"{model.__name__}.{attname} needs a value")
            if isinstance(field, JSONField) and value is not None:
                value = Jsonb(value)
            self.rest.append(field.column)
            defaults.append(value)
        columns = [fields[a].column for a in given] + self.rest
        self.defaults = tuple(defaults)
        self.cursor = conn.cursor()
        self.copy_cm = self.cursor.copy(
            f'COPY "{model._meta.db_table}" ({", ".join(columns)}) FROM STDIN'
        )
        self.copy = self.copy_cm.__enter__()
        self.rows = 0

    def write(self, values: tuple) -> None:
        self.copy.write_row(values + self.defaults)
        self.rows += 1

    def close(self) -> None:
        self.copy_cm.__exit__(None, None, None)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def barcode(order_id: int) -> str:
    """The Omniva barcode of an order's outbound parcel."""
    return f"CE{order_id:09d}LV"


def order_number(order_id: int) -> str:
    """8 characters from the checkout's alphabet, unique per id (an odd multiplier is a
    bijection modulo 32**8)."""
    value = (order_id * 0x9E3779B1) % (32**8)
    chars = []
    for _ in range(8):
        value, rest = divmod(value, 32)
        chars.append(NUMBER_ALPHABET[rest])
    return "".join(chars)


class Generator:
    def __init__(self, name: str, *, orders: int, expired: int, as_of: datetime):
        self.name = name
        self.orders = orders
        self.expired = expired
        self.as_of = as_of
        self.rng = random.Random(20260101)
        self.ids = {"line": 0, "invoice": 0, "invoice_line": 0, "payment": 0, "entry": 0,
                    "refund": 0, "consent": 0, "disclosure": 0, "statement": 0,
                    "ledger": 0, "shipment": 0, "withdrawal": 0, "withdrawal_line": 0,
                    "claim": 0, "claim_line": 0, "claim_photo": 0}  # fmt: skip
        self.invoice_sequence: dict[int, int] = {}
        self.statements: dict[date, int] = {}

    # Reference data, through the ORM.

    def reference_data(self, *, create: bool = True) -> None:
        from delivery.models import DeliveryTariff, ParcelMachine
        from legal.models import PrivacyPolicyVersion, TermsVersion
        from shop import demo
        from shop.calendar import LatvianCalendar
        from shop.models import Product

        if create:
            demo.seed_legal_documents()  # 2026-01, in force from 1 Jan 2026
            old_from = self.as_of - timedelta(days=31 * 31)
            TermsVersion.objects.create(
                version="2024-01", effective_from=old_from, text_lv="Noteikumi", text_en="Terms"
            )
            PrivacyPolicyVersion.objects.create(
                version="2024-01", effective_from=old_from, text_lv="Politika", text_en="Policy"
            )
            demo.load_demo_parcel_machines()
            rng = random.Random(7)
            Product.objects.bulk_create(
                [
                    Product(
                        sku=f"KEU-{n:03d}",
                        name_lv=f"Keune šampūns {n}",
                        name_en=f"Keune shampoo {n}",
                        price=Decimal(rng.randrange(390, 3990)) / 100,
                        stock=50_000,
                        sealed_hygiene=rng.random() < 0.3,
                    )
                    for n in range(PRODUCTS)
                ]
            )
        self.terms = list(
            TermsVersion.objects.order_by("effective_from").values_list("pk", "effective_from")
        )
        self.policy = dict(
            PrivacyPolicyVersion.objects.order_by("effective_from").values_list(
                "effective_from", "pk"
            )
        )
        self.machines = [
            (m.pk, ", ".join(p for p in [m.name, m.address, m.city] if p)[:300])
            for m in ParcelMachine.objects.order_by("pk")
        ]
        self.tariff = DeliveryTariff.objects.in_force(self.as_of).pk
        self.products = [
            (p.pk, p.sku, p.name_lv, p.name_en, int(p.price * 100), p.sealed_hygiene)
            for p in Product.objects.filter(active=True).order_by("pk")[:PRODUCTS]
        ]
        self.calendar = LatvianCalendar()
        self.ledger = LedgerRows.build()
        from django.conf import settings

        self.seller = settings.SHOP
        self.series = settings.SHOP["INVOICE_SERIES"]

    @lru_cache(maxsize=4096)  # noqa: B019  (one generator per process)
    def deadlines(self, day: date) -> tuple[datetime, datetime, date]:
        from shop.calendar import end_of_day

        contact = self.calendar.working_days_end(day, 3)
        due_day = self.calendar.add_working_days(day, 5)
        return contact, end_of_day(due_day), due_day

    # Time of placement.

    def placements(self) -> list[datetime]:
        """Sorted placement times: `expired` in months 30-26 back, the rest after."""
        rng = self.rng
        old_start = self.as_of - timedelta(days=913)  # 30 months
        old_end = self.as_of - timedelta(days=792 + 10)  # 26 months and 10 days
        new_start = self.as_of - timedelta(days=790)
        new_days = (self.as_of - new_start).days
        hours = list(range(24))
        times = []

        def at(day_start: datetime) -> datetime:
            hour = rng.choices(hours, HOUR_WEIGHTS)[0]
            # Riga is UTC+2/+3: shift the local hour to UTC roughly.
            return day_start + timedelta(hours=hour - 2, seconds=rng.randrange(3600))

        old_days = (old_end - old_start).days
        for _ in range(self.expired):
            times.append(at(old_start + timedelta(days=rng.randrange(old_days))))
        for _ in range(self.orders - self.expired):
            # Linear growth: the density at the end is 3x the density at the start.
            u = rng.random()
            x = (-1 + (1 + 8 * u) ** 0.5) / 2  # inverse CDF of (1 + 2x) / 2 on [0, 1]
            moment = at(new_start + timedelta(days=int(x * new_days)))
            times.append(min(moment, self.as_of - timedelta(minutes=1)))
        times.sort()
        return times

    # The load.

    def run(self) -> None:
        import psycopg

        self.reference_data()
        started = time.perf_counter()
        times = self.placements()
        note(f"  {len(times):,} placement times in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        self.open_tables()
        for order_id, placed_at in enumerate(times, start=1):
            self.order(order_id, placed_at, expired=order_id <= self.expired)
            if order_id % 200_000 == 0:
                note(f"  {order_id:,} orders written ({time.perf_counter() - started:.0f} s)")
        self.close_tables()
        note(
            "  rows: "
            + ", ".join(f"{t.model._meta.model_name} {t.rows:,}" for t in self.tables)
            + f" ({time.perf_counter() - started:.0f} s)"
        )
        started = time.perf_counter()
        with psycopg.connect(database_url(self.name), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        note(f"  VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")

    @classmethod
    def add_orders(cls, *, as_of: datetime, placed: datetime, kinds: list[tuple[str, int]]):
        """Add orders of forced kinds to the current database, placed from `placed` on:
        `no_contact` and `unpaid` (due now), `shipped` (a registered parcel each)."""
        from django.db import connection

        from orders.models import InvoiceCounter

        generator = cls(connection.settings_dict["NAME"], orders=0, expired=0, as_of=as_of)
        generator.reference_data(create=False)
        generator.invoice_sequence = dict(
            InvoiceCounter.objects.filter(series=generator.series).values_list(
                "year", "last_number"
            )
        )
        with connection.cursor() as cursor:
            for kind, table in ID_TABLES.items():
                cursor.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')  # noqa: S608
                generator.ids[kind] = cursor.fetchone()[0]
            cursor.execute("SELECT coalesce(max(id), 0) FROM orders_order")
            order_id = cursor.fetchone()[0]
        generator.open_tables()
        n = 0
        for force, count in kinds:
            for _ in range(count):
                order_id += 1
                n += 1
                generator.order(order_id, placed + timedelta(seconds=n * 7), expired=False,
                                force=force)  # fmt: skip
        generator.close_tables()
        with connection.cursor() as cursor:
            for table in ("orders_order", "orders_orderline", "delivery_shipment"):
                cursor.execute(f'ANALYZE "{table}"')

    @classmethod
    def add_due_orders(cls, dataset, *, no_contact: int, unpaid: int) -> None:
        """Orders placed two weeks before `as_of`, never confirmed or never paid."""
        cls.add_orders(
            as_of=dataset.as_of,
            placed=dataset.as_of - timedelta(days=14),
            kinds=[("no_contact", no_contact), ("unpaid", unpaid)],
        )

    def open_tables(self) -> None:
        """One connection per table: the COPYs stream side by side."""
        import psycopg

        from legal.models import Consent, Disclosure
        from orders.models import (
            BankEntry,
            BankStatement,
            Invoice,
            InvoiceLine,
            Order,
            OrderLine,
            Payment,
            Refund,
        )

        self.conns = []

        def table(model, given):
            conn = psycopg.connect(database_url(self.name))
            conn.execute("SET session_replication_role = replica")
            self.conns.append(conn)
            return Table(conn, model, given, self.as_of)

        self.t_order = table(Order, ORDER_COLUMNS)
        self.t_line = table(OrderLine, LINE_COLUMNS)
        self.t_invoice = table(Invoice, INVOICE_COLUMNS)
        self.t_invoice_line = table(InvoiceLine, INVOICE_LINE_COLUMNS)
        self.t_statement = table(BankStatement, STATEMENT_COLUMNS)
        self.t_entry = table(BankEntry, ENTRY_COLUMNS)
        self.t_payment = table(Payment, PAYMENT_COLUMNS)
        self.t_refund = table(Refund, REFUND_COLUMNS)
        self.t_consent = table(Consent, CONSENT_COLUMNS)
        self.t_disclosure = table(Disclosure, DISCLOSURE_COLUMNS)
        self.t_withdrawal = self.t_claim = None
        try:
            from returns.models import Claim, ClaimLine, ClaimPhoto, Withdrawal, WithdrawalLine
        except ImportError:
            note("  no withdrawals or claims generated (returns.models)")
        else:
            self.t_withdrawal = table(Withdrawal, WITHDRAWAL_COLUMNS)
            self.t_withdrawal_line = table(WithdrawalLine, WITHDRAWAL_LINE_COLUMNS)
            self.t_claim = table(Claim, CLAIM_COLUMNS)
            self.t_claim_line = table(ClaimLine, CLAIM_LINE_COLUMNS)
            self.t_claim_photo = table(ClaimPhoto, CLAIM_PHOTO_COLUMNS)
        self.t_shipment = None
        try:
            from delivery.models import Shipment
        except ImportError:
            note("  no shipments generated (delivery.models.Shipment does not exist)")
        else:
            self.t_shipment = table(Shipment, SHIPMENT_COLUMNS)
        if self.ledger is not None:
            from legal.models import PersonalDataRecord

            self.t_ledger = table(PersonalDataRecord, LEDGER_COLUMNS)
        self.tables = [v for v in vars(self).values() if isinstance(v, Table)]

    def close_tables(self) -> None:
        """Finish the COPYs, set the invoice counters and the id sequences."""
        from django.core.management.color import no_style
        from django.db import connection

        from orders.models import InvoiceCounter

        for t in self.tables:
            t.close()
        for conn in self.conns:
            conn.commit()
            conn.close()
        for year, last in self.invoice_sequence.items():
            InvoiceCounter.objects.update_or_create(
                series=self.series, year=year, defaults={"last_number": last}
            )
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(
                no_style(), [t.model for t in self.tables]
            ):
                cursor.execute(statement)

    def next_id(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def order(self, order_id: int, placed_at: datetime, *, expired: bool, force: str = "") -> None:
        rng = self.rng
        as_of = self.as_of
        day = (placed_at + timedelta(hours=2)).date()  # Riga day, near enough
        contact_deadline, payment_due_at, due_day = self.deadlines(day)

        # The life of the order up to `as_of`.
        status, reason = "placed", ""
        contact = paid = shipped = delivered = closed = cancelled = None
        method = "bank_transfer"
        roll = rng.random()
        if expired:
            roll = 1.0  # every expired order was delivered
        card = rng.random() < 0.2
        if force == "shipped":  # paid and handed to Omniva: the courier's events follow
            card = False
            status, contact = "shipped", placed_at + timedelta(minutes=30)
            paid, shipped = contact + timedelta(minutes=30), contact + timedelta(hours=2)
        elif force:  # due now: never confirmed, or confirmed and never paid
            assert contact_deadline < as_of and payment_due_at < as_of
            card = False
            if force == "unpaid":
                status, contact = "confirmed", placed_at + timedelta(hours=1)
        elif roll < 0.03:  # R12: never confirmed
            if contact_deadline < as_of:
                status, reason = "cancelled", "no_contact"
                cancelled = contact_deadline + timedelta(minutes=rng.randrange(1, 6))
        else:
            if card:
                method = "card"
                contact = paid = placed_at + timedelta(minutes=rng.randrange(1, 15))
            else:
                contact = placed_at + timedelta(minutes=rng.randrange(5, 36 * 60))
            if contact >= as_of:
                contact = paid = None
            elif roll < 0.06 and not card:  # R10: confirmed, never paid
                status = "confirmed"
                if payment_due_at < as_of:
                    status, reason = "cancelled", "unpaid"
                    cancelled = payment_due_at + timedelta(minutes=rng.randrange(1, 6))
            elif roll < 0.07 and not card:  # the customer changed their mind
                status = "confirmed"
                moment = contact + timedelta(hours=rng.randrange(1, 48))
                if moment < as_of and moment < payment_due_at:
                    status, reason, cancelled = "cancelled", "customer", moment
            else:
                status = "confirmed"
                if paid is None:
                    paid = contact + timedelta(minutes=rng.randrange(10, 3 * 24 * 60))
                    paid = min(paid, payment_due_at - timedelta(minutes=1))
                if paid >= as_of:
                    paid = None
                else:
                    status = "paid"
                    shipped = paid + timedelta(hours=rng.randrange(2, 30))
                    if shipped < as_of:
                        status = "shipped"
                        delivered = shipped + timedelta(hours=rng.randrange(12, 72))
                        if delivered < as_of:
                            status = "delivered"
                            closed = delivered + timedelta(days=15)
                            if closed < as_of:
                                status = "closed"
                            else:
                                closed = None
                        else:
                            delivered = None
                    else:
                        shipped = None

        # Lines, totals, fee.
        lines = []
        count = rng.choices((1, 2, 3, 4, 5), (40, 25, 15, 12, 8))[0]
        for product in rng.sample(self.products, count):
            quantity = rng.choices((1, 2, 3), (80, 15, 5))[0]
            lines.append((product, quantity, product[4] * quantity))
        goods = sum(total for _, _, total in lines)
        fee = 200 if goods <= 5000 else 0
        total = goods + fee

        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"customer{order_id}@example.lv"
        phone = f"+37126{rng.randrange(10**6):06d}"
        consumer = rng.random() < 0.95
        courier = rng.random() < 0.2
        if courier:
            city, postcode = rng.choice(CITIES)
            machine_id, machine_name = None, ""
            street = f"{rng.choice(STREETS)} {rng.randrange(1, 120)}"
            postal = f"{postcode}{rng.randrange(10, 99)}"
            address = f"{street}, {city}, {postal}"
        else:
            machine_id, machine_name = rng.choice(self.machines)
            street = city = postal = ""
            address = machine_name
        terms = self.terms[0][0] if placed_at < self.terms[-1][1] else self.terms[-1][0]
        self.t_order.write(
            (
                order_id, order_number(order_id), status, reason,
                hashlib.sha256(order_id.to_bytes(8, "big")).hexdigest(),
                "lv" if rng.random() < 0.85 else "en", placed_at, terms,
                "adult" if rng.random() < 0.98 else "minor_with_consent", consumer,
                "" if consumer else f"SIA Salons {order_id}",
                "" if consumer else f"4000{order_id:07d}",
                first, last, email, phone,
                "omniva_courier" if courier else "omniva_parcel_machine",
                machine_id, machine_name, street, city, postal, "LV", self.tariff,
                money(goods), money(fee), money(total), "EUR",
                contact, contact_deadline, payment_due_at, paid, shipped, delivered,
                cancelled, closed,
            )
        )  # fmt: skip
        line_status = "cancelled" if status == "cancelled" else "ordered"
        shipped_lines = []
        line_ids = []
        for (pid, sku, name_lv, name_en, price, hygiene), quantity, line_total in lines:
            line_id = self.next_id("line")
            line_ids.append((line_id, price))
            self.t_line.write(
                (line_id, order_id, pid, sku, name_lv, name_en, money(price),
                 "21.00", quantity, money(line_total), hygiene, line_status)
            )  # fmt: skip
            shipped_lines.append({"line_id": line_id, "sku": sku, "quantity": quantity})

        # R14a: the outbound parcel of a shipped order, registered by hand.
        if shipped is not None and self.t_shipment is not None:
            shipment_status = "registered" if force else "delivered" if delivered else "in_transit"
            self.t_shipment.write(
                (self.next_id("shipment"), order_id, "outbound", shipment_status,
                 barcode(order_id), "by_hand", f"R{order_id:010d}LV", Jsonb(shipped_lines),
                 shipped, shipped, delivered, delivered or (None if force else shipped))
            )  # fmt: skip

        # R9: the invoice, numbered per year in placement order.
        year = day.year
        sequence = self.invoice_sequence.get(year, 0) + 1
        self.invoice_sequence[year] = sequence
        invoice_id = self.next_id("invoice")
        invoice_number = f"{self.series}-{year}-{sequence:06d}"
        vat = total - (total * 100 + 60) // 121  # VAT in the gross at 21 %, half-up
        self.t_invoice.write(
            (invoice_id, order_id, "invoice", invoice_number, self.series, year, sequence,
             placed_at, day, due_day, self._seller_json(),
             f"{first} {last}" if consumer else f"SIA Salons {order_id} ({first} {last})",
             address, "" if consumer else f"4000{order_id:07d}", money(total),
             self._breakdown(total, vat))
        )  # fmt: skip
        for (_pid, sku, name_lv, _en, price, _h), quantity, line_total in lines:
            self.t_invoice_line.write(
                (self.next_id("invoice_line"), invoice_id, name_lv, sku, quantity, money(price),
                 "21.00", money(line_total))
            )  # fmt: skip
        if fee:
            self.t_invoice_line.write(
                (self.next_id("invoice_line"), invoice_id, "Piegāde / Delivery", "", 1,
                 money(fee), "21.00", money(fee))
            )  # fmt: skip

        # R11: the payment, from a bank statement entry or a card.
        payment_id = None
        if paid is not None:
            payment_id = self.next_id("payment")
            entry_id = None
            if method == "bank_transfer":
                entry_id = self.next_id("entry")
                booked = (paid + timedelta(hours=2)).date()
                statement = self.statement(booked, paid)
                self.t_entry.write(
                    (entry_id, statement, f"BANKREF-{entry_id:010d}", money(total), "EUR",
                     booked, booked, f"{first} {last}".upper(),
                     f"LV{10 + entry_id % 89}HABA{entry_id:013d}", f"Rekins {invoice_number}",
                     "matched", order_id)
                )  # fmt: skip
            self.t_payment.write(
                (payment_id, order_id, money(total), method, paid, entry_id,
                 f"pi_bench{order_id:012d}" if method == "card" else None,
                 f"{first} {last}", "" if method == "card" else f"LV{10 + order_id % 89}HABA"
                 f"{order_id:013d}", paid)
            )  # fmt: skip

        # Money back: withdrawals of one line after delivery (R17-R22); the refund goes
        # back to the card for card payments (R21).
        refund_times: tuple = ()
        holds: list = []
        has_claims = False
        if delivered is not None and rng.random() < 0.02:
            created = delivered + timedelta(days=rng.randrange(1, 14))
            if created < as_of:
                refund_id, refund_status, refund_times = self.refund(
                    order_id, payment_id, total, "withdrawal", created, card, first, last
                )
                has_claims |= self.withdrawal(
                    order_id, created, refund_id, refund_status, line_ids[0], card, first, last
                )
                if refund_status != "settled" and self.ledger is not None:
                    holds.append(self.ledger.hold(created))  # R28: open and unsettled
        # R23-R25: a conformity claim with a photo; closed ones hold 3 years (R28).
        if delivered is not None and rng.random() < 0.005:
            received = delivered + timedelta(days=rng.randrange(5, 60))
            if received < as_of:
                closed_claim = self.claim(order_id, received, line_ids[-1][0], email)
                has_claims = True
                if self.ledger is not None:
                    holds.append(self.ledger.hold(received, closed_claim))
        # GDPR Art 18: a standing restriction holds every row of the order (R28).
        restricted = None
        if rng.random() < 0.001:
            restricted = placed_at + timedelta(days=rng.randrange(1, 60))
            if restricted >= as_of:
                restricted = None
            elif self.ledger is not None:
                holds.append(self.ledger.hold(restricted))

        # R31 and R27.
        consent = rng.random() < 0.1 and not force
        if consent:
            self.t_consent.write(
                (self.next_id("consent"), email, order_id, "marketing_email", placed_at,
                 self.policy_at(placed_at), "checkout")
            )  # fmt: skip
        if shipped is not None:
            self.t_disclosure.write(
                (self.next_id("disclosure"), "omniva",
                 self._disclosed_categories(), "delivery", shipped, order_id, "")
            )  # fmt: skip

        # R26: the ledger.
        if self.ledger is not None:
            events = [m for m in (placed_at, paid, shipped, delivered, cancelled, closed,
                                  *refund_times) if m is not None]  # fmt: skip
            money_days = [day, *(riga_date(m) for m in (paid, *refund_times) if m is not None)]
            for category, purpose, basis, keep_until in self.ledger.rows(
                status=status,
                consent=consent,
                claims=has_claims,
                holds=tuple(holds),
                placed_on=riga_date(placed_at),
                delivered_on=riga_date(delivered) if delivered else None,
                closed_on=riga_date(closed or cancelled) if (closed or cancelled) else None,
                last_event_on=riga_date(max(events)),
                accounting_year=max(d.year for d in money_days),
            ):
                self.t_ledger.write(
                    (self.next_id("ledger"), order_id, category, purpose, basis, keep_until,
                     self.as_of, restricted)
                )  # fmt: skip

    def refund(self, order_id, payment_id, total, reason, created, card, first, last) -> tuple:
        """A refund; returns its id, its status and the moments it records (for the
        ledger's facts)."""
        amount = max(100, total // 2)
        due = (created + timedelta(days=14)).date()
        sent = created + timedelta(days=2)
        settled = created + timedelta(days=4)
        status = "settled"
        approved = created + timedelta(days=1)
        if settled >= self.as_of:
            status, settled = "sent", None
        if sent >= self.as_of:
            status, sent = "approved", None
        if approved >= self.as_of:
            status, approved = "ready", None
        refund_id = self.next_id("refund")
        self.t_refund.write(
            (refund_id, order_id, money(amount), reason, status,
             "card" if card else "iban", "" if card else f"LV{10 + order_id % 89}HABA"
             f"{order_id:013d}", "" if card else f"{first} {last}",
             payment_id if card else None, due, created, approved, sent, settled)
        )  # fmt: skip
        return refund_id, status, tuple(m for m in (created, sent, settled) if m is not None)

    def withdrawal(self, order_id, received, refund_id, refund_status, line, card, first, last):
        """The withdrawal statement behind a refund, with a proof of dispatch (a stored
        file's name) and its line: done once its refund settled, else on its way back.
        Returns True (the order now has KA10 data)."""
        withdrawal_id = self.next_id("withdrawal")
        line_id, price = line
        done = refund_status == "settled"
        self.t_withdrawal.write(
            (withdrawal_id, order_id, "refunded" if done else "goods_in_transit", "api",
             received, received, "" if card else f"LV{10 + order_id % 89}HABA{order_id:013d}",
             "" if card else f"{first} {last}", "Neder izmērs",
             hashlib.sha256(f"w{withdrawal_id}".encode()).hexdigest(),
             (received + timedelta(days=14)).date(), money(price),
             f"withdrawals/proofs/{withdrawal_id:08d}.pdf", "application/pdf",
             received + timedelta(days=1), refund_id)
        )  # fmt: skip
        self.t_withdrawal_line.write(
            (self.next_id("withdrawal_line"), withdrawal_id, line_id, 1, money(price),
             "accepted" if done else "")
        )  # fmt: skip
        return True

    def claim(self, order_id, received, line_id, email) -> datetime | None:
        """A conformity claim of one line with a photo (a stored file's name): rejected
        ten days after it came when that is past, else still open. Returns when it
        closed."""
        claim_id = self.next_id("claim")
        closed = received + timedelta(days=10)
        if closed >= self.as_of:
            closed = None
        self.t_claim.write(
            (claim_id, order_id, "rejected" if closed else "submitted", "api", "repair",
             f"Sūknis nestrādā; zvaniet {email}", (received - timedelta(days=1)).date(),
             received, (received + timedelta(days=21)).date(), closed, received)
        )  # fmt: skip
        self.t_claim_line.write((self.next_id("claim_line"), claim_id, line_id, 1))
        self.t_claim_photo.write(
            (self.next_id("claim_photo"), claim_id, f"claims/{claim_id:08d}/photo-1.png",
             "image/png", 2048, received)
        )  # fmt: skip
        return closed

    def statement(self, booked: date, moment: datetime) -> int:
        statement_id = self.statements.get(booked)
        if statement_id is None:
            statement_id = self.next_id("statement")
            self.statements[booked] = statement_id
            self.t_statement.write(
                (statement_id, f"camt053-{booked.isoformat()}.xml",
                 hashlib.sha256(booked.isoformat().encode()).hexdigest(), "camt.053.001.02",
                 f"STMT-{booked.isoformat()}", self.seller["SELLER_IBAN"], "done", moment)
            )  # fmt: skip
        return statement_id

    def policy_at(self, moment: datetime) -> int:
        chosen = None
        for effective, pk in self.policy.items():
            if effective <= moment:
                chosen = pk
        return chosen or next(iter(self.policy.values()))

    @lru_cache(maxsize=1)  # noqa: B019
    def _seller_json(self):
        from psycopg.types.json import Jsonb

        from orders.services.invoicing import seller_snapshot

        return Jsonb(seller_snapshot())

    @lru_cache(maxsize=1)  # noqa: B019
    def _disclosed_categories(self):
        from psycopg.types.json import Jsonb

        return Jsonb(["identity", "contact", "delivery"])

    def _breakdown(self, total: int, vat: int):
        from psycopg.types.json import Jsonb

        return Jsonb(
            [{"rate": "21.00", "taxable": money(total - vat), "vat": money(vat),
              "gross": money(total)}]
        )  # fmt: skip


ID_TABLES = {
    "line": "orders_orderline", "invoice": "orders_invoice",
    "invoice_line": "orders_invoiceline", "payment": "orders_payment",
    "entry": "orders_bankentry", "refund": "orders_refund", "consent": "legal_consent",
    "disclosure": "legal_disclosure", "statement": "orders_bankstatement",
    "ledger": "legal_personaldatarecord", "shipment": "delivery_shipment",
    "withdrawal": "returns_withdrawal", "withdrawal_line": "returns_withdrawalline",
    "claim": "returns_claim", "claim_line": "returns_claimline",
    "claim_photo": "returns_claimphoto",
}  # fmt: skip
ORDER_COLUMNS = [
    "id", "number", "status", "cancel_reason", "access_token_hash", "language", "placed_at",
    "terms_version_id", "capacity", "is_consumer", "company_name", "company_reg_no",
    "first_name", "last_name", "email", "phone", "delivery_method", "parcel_machine_id",
    "parcel_machine_name", "street", "city", "postal_code", "country", "tariff_id",
    "goods_total", "delivery_fee", "total", "currency", "contact_established_at",
    "contact_deadline", "payment_due_at", "paid_at", "shipped_at", "delivered_at",
    "cancelled_at", "closed_at",
]  # fmt: skip
LINE_COLUMNS = [
    "id", "order_id", "product_id", "sku", "name_lv", "name_en", "unit_price", "vat_rate",
    "quantity", "line_total", "sealed_hygiene", "status",
]  # fmt: skip
INVOICE_COLUMNS = [
    "id", "order_id", "kind", "number", "series", "year", "sequence", "issued_at",
    "issue_date", "due_date", "seller", "buyer_name", "buyer_address", "buyer_reg_no",
    "total", "vat_breakdown",
]  # fmt: skip
INVOICE_LINE_COLUMNS = [
    "id", "invoice_id", "description", "sku", "quantity", "unit_price", "vat_rate", "total",
]  # fmt: skip
STATEMENT_COLUMNS = [
    "id", "file_name", "sha256", "message_type", "statement_id", "account_iban", "status",
    "imported_at",
]  # fmt: skip
ENTRY_COLUMNS = [
    "id", "statement_id", "entry_key", "amount", "currency", "booking_date", "value_date",
    "debtor_name", "debtor_iban", "remittance_info", "status", "order_id",
]  # fmt: skip
PAYMENT_COLUMNS = [
    "id", "order_id", "amount", "method", "received_at", "bank_entry_id",
    "stripe_payment_intent", "payer_name", "payer_iban", "created_at",
]  # fmt: skip
REFUND_COLUMNS = [
    "id", "order_id", "amount", "reason", "status", "destination", "iban", "account_holder",
    "payment_id", "due_date", "created_at", "approved_at", "sent_at", "settled_at",
]  # fmt: skip
CONSENT_COLUMNS = [
    "id", "email", "order_id", "purpose", "given_at", "policy_version_id", "source",
]  # fmt: skip
SHIPMENT_COLUMNS = [
    "id", "order_id", "direction", "status", "barcode", "registration", "return_code",
    "lines", "created_at", "registered_at", "delivered_at", "last_event_at",
]  # fmt: skip
LEDGER_COLUMNS = [
    "id", "order_id", "category", "purpose", "basis", "keep_until", "computed_at",
    "restricted_at",
]  # fmt: skip
WITHDRAWAL_COLUMNS = [
    "id", "order_id", "status", "channel", "received_at", "recorded_at", "iban",
    "account_holder", "reason", "fingerprint", "refund_due_date", "refund_amount",
    "proof_of_dispatch", "proof_content_type", "proof_uploaded_at", "refund_id",
]  # fmt: skip
WITHDRAWAL_LINE_COLUMNS = [
    "id", "withdrawal_id", "order_line_id", "quantity", "unit_price", "outcome",
]  # fmt: skip
CLAIM_COLUMNS = [
    "id", "order_id", "status", "channel", "remedy_requested", "description",
    "discovered_on", "received_at", "answer_deadline", "closed_at", "created_at",
]  # fmt: skip
CLAIM_LINE_COLUMNS = ["id", "claim_id", "order_line_id", "quantity"]
CLAIM_PHOTO_COLUMNS = ["id", "claim_id", "file", "content_type", "size", "uploaded_at"]
DISCLOSURE_COLUMNS = [
    "id", "recipient", "categories", "purpose", "disclosed_at", "order_id", "reference",
]  # fmt: skip
