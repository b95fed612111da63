"""Money out by bank transfer: approved IBAN refunds into one SEPA credit transfer file.

ISO 20022 pain.001.001.03 built with `sepaxml` and validated against the XSD that ships
with it. The shop is the debtor (settings.SHOP); each refund is one transaction whose
end-to-end id and remittance text carry the order number and the refund id, so the
customer recognises the money and a returned payment can be traced back to its refund.

Refunds are locked in pk order and leave `approved` for `sent` in the same transaction
that stores the file, so a refund is never exported twice, also when two exports run at
the same time (the second one waits for the lock, then no longer sees them as approved).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError as SepaValidationError
from text_unidecode import unidecode

from orders.models import (
    Invoice,
    InvoiceKind,
    Order,
    Refund,
    RefundDestination,
    RefundStatus,
    SepaExport,
)
from orders.services.refunds import is_sepa_iban
from shop.calendar import RIGA, riga_date
from shop.errors import Refused
from shop.money import money_sum, to_cents

logger = logging.getLogger(__name__)

SEPA_SCHEMA = "pain.001.001.03"
END_TO_END_ID_MAX = 35  # Max35Text
REMITTANCE_MAX = 140  # Max140Text
NAME_MAX = 70  # Max70Text
# The EPC's basic Latin character set for SEPA credit transfers; banks reject the rest.
NOT_SEPA_CHARACTERS = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


def sepa_text(value: str, max_length: int) -> str:
    """Transliterate (ā -> a) and drop what the SEPA character set does not allow."""
    cleaned = NOT_SEPA_CHARACTERS.sub("", unidecode(value or ""))
    return " ".join(cleaned.split())[:max_length]


def exportable_refunds():
    """Approved bank refunds with an IBAN: what the next SEPA file will carry."""
    return Refund.objects.filter(
        status=RefundStatus.APPROVED, destination=RefundDestination.IBAN
    ).exclude(iban="")


def end_to_end_id(refund: Refund, order_number: str) -> str:
    return f"R{refund.pk}-{order_number}"[:END_TO_END_ID_MAX]


def remittance_text(refund: Refund, order_number: str, invoice_number: str = "") -> str:
    """What the customer reads on the bank statement, in the SEPA character set."""
    invoice_part = f" (rēķins {invoice_number})" if invoice_number else ""
    text = f"Atmaksa pasūtījumam {order_number}{invoice_part} / refund R{refund.pk}"
    return sepa_text(text, REMITTANCE_MAX)


def export_file_name(at: datetime) -> str:
    return f"refunds-{at.astimezone(RIGA):%Y%m%d-%H%M%S}.xml"


def build_pain001(
    refunds: list[Refund],
    *,
    order_numbers: dict[int, str],
    invoice_numbers: dict[int, str],
    execution_date: date,
) -> tuple[str, bytes]:
    """The pain.001.001.03 document for `refunds`: (message id, XML bytes), XSD-validated."""
    shop = settings.SHOP
    debtor = {
        "name": sepa_text(shop["SELLER_NAME"], NAME_MAX),
        "IBAN": shop["SELLER_IBAN"].replace(" ", "").upper(),
        "currency": shop.get("CURRENCY", "EUR"),
        "batch": True,
    }
    if shop.get("SELLER_BIC"):
        debtor["BIC"] = shop["SELLER_BIC"]
    transfer = SepaTransfer(debtor, schema=SEPA_SCHEMA, clean=True)
    for refund in refunds:
        order_number = order_numbers[refund.order_id]
        payment = {
            "name": sepa_text(refund.account_holder, NAME_MAX) or order_number,
            "IBAN": refund.iban,
            "amount": to_cents(refund.amount),  # sepaxml counts in integer cents
            "execution_date": execution_date,
            "description": remittance_text(
                refund, order_number, invoice_numbers.get(refund.order_id, "")
            ),
            "endtoend_id": end_to_end_id(refund, order_number),
        }
        if refund.bic:
            payment["BIC"] = refund.bic
        transfer.add_payment(payment)
    try:
        xml = transfer.export(validate=True, pretty_print=True)
    except SepaValidationError as exc:
        raise Refused(
            "sepa_file_invalid",
            "The SEPA file does not validate against the pain.001.001.03 schema.",
            error=str(exc.__cause__ or exc),
        ) from exc
    return transfer.msg_id, xml


def _invoice_numbers(order_ids: Iterable[int]) -> dict[int, str]:
    numbers: dict[int, str] = {}
    for order_id, number in (
        Invoice.objects.filter(order_id__in=set(order_ids), kind=InvoiceKind.INVOICE)
        .order_by("issued_at", "pk")
        .values_list("order_id", "number")
    ):
        numbers.setdefault(order_id, number)
    return numbers


OUTSIDE_SEPA_NOTE = "Not exported: the IBAN is outside the SEPA zone; correct the account."


def outside_sepa(refunds: Iterable[Refund]) -> list[Refund]:
    """Refunds whose IBAN cannot receive a SEPA transfer (issue 14)."""
    return [refund for refund in refunds if not is_sepa_iban(refund.iban)]


def _set_aside_outside_sepa(refunds: list[Refund]) -> list[Refund]:
    """Keep refunds to non-SEPA IBANs out of the file; they stay approved with a note
    staff see on the refund (and the export action reports them)."""
    skipped = outside_sepa(refunds)
    for refund in skipped:
        if OUTSIDE_SEPA_NOTE not in refund.note:
            note = f"{OUTSIDE_SEPA_NOTE} {refund.note}".strip()[:300]
            Refund.objects.filter(pk=refund.pk).update(note=note)
    if skipped:
        logger.warning("SEPA export: %d refund(s) skipped, IBAN outside SEPA", len(skipped))
    skipped_ids = {refund.pk for refund in skipped}
    return [refund for refund in refunds if refund.pk not in skipped_ids]


def export_sepa_refunds(*, by=None, refund_ids: Iterable[int] | None = None) -> SepaExport | None:
    """Put approved bank refunds (all, or those of `refund_ids`) into one pain.001 file.

    Returns the stored `SepaExport`, or None when there is nothing approved to export.
    The refunds become `sent`, so the next export does not pick them up again.
    """
    now = timezone.now()
    with transaction.atomic():
        queryset = exportable_refunds()
        if refund_ids is not None:
            queryset = queryset.filter(pk__in=list(refund_ids))
        refunds = list(queryset.select_for_update().order_by("pk"))
        refunds = _set_aside_outside_sepa(refunds)
        if not refunds:
            return None
        order_ids = {refund.order_id for refund in refunds}
        order_numbers = dict(Order.objects.filter(pk__in=order_ids).values_list("pk", "number"))
        message_id, xml = build_pain001(
            refunds,
            order_numbers=order_numbers,
            invoice_numbers=_invoice_numbers(order_ids),
            execution_date=riga_date(now),
        )
        total = money_sum(refund.amount for refund in refunds)
        export = SepaExport.objects.create(
            message_id=message_id,
            created_at=now,
            created_by=by,
            file_name=export_file_name(now),
            content=xml.decode("utf-8"),
            total=total,
            count=len(refunds),
        )
        for refund in refunds:
            refund.mark_sent(at=now, export=export)
            refund.save()
    # Amounts and ids only: no names or IBANs in log lines.
    logger.info(
        "SEPA export %s: %d refund(s), EUR %s", export.message_id, export.count, export.total
    )
    return export
