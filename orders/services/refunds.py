"""Money out. Every refund goes through `create_refund`, which locks the order and refuses
any refund that would make the order's refunds exceed what was paid.

Lifecycle (protected FSM on `Refund`): pending (held, R21) -> ready -> approved (its own
permission) -> sent (SEPA file or card processor) -> settled | failed. A failed refund
frees its amount again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from orders.models import (
    Order,
    Payment,
    PaymentMethod,
    Refund,
    RefundDestination,
    RefundReason,
    RefundStatus,
)
from orders.services.locks import lock_order
from shop.errors import InvalidInput, Refused
from shop.money import ZERO, to_money
from shop.selectors import today_in_riga

REFUND_DAYS = 14  # calendar days, CRD Art 13 / T7.6, also used for other refunds


def normalise_iban(raw: str, *, field: str = "iban") -> str:
    """A refund IBAN checked with MOD-97 (schwifty), in compact upper-case form, of a
    country in the SEPA zone (refunds leave as SEPA credit transfers, issue 14)."""
    try:
        iban = IBAN(raw or "")
    except SchwiftyException as exc:
        raise InvalidInput.single(field, "invalid_iban", f"Not a valid IBAN: {exc}") from exc
    if not iban.in_sepa_zone:
        raise InvalidInput.single(
            field,
            "iban_not_sepa",
            f"Refunds are paid by SEPA transfer; an IBAN of {iban.country_code} is outside "
            "the SEPA zone.",
        )
    return iban.compact


def is_sepa_iban(raw: str) -> bool:
    """Whether a stored IBAN can receive a SEPA credit transfer. The SEPA zone comes from
    schwifty's IBAN registry (`in_sepa_zone`, the EPC's list of SEPA countries)."""
    try:
        return IBAN(raw or "").in_sepa_zone
    except SchwiftyException:
        return False


def paid_total(order: Order) -> Decimal:
    return to_money(order.payments.aggregate(s=Sum("amount"))["s"] or ZERO)


def refunded_total(order: Order) -> Decimal:
    """What the order's refunds take back (every refund but failed ones)."""
    return Refund.objects.filter(order=order).committed_total()


def refundable_balance(order: Order) -> Decimal:
    return paid_total(order) - refunded_total(order)


def default_destination(order: Order) -> tuple[str, str]:
    """The account the money came from: the latest bank payment with a payer IBAN."""
    payment = (
        order.payments.filter(method=PaymentMethod.BANK_TRANSFER)
        .exclude(payer_iban="")
        .order_by("-received_at", "-pk")
        .first()
    )
    if payment is None:
        return "", ""
    return payment.payer_iban, payment.payer_name


def create_refund(
    *,
    order_id: int,
    amount: Decimal,
    reason: RefundReason | str,
    due_date: date | None = None,
    iban: str | None = None,
    account_holder: str | None = None,
    hold: bool = False,
    payment: Payment | None = None,
    note: str = "",
) -> Refund:
    """Create a refund under the order's row lock; never more than what was paid.

    Without an explicit IBAN the money goes back to the account it came from (T4.3) or,
    for a card payment, to the card.
    """
    amount = to_money(amount)
    if amount <= 0:
        raise InvalidInput.single("amount", "not_positive", "A refund must be positive.")
    with transaction.atomic():
        order = lock_order(order_id)
        paid = paid_total(order)
        refunded = refunded_total(order)
        if refunded + amount > paid:
            raise Refused(
                "refund_exceeds_paid",
                "The refunds of this order would exceed what was paid.",
                paid=str(paid),
                refunded=str(refunded),
                requested=str(amount),
                available=str(paid - refunded),
            )
        destination = RefundDestination.IBAN
        if iban:
            iban = normalise_iban(iban)
        elif payment is not None and payment.method == PaymentMethod.CARD:
            destination = RefundDestination.CARD
            iban = ""
        else:
            card_payment = order.payments.filter(method=PaymentMethod.CARD).first()
            bank_iban, bank_holder = default_destination(order)
            if card_payment is not None and not bank_iban:
                destination, payment, iban = RefundDestination.CARD, card_payment, ""
            else:
                iban = bank_iban
                account_holder = account_holder or bank_holder
        now = timezone.now()
        refund = Refund(
            order=order,
            amount=amount,
            reason=reason,
            destination=destination,
            iban=iban or "",
            account_holder=(account_holder or order.customer_name)[:140],
            payment=payment,
            due_date=due_date or (today_in_riga() + timedelta(days=REFUND_DAYS)),
            note=note,
            created_at=now,
        )
        if hold:
            # The FSM field is protected; a new refund starts in its initial state.
            refund = _create_in_state(refund, RefundStatus.PENDING)
        else:
            refund.save()
    return refund


def _create_in_state(refund: Refund, status: str) -> Refund:
    """Create a refund whose first state is not the default one (held refunds)."""
    field = Refund._meta.get_field("status")
    refund.__dict__[field.attname] = status
    refund.save()
    return refund


def release_refund(*, refund_id: int) -> Refund:
    """R21: the hold ends (goods arrived or proof of dispatch given)."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status == RefundStatus.PENDING:
            refund.release()
            refund.save()
    return refund


def reduce_refund(*, refund_id: int, amount: Decimal, note: str = "") -> Refund:
    """R22: lower a refund not yet approved (deductions or rejections found when the
    returned goods are inspected). Lowered to nothing, the refund is dropped: it fails
    with the note as its reason and its amount is free again. Never raises the amount."""
    amount = to_money(amount)
    with transaction.atomic():
        order_id = Refund.objects.values_list("order_id", flat=True).get(pk=refund_id)
        lock_order(order_id)  # the order first, like create_refund
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status not in (RefundStatus.PENDING, RefundStatus.READY):
            raise Refused(
                "refund_not_adjustable",
                "Only a refund not yet approved can be lowered.",
                status=refund.status,
            )
        if amount > refund.amount:
            raise Refused(
                "refund_increase",
                "A refund can only be lowered here.",
                amount=str(refund.amount),
                requested=str(amount),
            )
        if amount <= 0:
            refund.fail(reason=(note or "Nothing to refund.")[:300], at=timezone.now())
        else:
            refund.amount = amount
            refund.note = (note or refund.note)[:300]
        refund.save()
    return refund


ACCOUNT_EDITABLE_STATUSES = (RefundStatus.PENDING, RefundStatus.READY)


def update_refund_account(*, refund_id: int, iban: str, account_holder: str) -> Refund:
    """Staff correct the IBAN or account holder of a bank refund not yet approved.

    Once approved, the account is what the approver saw: it no longer changes.
    """
    iban = normalise_iban(iban)
    account_holder = (account_holder or "").strip()[:140]
    if not account_holder:
        raise InvalidInput.single("account_holder", "required", "The account holder is required.")
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if (
            refund.status not in ACCOUNT_EDITABLE_STATUSES
            or refund.destination != RefundDestination.IBAN
        ):
            raise Refused(
                "refund_account_locked",
                "Only the account of a bank refund not yet approved can be changed.",
                status=refund.status,
                destination=refund.destination,
            )
        refund.iban = iban
        refund.account_holder = account_holder
        refund.save(update_fields=["iban", "account_holder"])
    return refund


def approve_refunds(*, refund_ids: Iterable[int], by) -> list[Refund]:
    """Staff approval (permission `orders.approve_refund`, checked by the caller).

    Refunds that are not ready, or bank refunds without an IBAN, are left as they are.
    """
    approved = []
    now = timezone.now()
    with transaction.atomic():
        refunds = Refund.objects.select_for_update().filter(pk__in=list(refund_ids)).order_by("pk")
        for refund in refunds:
            if refund.status != RefundStatus.READY:
                continue
            if refund.destination == RefundDestination.IBAN and not refund.iban:
                continue
            refund.approve(by=by, at=now)
            refund.save()
            approved.append(refund)
    return approved


def settle_refunds(*, refund_ids: Iterable[int]) -> int:
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for refund in (
            Refund.objects.select_for_update()
            .filter(pk__in=list(refund_ids), status=RefundStatus.SENT)
            .order_by("pk")
        ):
            refund.settle(at=now)
            refund.save()
            count += 1
    return count


def fail_refunds(*, refund_ids: Iterable[int], reason: str) -> int:
    """The bank returned the money (wrong account, closed account): the amount is free
    again and staff can create a new refund with a corrected IBAN."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for refund in (
            Refund.objects.select_for_update()
            .filter(
                pk__in=list(refund_ids),
                status__in=[RefundStatus.APPROVED, RefundStatus.SENT, RefundStatus.SETTLED],
            )
            .order_by("pk")
        ):
            refund.fail(reason=reason, at=now)
            refund.save()
            count += 1
    return count


def flag_overdue_refunds(*, today: date) -> int:
    """R21: refunds past their due date are flagged to staff (once)."""
    return (
        Refund.objects.overdue(today)
        .filter(overdue_flagged_at__isnull=True)
        .update(overdue_flagged_at=timezone.now())
    )
