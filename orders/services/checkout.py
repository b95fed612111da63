"""place_order: the contract is concluded when the customer submits the order (R1, T3.1).

One transaction: terms check (R1), stock reserved under row locks in SKU order (R8), price
snapshot (R2), delivery fee from the tariff in force (R6), the invoice with a gapless
number (R9), consents (R31); after commit, through the outbox, the confirmation email
with the invoice PDF, the confirm link and the withdrawal information.

The number of queries does not depend on the number of lines.

Hoarding (R8): an order placed through the public API carries `CheckoutLimits`: at most
SHOP_MAX_QUANTITY_PER_SKU units of one SKU, and at most SHOP_MAX_OPEN_UNPAID_ORDERS orders
placed and not yet paid per email address and per client (the user, or the IP address,
whose recent orders the cache remembers). A stock refusal names the SKUs short, never the
stock left.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from delivery.models import ParcelMachine
from delivery.rules import delivery_fee
from delivery.selectors import active_parcel_machine, tariff_in_force
from legal.models import Consent, ConsentSource
from legal.selectors import privacy_policy_in_force, terms_in_force
from legal.services import ledger
from orders import emails
from orders.models import Capacity, DeliveryMethod, Invoice, Order, OrderLine, OrderStatus
from orders.services.invoicing import issue_invoice
from orders.services.locks import lock_products_by_sku
from shop import tokens
from shop.api.throttling import CACHE_ERRORS, cache_unavailable, hashed
from shop.calendar import end_of_day, riga_date
from shop.db import insert_once, update_by_pk
from shop.errors import InvalidInput, Refused
from shop.models import Product
from shop.money import ZERO, line_total, to_money
from shop.selectors import latvian_calendar, vat_rates_in_force

NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
OPEN_UNPAID = [OrderStatus.PLACED, OrderStatus.CONFIRMED]
# How long the cache remembers an anonymous client's orders: longer than any payment term.
CLIENT_ORDERS_REMEMBERED = 30 * 24 * 3600
CLIENT_ORDERS_KEPT = 50


@dataclass(frozen=True)
class CustomerData:
    first_name: str
    last_name: str
    email: str
    phone: str  # already E.164
    is_consumer: bool = True
    company_name: str = ""
    company_reg_no: str = ""


@dataclass(frozen=True)
class DeliveryData:
    method: str
    parcel_machine_id: str = ""
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = "LV"


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True)
class CheckoutLimits:
    """What one checkout through the public API may hold (0: no limit). `client` is the
    throttling identity (shop.api.throttling.client_key): "user:<id>" or "ip:<address>"."""

    max_quantity_per_sku: int
    max_open_unpaid_orders: int
    client: str = ""

    @classmethod
    def from_settings(cls, *, client: str = "") -> CheckoutLimits:
        return cls(
            max_quantity_per_sku=settings.SHOP_MAX_QUANTITY_PER_SKU,
            max_open_unpaid_orders=settings.SHOP_MAX_OPEN_UNPAID_ORDERS,
            client=client,
        )


@dataclass
class PlacedOrder:
    order: Order
    access_token: str  # shown once; only its hash is stored
    lines: list[OrderLine] = field(default_factory=list)
    invoice: Invoice | None = None


def new_order_number() -> str:
    return "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))


def place_order(
    *,
    customer: CustomerData,
    capacity: str,
    delivery: DeliveryData,
    lines: list[LineRequest],
    accepted_terms_version: str,
    consents: dict[str, bool] | None = None,
    user=None,
    language: str = "lv",
    now: datetime | None = None,
    limits: CheckoutLimits | None = None,
) -> PlacedOrder:
    """Place the order. `limits`: the hoarding limits of the public checkout (None for the
    shop's own callers: demo data, staff tools)."""
    now = now or timezone.now()
    if capacity not in Capacity.values:
        # R5: under 14 cannot order; only adults and minors with consent.
        raise InvalidInput.single("capacity", "invalid_choice", "Capacity not allowed.")
    if not lines:
        raise InvalidInput.single("lines", "empty", "An order needs at least one line.")
    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    if limits is not None:
        _check_quantities(quantities, limits.max_quantity_per_sku)

    with transaction.atomic(savepoint=False):
        if limits is not None:
            _check_open_orders(customer.email, user, limits)
        terms = terms_in_force(now)
        if terms is None or terms.version != accepted_terms_version:
            # R1 (T1.5): the version in force must be the one accepted.
            raise Refused(
                "terms_not_accepted",
                "The order must accept the terms of use in force.",
                version_in_force=terms.version if terms else None,
            )
        machine = _parcel_machine(delivery)
        tariff = tariff_in_force(now)
        if tariff is None:
            raise Refused("no_delivery_tariff", "No delivery tariff is in force.")

        products = lock_products_by_sku(quantities)  # R8: one query, SKU order
        _check_products(quantities, products)

        rates = vat_rates_in_force(riga_date(now))
        order_lines = []
        for request in lines:
            product = products[request.sku]
            rate = rates.get(product.vat_category)
            if rate is None:
                raise Refused("no_vat_rate", f"No VAT rate in force for {product.sku}.")
            order_lines.append(
                OrderLine(
                    product=product,
                    sku=product.sku,
                    name_lv=product.name_lv,
                    name_en=product.name_en,
                    unit_price=product.price,  # R2: the price at placement
                    vat_rate=rate,
                    quantity=request.quantity,
                    line_total=line_total(product.price, request.quantity),
                    sealed_hygiene=product.sealed_hygiene,
                )
            )
        goods_total = to_money(sum((ol.line_total for ol in order_lines), ZERO))
        fee = delivery_fee(goods_total=goods_total, fee=tariff.fee, free_above=tariff.free_above)

        calendar = latvian_calendar()
        placed_day = riga_date(now)
        contact_deadline = calendar.working_days_end(
            placed_day, settings.SHOP["CONTACT_WORKING_DAYS"]
        )
        due_day = calendar.add_working_days(
            placed_day, settings.SHOP["INVOICE_PAYMENT_WORKING_DAYS"]
        )
        access_token = tokens.new_secret()
        order = Order(
            status="placed",
            user=user if user is not None and user.is_authenticated else None,
            access_token_hash=tokens.hash_secret(access_token),
            language=language[:5],
            placed_at=now,
            terms_version=terms,
            capacity=capacity,
            is_consumer=customer.is_consumer,
            company_name="" if customer.is_consumer else customer.company_name,
            company_reg_no="" if customer.is_consumer else customer.company_reg_no,
            first_name=customer.first_name,
            last_name=customer.last_name,
            email=customer.email,
            phone=customer.phone,
            delivery_method=delivery.method,
            parcel_machine=machine,
            parcel_machine_name=_machine_label(machine),
            street=delivery.street if machine is None else "",
            city=delivery.city if machine is None else "",
            postal_code=delivery.postal_code if machine is None else "",
            country="LV",
            tariff=tariff,
            goods_total=goods_total,
            delivery_fee=fee,
            total=goods_total + fee,
            contact_deadline=contact_deadline,
            payment_due_at=end_of_day(due_day),  # R10
        )
        _save_with_unique_number(order)
        if limits is not None and limits.client.startswith("ip:"):
            # Now, not on commit: an id whose order was rolled back is simply not counted.
            _remember_client_order(limits.client, order.pk)
        for order_line in order_lines:
            order_line.order = order
        OrderLine.objects.bulk_create(order_lines)

        # R8: reserve stock on the locked rows.
        for sku, quantity in quantities.items():
            products[sku].stock -= quantity
        update_by_pk(Product, "stock", {p.pk: p.stock for p in products.values()})

        _record_consents(order, consents or {}, now)
        ledger.order_placed(order=order, consents=consents)  # R26: the personal-data ledger
        # The invoice counter's row lock serialises checkouts until commit (R9): take the
        # number as late as possible.
        invoice = issue_invoice(order=order, lines=order_lines, due_date=due_day)
        emails.order_placed(order=order, invoice=invoice)
    return PlacedOrder(order=order, access_token=access_token, lines=order_lines, invoice=invoice)


def _save_with_unique_number(order: Order) -> None:
    """INSERT the order under a random number no other order has (with its history row)."""
    for _ in range(5):
        order.number = new_order_number()
        if insert_once(order, ["number"], signals=True):
            return
    raise RuntimeError("could not find a free order number")


def _parcel_machine(delivery: DeliveryData) -> ParcelMachine | None:
    if delivery.method == DeliveryMethod.PARCEL_MACHINE:
        machine = active_parcel_machine(delivery.parcel_machine_id)
        if machine is None:
            # R4: only Latvian machines from the directory.
            raise InvalidInput.single(
                "delivery.parcel_machine_id",
                "unknown_parcel_machine",
                "No active Latvian Omniva parcel machine has this id.",
            )
        return machine
    if delivery.method != DeliveryMethod.COURIER:
        raise InvalidInput.single("delivery.method", "invalid_choice", "Unknown delivery method.")
    return None


def _machine_label(machine: ParcelMachine | None) -> str:
    if machine is None:
        return ""
    return ", ".join(p for p in [machine.name, machine.address, machine.city] if p)[:300]


def _check_products(quantities: dict[str, int], products: dict[str, Product]) -> None:
    unknown = [sku for sku in quantities if sku not in products or not products[sku].active]
    if unknown:
        raise InvalidInput(
            [
                {"field": "lines", "code": "unknown_sku", "message": f"No such product: {sku}"}
                for sku in unknown
            ]
        )
    short = [
        {"sku": sku, "requested": quantity}
        for sku, quantity in sorted(quantities.items())
        if products[sku].stock < quantity
    ]
    if short:
        # R8: refused with the SKUs short; how many are left is the shop's business.
        raise Refused(
            "insufficient_stock",
            "Not enough stock for: " + ", ".join(s["sku"] for s in short),
            short=short,
        )


def _check_quantities(quantities: dict[str, int], limit: int) -> None:
    """R8 (hoarding): at most `limit` units of one SKU in one order."""
    over = sorted(sku for sku, quantity in quantities.items() if quantity > limit)
    if limit and over:
        raise Refused(
            "quantity_limit_exceeded",
            f"At most {limit} units of one product per order: " + ", ".join(over),
            skus=over,
            limit=limit,
        )


def _client_orders_key(client: str) -> str:
    return f"checkout:open-orders:{hashed(client)}"


def _client_order_ids(client: str) -> list[int]:
    """The orders this anonymous client placed lately (the cache's memory; [] when down)."""
    try:
        return list(cache.get(_client_orders_key(client)) or [])
    except CACHE_ERRORS as exc:
        cache_unavailable("the open orders limit per client", exc)
        return []


def _remember_client_order(client: str, order_id: int) -> None:
    try:
        ids = [*_client_order_ids(client), order_id][-CLIENT_ORDERS_KEPT:]
        cache.set(_client_orders_key(client), ids, timeout=CLIENT_ORDERS_REMEMBERED)
    except CACHE_ERRORS as exc:
        cache_unavailable("the open orders limit per client", exc)


def _check_open_orders(email: str, user, limits: CheckoutLimits) -> None:
    """R8 (hoarding): at most `limits.max_open_unpaid_orders` orders placed and not yet
    paid per email address and per client; one aggregate query for both."""
    limit = limits.max_open_unpaid_orders
    if not limit:
        return
    email = email.strip().lower()
    if user is not None and user.is_authenticated:
        by_client = Q(user_id=user.pk)
    elif limits.client.startswith("ip:") and (ids := _client_order_ids(limits.client)):
        by_client = Q(pk__in=ids)
    else:
        by_client = None
    whose = Q(email=email)
    counts = {"by_email": Count("pk", filter=Q(email=email))}
    if by_client is not None:
        whose |= by_client
        counts["by_client"] = Count("pk", filter=by_client)
    found = Order.objects.filter(whose, status__in=OPEN_UNPAID).aggregate(**counts)
    for scope in ("by_email", "by_client"):
        if found.get(scope, 0) >= limit:
            raise Refused(
                "open_orders_limit_exceeded",
                f"At most {limit} orders may wait for payment at once; please pay or "
                "cancel one first.",
                limit=limit,
            )


def _record_consents(order: Order, consents: dict[str, bool], now: datetime) -> None:
    given = [purpose for purpose, value in consents.items() if value]
    if not given:
        return
    policy = privacy_policy_in_force(now)
    Consent.objects.bulk_create(
        [
            Consent(
                email=order.email,
                user=order.user,
                order=order,
                purpose=purpose,
                given_at=now,
                policy_version=policy,
                source=ConsentSource.CHECKOUT,
            )
            for purpose in given
        ]
    )
