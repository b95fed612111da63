"""Personal data of the orders app, declared into the retention policy (legal.registry).

R26, R28, R29: which fields belong to which category, how to reach their order, and how
each is erased. Money, SKUs, dates and the postcode area stay (IP11).
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Q

from legal.models import ErasureReason
from legal.registry import (
    ERASE_MARKER,
    ERASE_NULL,
    MARKER,
    POSTCODE_AREA,
    declare,
    exportable,
    json_keep,
    not_personal,
    sweeper,
)
from legal.services.erasure import record_erasure
from shop.calendar import start_of_day

# --- Per order ------------------------------------------------------------------------------

declare(
    "identity",
    "orders.Order",
    order_path="id",
    fields={
        "first_name": ERASE_MARKER,
        "last_name": ERASE_MARKER,
        "company_name": ERASE_MARKER,
        "company_reg_no": ERASE_MARKER,
        "user": ERASE_NULL,  # the link to a customer account
    },
)
declare(
    "contact",
    "orders.Order",
    order_path="id",
    fields={"email": ERASE_MARKER, "phone": ERASE_MARKER},
)
declare(
    "delivery",
    "orders.Order",
    order_path="id",
    fields={
        "street": ERASE_MARKER,
        "city": ERASE_MARKER,
        "postal_code": POSTCODE_AREA,  # LV-1050 -> LV-10xx stays for statistics
        "parcel_machine_name": ERASE_MARKER,
        "parcel_machine": ERASE_NULL,
    },
)
# The stored answer of POST /api/orders/ (Idempotency-Key) repeats the delivery address.
declare(
    "delivery",
    "orders.IdempotencyRecord",
    order_path="order_id",
    fields={"response_body": json_keep("number", "status")},
)
# Accounting records (Accounting Law §28): the invoice's buyer snapshot, who paid from
# which account, where refunds went.
declare(
    "settlement",
    "orders.Invoice",
    order_path="order_id",
    fields={
        "buyer_name": ERASE_MARKER,
        "buyer_address": ERASE_MARKER,
        "buyer_reg_no": ERASE_MARKER,
    },
)
declare(
    "settlement",
    "orders.Payment",
    order_path="order_id",
    fields={"payer_name": ERASE_MARKER, "payer_iban": ERASE_MARKER},
)
declare(
    "settlement",
    "orders.Refund",
    order_path="order_id",
    fields={"iban": ERASE_MARKER, "account_holder": ERASE_MARKER},
)
declare(
    "settlement",
    "orders.BankEntry",
    order_path="order_id",
    fields={
        "debtor_name": ERASE_MARKER,
        "debtor_iban": ERASE_MARKER,
        "remittance_info": ERASE_MARKER,
    },
)
declare(
    "settlement",
    "orders.StripeEvent",
    order_path="order_id",
    fields={"payload": json_keep("id", "type")},  # the raw event may carry billing details
)

not_personal("orders.OrderLine", "name_lv", "name_en", reason="product names")
not_personal("orders.BankStatement", "file_name", reason="the uploaded file's name")
not_personal("orders.BankStatement", "account_iban", reason="the shop's own account")
not_personal("orders.SepaExport", "file_name", reason="generated file name")
not_personal("orders.BankEntry", "debtor_bic", reason="identifies the payer's bank, not the payer")

# --- The data export (R30) ------------------------------------------------------------------

exportable(
    "orders.Order",
    key="order",
    order_path="id",
    fields=[
        "number",
        "status",
        "cancel_reason",
        "placed_at",
        "language",
        "capacity",
        "is_consumer",
        "delivery_method",
        "country",
        "goods_total",
        "delivery_fee",
        "total",
        "currency",
        "contact_established_at",
        "paid_at",
        "shipped_at",
        "delivered_at",
        "cancelled_at",
        "closed_at",
    ],
)
exportable(
    "orders.OrderLine",
    key="lines",
    order_path="order_id",
    fields=[
        "sku",
        "name_lv",
        "name_en",
        "unit_price",
        "vat_rate",
        "quantity",
        "line_total",
        "status",
    ],
)
exportable(
    "orders.Invoice",
    key="invoices",
    order_path="order_id",
    fields=["number", "kind", "issue_date", "due_date", "total", "vat_breakdown"],
)
exportable(
    "orders.Payment",
    key="payments",
    order_path="order_id",
    fields=["amount", "method", "received_at"],
)
exportable(
    "orders.Refund",
    key="refunds",
    order_path="order_id",
    fields=["amount", "reason", "status", "destination", "due_date", "created_at", "sent_at"],
)
exportable(
    "orders.BankEntry",
    key="bank_entries",
    order_path="order_id",
    fields=["amount", "currency", "booking_date"],
)
exportable(
    "orders.StripeEvent",
    key="card_payment_events",
    order_path="order_id",
    fields=["type", "received_at"],
)

# --- Accounting records that belong to no order ------------------------------------------------


def _first_day_kept(today: date) -> datetime:
    """R28 (Accounting Law §28): records of years before this moment are past their date."""
    return start_of_day(date(today.year - 5, 1, 1))


def _not_erased(*names: str) -> Q:
    condition = Q()
    for name in names:
        condition |= ~Q(**{name: ""}) & ~Q(**{name: MARKER})
    return condition


@sweeper("bank-entries-without-order", category="settlement")
def sweep_unmatched_bank_entries(*, today: date, now: datetime, batch_size: int) -> int:
    """Credits never matched to an order (or ignored by staff): 5 years after the end of
    the booking year."""
    from orders.models import BankEntry

    names = ["debtor_name", "debtor_iban", "remittance_info"]
    queryset = BankEntry.objects.filter(
        _not_erased(*names),
        order__isnull=True,
        booking_date__lt=date(today.year - 5, 1, 1),
    )
    total = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        BankEntry.objects.filter(pk__in=ids).update(
            **{name: ERASE_MARKER.expression(name) for name in names}
        )
        record_erasure(
            category="settlement",
            reason=ErasureReason.RETENTION,
            fields=[f"orders.BankEntry.{n}" for n in names],
            rows=len(ids),
            note=f"bank entries #{ids[0]}-#{ids[-1]} without an order",
            now=now,
        )
        total += len(ids)


@sweeper("sepa-exports", category="settlement")
def sweep_sepa_exports(*, today: date, now: datetime, batch_size: int) -> int:
    """pain.001 files name the account holders and IBANs of the refunds they pay."""
    from orders.models import SepaExport

    ids = list(
        SepaExport.objects.filter(created_at__lt=_first_day_kept(today))
        .exclude(content=MARKER)
        .values_list("pk", flat=True)
    )
    if ids:
        SepaExport.objects.filter(pk__in=ids).update(content=MARKER)
        record_erasure(
            category="settlement",
            reason=ErasureReason.RETENTION,
            fields=["orders.SepaExport.content"],
            rows=len(ids),
            note=f"{len(ids)} SEPA export file(s)",
            now=now,
        )
    return len(ids)


@sweeper("bank-statement-files", category="settlement")
def sweep_bank_statement_files(*, today: date, now: datetime, batch_size: int) -> int:
    """Uploaded camt files list every payer's name and account: deleted with the year."""
    from orders.models import BankStatement

    statements = list(
        BankStatement.objects.filter(imported_at__lt=_first_day_kept(today))
        .exclude(uploaded_file="")
        .only("pk", "uploaded_file")
    )
    for statement in statements:
        statement.uploaded_file.delete(save=False)
    if statements:
        BankStatement.objects.filter(pk__in=[s.pk for s in statements]).update(uploaded_file="")
        record_erasure(
            category="settlement",
            reason=ErasureReason.RETENTION,
            fields=["orders.BankStatement.uploaded_file"],
            rows=len(statements),
            note=f"{len(statements)} uploaded bank statement file(s)",
            now=now,
        )
    return len(statements)
