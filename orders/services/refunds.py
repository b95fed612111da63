"""Money out. Every refund goes through `create_refund`, which locks the order and refuses
any refund that would make the order's refunds exceed what was paid.

Lifecycle (protected FSM on `Refund`): pending (held, R21) -> ready -> approved (its own
permission) -> sent (SEPA file or card processor) -> settled | failed. A failed refund
frees its amount again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from orders.calculations import EXCESS, FEE, MoneyAccount, Target
from orders.models import (
    Order,
    Payment,
    PaymentMethod,
    Refund,
    RefundAllocation,
    RefundDestination,
    RefundReason,
    RefundStatus,
    RefundTarget,
)
from orders.services import account
from orders.services.locks import lock_order
from shop.errors import InvalidInput, Refused
from shop.money import ZERO, money_sum, to_money
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
    return account.received_total(order)


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


def card_payment_with_room(order: Order, amount: Decimal) -> Payment | None:
    """R21 (CRD Art 13(1)): a card payment of the order that can still take `amount` back
    (what was captured less what its refunds take), the latest first."""
    for payment in order.payments.filter(method=PaymentMethod.CARD).order_by("-received_at", "-pk"):
        taken = payment.refunds.committed_total()
        if payment.amount - taken >= amount:
            return payment
    return None


def spread(money: MoneyAccount, amount: Decimal) -> dict[Target, Decimal]:
    """A refund that names no target (staff): taken from the overpayment first, then the
    lines last paid for, the fee last."""
    order = [EXCESS, *reversed([t for t in money.targets() if t not in (FEE, EXCESS)]), FEE]
    left, take = to_money(amount), {}
    for target in order:
        share = min(left, money.refundable(target))
        if share > 0:
            take[target] = share
            left -= share
    return take


def create_refund(
    *,
    order_id: int,
    reason: RefundReason | str,
    take: Mapping[Target, Decimal] | None = None,
    amount: Decimal | None = None,
    due_date: date | None = None,
    iban: str | None = None,
    account_holder: str | None = None,
    hold: bool = False,
    payment: Payment | None = None,
    note: str = "",
) -> Refund:
    """Create a refund under the order's row lock (R32): `take` says how much comes from
    each target of the order's money account (a line id, FEE or EXCESS); a plain `amount`
    (staff) is spread over the account. Never more than a target holds: refused.

    R21 (CRD Art 13(1)): back the way the money came. A card payment that can take it
    back: the card; otherwise the bank account the money came from; another account only
    when the customer names one (`iban`).
    """
    if take is None and amount is None:
        raise InvalidInput.single("amount", "required", "Say how much to refund.")
    with transaction.atomic():
        order = lock_order(order_id)
        money = account.money_account(order)
        if take is None:
            amount = to_money(amount)
            if amount <= 0:
                raise InvalidInput.single("amount", "not_positive", "A refund must be positive.")
            take = spread(money, amount)
            if money_sum(take.values()) < amount:
                raise _exceeds(order, money, amount)
        take = {target: to_money(value) for target, value in take.items() if to_money(value)}
        amount = money_sum(take.values())
        if amount <= 0 or any(value < 0 for value in take.values()):
            raise InvalidInput.single("amount", "not_positive", "A refund must be positive.")
        if money.over_limit(take):
            raise _exceeds(order, money, amount, over=money.over_limit(take))
        destination = RefundDestination.IBAN
        if iban:
            iban = normalise_iban(iban)
        else:
            if payment is None or payment.method != PaymentMethod.CARD:
                payment = card_payment_with_room(order, amount)
            if payment is not None and payment.method == PaymentMethod.CARD:
                destination, iban = RefundDestination.CARD, ""
            else:
                payment = None
                iban, bank_holder = default_destination(order)
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
        rows = account.allocation_rows(take)
        for row in rows:
            row.refund = refund
        RefundAllocation.objects.bulk_create(rows)
    return refund


def _exceeds(order: Order, money: MoneyAccount, amount: Decimal, over=None) -> Refused:
    facts = {
        "paid": str(money.received),
        "refunded": str(money.refunded_total),
        "requested": str(amount),
        "available": str(money.refundable_total),
    }
    if over:
        facts["over"] = {str(target): str(left) for target, left in over.items()}
    return Refused(
        "refund_exceeds_paid", "The refunds of this order would exceed what was paid.", **facts
    )


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


def reduce_refund(
    *,
    refund_id: int,
    amount: Decimal,
    note: str = "",
    keep: Mapping[Target, Decimal] | None = None,
) -> Refund:
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
            _lower_allocations(refund, keep=keep, total=amount)
            refund.amount = amount
            refund.note = (note or refund.note)[:300]
        refund.save()
    return refund


def _lower_allocations(
    refund: Refund, *, keep: Mapping[Target, Decimal] | None, total: Decimal
) -> None:
    """R32 with R22: what the lowered refund still takes from each target. `keep` names it
    per target; without it, the cut comes off the fee first, then the lines last taken."""
    rows = list(refund.allocations.order_by("-pk"))
    for row in rows if keep is not None else []:
        target = account.target_of(row.target, row.line_id)
        row.amount = min(row.amount, to_money(keep.get(target, ZERO)))
    excess = money_sum(row.amount for row in rows) - total
    rows.sort(key=lambda row: (row.target != RefundTarget.FEE, -row.pk))
    for row in rows:
        cut = min(excess, row.amount)
        row.amount -= cut
        excess -= cut
    if excess < 0:
        raise Refused(
            "refund_increase",
            "A refund can only be lowered here.",
            amount=str(refund.amount),
            requested=str(total),
        )
    RefundAllocation.objects.bulk_update(rows, ["amount"])


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
