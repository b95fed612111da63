"""Use cases of withdrawals (R15-R22). Each takes the order's row lock first, then the
withdrawal's, so concurrent requests on one order run one after the other.

- `receive_withdrawal`: a statement by any channel (API, button pages, staff): checks
  R15-R17, creates the withdrawal and its refund (held until the goods or proof arrive,
  or at once before dispatch), and emails the acknowledgement after commit (R19).
- `attach_proof_of_dispatch`: the customer's proof releases the hold (R21).
- `record_goods_received` / `return_delivered`: the goods are back (R20), late ones flagged.
- `inspect_withdrawal`: per line accepted, with a deduction, or rejected (R22); the refund
  is lowered accordingly and released.
- `returned_to_sender`: an outbound parcel came back undelivered after a withdrawal: the
  goods are back and the refund released (R21), not the customer's fault (R14c).
- `close_finished_orders`: delivered orders whose period is over and nothing is open (no
  withdrawal, refund, claim, or outbound parcel still on its way).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from orders.calculations import FEE
from orders.models import (
    AWAITING_PAYMENT,
    OPEN_REFUND_STATUSES,
    CancelReason,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Refund,
    RefundReason,
    RefundStatus,
)
from orders.selectors import possession_time
from orders.services import refunds
from orders.services.account import money_account
from orders.services.lifecycle import cancel_order, release_units
from orders.services.locks import lock_order
from returns import rules
from returns.models import (
    OPEN_WITHDRAWAL_STATUSES,
    InspectionOutcome,
    RejectionGround,
    Withdrawal,
    WithdrawalLine,
    WithdrawalStatus,
)
from returns.withdrawals import emails, proof, shipping
from shop.errors import InvalidInput, Refused
from shop.money import ZERO, money_sum, to_money
from shop.selectors import latvian_calendar

# Two identical statements for one order within this window are one statement (a double
# click, a retried request).
DUPLICATE_WINDOW = timedelta(minutes=10)
# A statement "received" in the future is a typing error (staff entry) or a wrong clock.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class ReceivedWithdrawal:
    withdrawal: Withdrawal
    created: bool  # False: the same statement was received a moment ago


@dataclass(frozen=True)
class LineInspection:
    outcome: str
    deduction: Decimal = ZERO
    rejection_ground: str = ""
    note: str = ""


# --- Reading what is left ------------------------------------------------------------------


def withdrawable_lines(order: Order) -> list[OrderLine]:
    """Lines a customer can withdraw from: ordered ones (a replaced line's substitute is
    a line of its own); cancelled lines were refunded when they were cancelled."""
    return list(order.lines.filter(status=LineStatus.ORDERED).order_by("pk"))


def withdrawn_quantities(order: Order) -> dict[int, int]:
    """Quantities already withdrawn per order line, by all earlier statements."""
    taken: dict[int, int] = {}
    for line_id, quantity in WithdrawalLine.objects.filter(withdrawal__order=order).values_list(
        "order_line_id", "quantity"
    ):
        taken[line_id] = taken.get(line_id, 0) + quantity
    return taken


def remaining_quantities(order: Order) -> dict[int, int]:
    taken = withdrawn_quantities(order)
    return {
        line.pk: line.quantity - taken.get(line.pk, 0)
        for line in withdrawable_lines(order)
        if line.quantity - taken.get(line.pk, 0) > 0
    }


def period_end(order: Order, calendar=None) -> datetime | None:
    """R16: the end of the withdrawal period (`orders.rules`, the one place); None before
    the last parcel of the order's goods is delivered."""
    delivered_at = possession_time(order)
    if delivered_at is None:
        return None
    return rules.withdrawal_period_end(delivered_at, calendar or latvian_calendar())


# --- Receiving a statement (R15-R19) ----------------------------------------------------------


def _checked_iban(raw: str) -> str:
    """R17: MOD-97 checked; a wrong IBAN is a refused statement (422 `invalid_iban`)."""
    try:
        return refunds.normalise_iban(raw)
    except InvalidInput as exc:
        if exc.errors and exc.errors[0].get("code") == "iban_not_sepa":
            raise Refused(
                "iban_not_sepa",
                "Refunds are paid by SEPA transfer: give an account in a SEPA country.",
                field="iban",
            ) from exc
        raise Refused(
            "invalid_iban",
            "The IBAN for the refund is not valid (MOD-97 check).",
            field="iban",
        ) from exc


def _fingerprint(order_id: int, requested: dict[str, int], iban: str, holder: str, reason: str):
    canonical = json.dumps(
        [order_id, sorted(requested.items()), iban, holder.casefold(), reason],
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _requested(lines: Iterable[RequestedLine]) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for index, line in enumerate(lines):
        if line.quantity < 1:
            raise InvalidInput.single(
                f"lines.{index}.quantity", "min_value", "A quantity is at least 1."
            )
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return wanted


def check_may_withdraw(order: Order, *, received_at: datetime, calendar=None) -> datetime | None:
    """R15, R16: who may withdraw and until when. Returns the period end (None before
    delivery: always in time)."""
    if not order.is_consumer:
        raise Refused(
            "not_a_consumer",
            "Only a consumer may withdraw from the contract (terms 7.1); this order was "
            "placed by a business buyer.",
        )
    if order.status == OrderStatus.CANCELLED:
        raise Refused(
            "order_cancelled", "The order is cancelled.", cancel_reason=order.cancel_reason
        )
    calendar = calendar or latvian_calendar()
    in_time, end = rules.statement_in_time(
        received_at=received_at, delivered_at=possession_time(order), calendar=calendar
    )
    if not in_time:
        raise Refused(
            "withdrawal_period_expired",
            "The withdrawal period is over (terms 7.1, 7.3).",
            deadline=end,
        )
    return end


def _choose(
    order_lines: list[OrderLine], remaining: dict[int, int], requested: dict[str, int]
) -> dict[int, int]:
    """{order line id: quantity}; empty `requested` means everything that remains."""
    if not requested:
        if not remaining:
            raise Refused("nothing_to_withdraw", "Every line of this order is withdrawn already.")
        return dict(remaining)
    by_sku: dict[str, list[OrderLine]] = {}
    for line in order_lines:
        by_sku.setdefault(line.sku, []).append(line)
    chosen: dict[int, int] = {}
    for index, (sku, quantity) in enumerate(sorted(requested.items())):
        lines = by_sku.get(sku)
        if not lines:
            raise InvalidInput.single(
                f"lines.{index}.sku", "not_in_order", f"{sku} is not a line of this order."
            )
        left = sum(remaining.get(line.pk, 0) for line in lines)
        if quantity > left:
            raise Refused(
                "quantity_exceeds_remaining",
                "More than is left to withdraw of this line.",
                sku=sku,
                requested=quantity,
                remaining=left,
            )
        for line in lines:
            take = min(quantity, remaining.get(line.pk, 0))
            if take:
                chosen[line.pk] = take
                quantity -= take
    return chosen


def receive_withdrawal(
    *,
    order_id: int,
    lines: Sequence[RequestedLine],
    iban: str = "",
    account_holder: str = "",
    reason: str = "",
    channel: str,
    received_at: datetime | None = None,
    recorded_by=None,
    staff_note: str = "",
) -> ReceivedWithdrawal:
    """R17: a withdrawal statement, by any channel. Refused (422) when the buyer is a
    business (R15), the period is over (R16), more is asked than is left, or the IBAN is
    wrong. Before dispatch the refund is created at once; after it, held until the goods
    or the proof of dispatch arrive (R21). The acknowledgement goes out after commit (R19).
    """
    now = timezone.now()
    received_at = received_at or now
    if timezone.is_naive(received_at):
        raise InvalidInput.single("received_at", "naive", "The time needs a time zone.")
    if received_at > now + CLOCK_SKEW:
        raise InvalidInput.single("received_at", "in_future", "The time is in the future.")
    # R17, R21: an account only when the customer names one; the refund goes back the way
    # the money came otherwise (the card, or the account the bank payment came from).
    iban = _checked_iban(iban) if (iban or "").strip() else ""
    account_holder = " ".join((account_holder or "").split())[:140]
    reason = (reason or "").strip()[:2000]
    requested = _requested(lines)
    fingerprint = _fingerprint(order_id, requested, iban, account_holder, reason)
    calendar = latvian_calendar()

    with transaction.atomic():
        order = lock_order(order_id)
        end = check_may_withdraw(order, received_at=received_at, calendar=calendar)
        duplicate = (
            Withdrawal.objects.filter(
                order=order, fingerprint=fingerprint, recorded_at__gte=now - DUPLICATE_WINDOW
            )
            .order_by("-pk")
            .first()
        )
        if duplicate is not None:
            return ReceivedWithdrawal(duplicate, created=False)

        order_lines = withdrawable_lines(order)
        earlier = withdrawn_quantities(order)
        remaining = {
            line.pk: line.quantity - earlier.get(line.pk, 0)
            for line in order_lines
            if line.quantity - earlier.get(line.pk, 0) > 0
        }
        chosen = _choose(order_lines, remaining, requested)
        lines_by_id = {line.pk: line for line in order_lines}
        covers = rules.covers_whole_order(
            withdrawn=chosen,
            earlier=earlier,
            ordered={line.pk: line.quantity for line in order_lines},
        )
        take = refund_take(
            {
                line_id: (lines_by_id[line_id].unit_price, quantity, ZERO, False)
                for line_id, quantity in chosen.items()
            },
            delivery_fee=order.delivery_fee,
            covers_whole_order=covers,
        )
        dispatched = shipping.goods_dispatched(order)
        if not dispatched and not covers and order.status in AWAITING_PAYMENT:
            raise Refused(
                "partial_withdrawal_before_payment",
                "Before the invoice is paid, only the whole order can be withdrawn from.",
            )
        # R32: never more than what each line and the fee hold (an unpaid order: nothing).
        take = money_account(order).capped(take)
        amount = money_sum(take.values())

        withdrawal = Withdrawal(
            order=order,
            channel=channel,
            received_at=received_at,
            recorded_at=now,
            recorded_by=recorded_by,
            staff_note=staff_note[:300],
            iban=iban,
            account_holder=account_holder,
            reason=reason,
            fingerprint=fingerprint,
            period_end=end,
            before_dispatch=not dispatched,
            return_deadline=rules.return_deadline(received_at, calendar) if dispatched else None,
            refund_due_date=rules.refund_due_date(received_at),
            return_code=shipping.return_code(order) if dispatched else "",
            includes_delivery_fee=covers,
            refund_amount=amount,
        )
        withdrawal.save()
        WithdrawalLine.objects.bulk_create(
            [
                WithdrawalLine(
                    withdrawal=withdrawal,
                    order_line=lines_by_id[line_id],
                    quantity=quantity,
                    unit_price=lines_by_id[line_id].unit_price,
                )
                for line_id, quantity in chosen.items()
            ]
        )
        if amount > 0:
            withdrawal.refund = refunds.create_refund(
                order_id=order.pk,
                take=take,
                reason=RefundReason.WITHDRAWAL,
                due_date=withdrawal.refund_due_date,
                iban=iban or None,
                account_holder=account_holder or None,
                hold=dispatched,  # R21: held until the goods or the proof come back
                note=f"Withdrawal #{withdrawal.pk}",
            )
        if not dispatched:
            _stop_before_dispatch(order, chosen=chosen, earlier=earlier, covers=covers, at=now)
            withdrawal.mark_refunded()
        withdrawal.save()
        emails.withdrawal_received(withdrawal_id=withdrawal.pk)
    return ReceivedWithdrawal(withdrawal, created=True)


def _stop_before_dispatch(
    order: Order, *, chosen: dict[int, int], earlier: dict[int, int], covers: bool, at
) -> None:
    """R16 (CRD Art 9(3)): the goods have not left. The whole order: the shipment not yet
    registered is stopped and the order cancelled (nothing more to refund: the withdrawal's
    refund covers it). Part of it: the units withdrawn do not ship and their stock is
    released; a line withdrawn from in full is cancelled."""
    if covers:
        shipping.stop_unregistered_shipments(order_id=order.pk)
        cancel_order(order_id=order.pk, reason=CancelReason.CUSTOMER, at=at)
        return
    release_units(order_id=order.pk, units=chosen, at=at)


def _lock(withdrawal_id: int) -> Withdrawal:
    """The order's row first, then the withdrawal's (the fixed lock order)."""
    order_id = Withdrawal.objects.values_list("order_id", flat=True).get(pk=withdrawal_id)
    lock_order(order_id)
    return Withdrawal.objects.select_for_update().select_related("order").get(pk=withdrawal_id)


def _release_hold(withdrawal: Withdrawal) -> None:
    refund = withdrawal.refund
    if refund is not None and refund.status == RefundStatus.PENDING:
        refunds.release_refund(refund_id=refund.pk)


def attach_proof_of_dispatch(*, withdrawal_id: int, upload) -> Withdrawal:
    """R20, R21 (T7.7): the customer's proof of having sent the goods back ends the hold:
    the refund is paid without waiting for the goods."""
    checked = proof.check_proof(upload)  # before any lock: reading a file takes time
    now = timezone.now()
    with transaction.atomic():
        withdrawal = _lock(withdrawal_id)
        if withdrawal.before_dispatch or withdrawal.status not in (
            WithdrawalStatus.RECEIVED,
            WithdrawalStatus.GOODS_IN_TRANSIT,
            WithdrawalStatus.GOODS_RECEIVED,
        ):
            raise Refused(
                "proof_not_needed",
                "This withdrawal needs no proof of dispatch any more.",
                status=withdrawal.status,
            )
        withdrawal.proof_of_dispatch.save(
            checked.file_name, ContentFile(checked.content), save=False
        )
        withdrawal.proof_content_type = checked.content_type
        withdrawal.proof_uploaded_at = now
        if withdrawal.status == WithdrawalStatus.RECEIVED:
            withdrawal.goods_sent(at=now)
        withdrawal.save()
        _release_hold(withdrawal)
    return withdrawal


def _late(withdrawal: Withdrawal, at: datetime) -> bool:
    """R22 (T7.4, T7.10): back after the return deadline, unless proof shows the goods
    were sent in time."""
    if withdrawal.return_deadline is None:
        return False
    if withdrawal.proof_uploaded_at and withdrawal.proof_uploaded_at <= withdrawal.return_deadline:
        return False
    return rules.returned_late(goods_received_at=at, deadline=withdrawal.return_deadline)


def record_goods_received(*, withdrawal_id: int, at: datetime | None = None, by=None) -> Withdrawal:
    """R20: the goods are back (the courier's `return_delivered`, or staff). Idempotent."""
    at = at or timezone.now()
    with transaction.atomic():
        withdrawal = _lock(withdrawal_id)
        if withdrawal.goods_received_at is not None:
            return withdrawal
        if not withdrawal.awaiting_goods or withdrawal.before_dispatch:
            raise Refused(
                "goods_not_expected",
                "No goods are expected back for this withdrawal.",
                status=withdrawal.status,
            )
        withdrawal.goods_arrived(at=at, late=_late(withdrawal, at))
        withdrawal.save()
    return withdrawal


def returned_to_sender(*, order_id: int, at: datetime, line_ids: Iterable[int] = ()) -> int:
    """R20, R21, R14c: an outbound parcel came back to the shop undelivered after the
    customer withdrew: the goods are back for the withdrawals waiting for them (received,
    and the held refund released without waiting for an inspection: the customer never had
    the goods). `line_ids`: the order lines the parcel carried (empty: unknown, all).
    Returns how many withdrawals took the goods (0: not a withdrawal's)."""
    waiting = Withdrawal.objects.filter(
        order_id=order_id,
        before_dispatch=False,
        status__in=[WithdrawalStatus.RECEIVED, WithdrawalStatus.GOODS_IN_TRANSIT],
    )
    line_ids = list(line_ids)
    if line_ids:
        waiting = waiting.filter(lines__order_line_id__in=line_ids).distinct()
    waiting = list(waiting.order_by("pk").values_list("pk", flat=True))
    for withdrawal_id in waiting:
        withdrawal = record_goods_received(withdrawal_id=withdrawal_id, at=at)
        _release_hold(withdrawal)
    return len(waiting)


def return_delivered(*, order_id: int, at: datetime) -> int:
    """The return shipment of an order reached the shop (`return_delivered`, R20): the
    goods of its withdrawals still waiting for them are received. Returns how many."""
    waiting = list(
        Withdrawal.objects.filter(
            order_id=order_id,
            before_dispatch=False,
            status__in=[WithdrawalStatus.RECEIVED, WithdrawalStatus.GOODS_IN_TRANSIT],
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for withdrawal_id in waiting:
        record_goods_received(withdrawal_id=withdrawal_id, at=at)
    return len(waiting)


# --- Inspection and the refund (R21, R22) ------------------------------------------------------


def _checked_inspection(line: WithdrawalLine, result: LineInspection) -> LineInspection:
    field = f"lines.{line.pk}"
    note = (result.note or "").strip()[:300]
    try:
        deduction = to_money(result.deduction or ZERO)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidInput.single(f"{field}.deduction", "invalid", "Not an amount.") from exc
    if result.outcome == InspectionOutcome.ACCEPTED:
        return LineInspection(InspectionOutcome.ACCEPTED, ZERO, "", note)
    if result.outcome == InspectionOutcome.ACCEPTED_WITH_DEDUCTION:
        if deduction <= 0:
            raise InvalidInput.single(
                f"{field}.deduction", "required", "A deduction needs an amount above zero."
            )
        if deduction > line.price:
            raise InvalidInput.single(
                f"{field}.deduction",
                "exceeds_price",
                f"A deduction is never more than the line's price ({line.price} EUR).",
            )
        if not note:
            raise InvalidInput.single(
                f"{field}.note", "required", "A deduction needs its reason (R22)."
            )
        return LineInspection(InspectionOutcome.ACCEPTED_WITH_DEDUCTION, deduction, "", note)
    if result.outcome == InspectionOutcome.REJECTED:
        if result.rejection_ground not in RejectionGround.values:
            raise InvalidInput.single(
                f"{field}.rejection_ground", "required", "A rejection needs its ground."
            )
        if (
            result.rejection_ground == RejectionGround.HYGIENE_UNSEALED
            and not line.order_line.sealed_hygiene
        ):
            raise InvalidInput.single(
                f"{field}.rejection_ground",
                "not_sealed_hygiene",
                "Only a sealed hygiene product can be rejected for being unsealed.",
            )
        return LineInspection(InspectionOutcome.REJECTED, ZERO, result.rejection_ground, note)
    raise InvalidInput.single(f"{field}.outcome", "invalid_choice", "Choose an outcome.")


def inspect_withdrawal(
    *, withdrawal_id: int, results: dict[int, LineInspection], by, at: datetime | None = None
) -> Withdrawal:
    """R22: staff record per returned line accepted, accepted with a deduction (at most
    the line's price, with a reason) or rejected (not returned, incomplete, a sealed hygiene
    product unsealed). The refund becomes what the inspection leaves (R21) and is
    released; nothing left: the withdrawal is rejected and its refund dropped."""
    at = at or timezone.now()
    with transaction.atomic():
        withdrawal = _lock(withdrawal_id)
        if withdrawal.status != WithdrawalStatus.GOODS_RECEIVED:
            raise Refused(
                "not_ready_for_inspection",
                "Only returned goods can be inspected.",
                status=withdrawal.status,
            )
        lines = list(withdrawal.lines.select_related("order_line").order_by("pk"))
        checked = []
        for line in lines:
            if line.pk not in results:
                raise InvalidInput.single(
                    f"lines.{line.pk}.outcome", "required", "Every line needs an outcome."
                )
            checked.append((line, _checked_inspection(line, results[line.pk])))
        for line, result in checked:
            line.outcome = result.outcome
            line.deduction = result.deduction
            line.rejection_ground = result.rejection_ground
            line.inspection_note = result.note
            line.save()
        withdrawal.complete_inspection(at=at, by=by)
        final = inspected_amount(withdrawal, lines)
        _settle_refund(withdrawal, final, keep=inspected_take(withdrawal, lines))
        withdrawal.save()
    return withdrawal


def refund_take(
    lines: dict[int, tuple[Decimal, int, Decimal, bool]],
    *,
    delivery_fee: Decimal,
    covers_whole_order: bool,
) -> dict:
    """R21 with R32: what a withdrawal's refund takes from each order line and the fee.
    `lines`: order line id -> (unit price, quantity, deduction, rejected). The amounts are
    `rules.withdrawal_refund_amount`'s, per target."""
    take: dict = {}
    for line_id, (unit_price, quantity, deduction, rejected) in lines.items():
        take[line_id] = rules.withdrawal_refund_amount(
            lines=[
                rules.WithdrawnLine(unit_price, quantity, deduction=deduction, rejected=rejected)
            ],
            delivery_fee=ZERO,
            covers_whole_order=False,
        )
    if covers_whole_order:
        take[FEE] = to_money(delivery_fee)
    return take


def inspected_take(withdrawal: Withdrawal, lines: list[WithdrawalLine]) -> dict:
    """R21 with R22: what the refund takes from each line and the fee after inspection.
    The fee comes back only when the goods accepted, with earlier withdrawals, cover the
    whole contract: a rejected line (a sealed hygiene product unsealed, goods not returned)
    leaves part of the contract standing, and the fee with it."""
    rejected = any(line.outcome == InspectionOutcome.REJECTED for line in lines) or (
        WithdrawalLine.objects.filter(
            withdrawal__order_id=withdrawal.order_id, outcome=InspectionOutcome.REJECTED
        )
        .exclude(withdrawal=withdrawal)
        .exists()
    )
    return refund_take(
        {
            line.order_line_id: (
                line.unit_price,
                line.quantity,
                line.deduction,
                line.outcome == InspectionOutcome.REJECTED,
            )
            for line in lines
        },
        delivery_fee=withdrawal.order.delivery_fee,
        covers_whole_order=withdrawal.includes_delivery_fee and not rejected,
    )


def inspected_amount(withdrawal: Withdrawal, lines: list[WithdrawalLine]) -> Decimal:
    """R21 with R22: the refund after inspection; every line rejected: nothing at all.
    Never more than was set aside when the statement arrived (what had been paid)."""
    return min(money_sum(inspected_take(withdrawal, lines).values()), withdrawal.refund_amount)


def _settle_refund(withdrawal: Withdrawal, final: Decimal, keep: dict | None = None) -> None:
    refund = withdrawal.refund
    if refund is not None:
        refund = Refund.objects.get(pk=refund.pk)
        adjustable = refund.status in (RefundStatus.PENDING, RefundStatus.READY)
        if adjustable and final < refund.amount:
            refund = refunds.reduce_refund(
                refund_id=refund.pk,
                amount=final,
                keep=keep,
                note=f"Withdrawal #{withdrawal.pk}: after inspection (R22)",
            )
        if refund.status == RefundStatus.PENDING:
            refund = refunds.release_refund(refund_id=refund.pk)
        withdrawal.refund = refund
    withdrawal.refund_amount = final
    if final > 0:
        withdrawal.mark_refunded()
    else:
        withdrawal.reject()


# --- Closing orders -------------------------------------------------------------------------


def orders_to_close(now: datetime):
    """Delivered orders at least 14 days old with nothing open: the candidates of
    `close_finished_orders`. The partial index on delivered orders keeps this cheap."""
    from delivery.models import PARCEL_ON_ITS_WAY_STATUSES, Shipment, ShipmentDirection
    from returns.models import OPEN_CLAIM_STATUSES, Claim

    horizon = now - timedelta(days=rules.WITHDRAWAL_DAYS)
    return (
        Order.objects.filter(status=OrderStatus.DELIVERED, delivered_at__lt=horizon)
        .exclude(
            Exists(
                Withdrawal.objects.filter(order=OuterRef("pk"), status__in=OPEN_WITHDRAWAL_STATUSES)
            )
        )
        .exclude(
            Exists(Refund.objects.filter(order=OuterRef("pk"), status__in=OPEN_REFUND_STATUSES))
        )
        .exclude(Exists(Claim.objects.filter(order=OuterRef("pk"), status__in=OPEN_CLAIM_STATUSES)))
        # R16: never while an outbound parcel is waiting or on its way.
        .exclude(
            Exists(
                Shipment.objects.filter(
                    order=OuterRef("pk"),
                    direction=ShipmentDirection.OUTBOUND,
                    status__in=PARCEL_ON_ITS_WAY_STATUSES,
                )
            )
        )
    )


def close_finished_orders(*, now: datetime, batch: int = 500) -> int:
    """An order becomes `closed` when its withdrawal period is over and nothing is open
    (no withdrawal, refund or claim in progress, no outbound parcel on its way).
    Idempotent; re-checked under the lock."""
    calendar = latvian_calendar()
    closed = 0
    last = 0
    while True:
        rows = list(
            orders_to_close(now)
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "delivered_at")[:batch]
        )
        if not rows:
            return closed
        last = rows[-1][0]
        for order_id, delivered_at in rows:
            if now <= rules.withdrawal_period_end(delivered_at, calendar):
                continue
            with transaction.atomic():
                order = lock_order(order_id)
                if (
                    order.status == OrderStatus.DELIVERED
                    and orders_to_close(now).filter(pk=order_id).exists()
                ):
                    order.close(at=now)
                    order.save()
                    closed += 1
