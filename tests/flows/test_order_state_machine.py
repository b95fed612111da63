"""Where flows meet on one order: a hypothesis state machine (STYLE.md, "Test the meeting").

It drives a few orders through random interleavings of every flow — checkout; bank
payments booked before and after their deadlines (partial, over, duplicate); card
payments; confirmation; the deadline jobs at random moments; shipping in one or two
parcels; courier events in and out of order, failures with and without a reason;
customer and staff cancellation; withdrawals (partial and whole, before and after
delivery, by API, button and staff); return, inspection with deductions and rejections;
conformity claims with every decision; R13 substitution; refund approval, SEPA export,
settlement and failure; erasure and restriction requests; the retention sweep at later
dates — and after every step checks the invariants the law and the books need:

- R32: per target (line, fee, overpayment) and per order, refunded never exceeds paid;
  received = kept + refunded + still refundable; an overpayment is always refunded or
  queued; a cancelled order holds nothing it owes back (but the fee T3.4/T5.4 keep).
- R14c, Build 5: nothing is registered with the courier for a cancelled order.
- R16: a delivered order's delivery time is the last outbound parcel's; the withdrawal
  deadline follows it; an order is not closed while an outbound parcel is open.
- R8: stock never goes negative.
- R28, R29: the sweep never raises and erases nothing that is held.

Runs with a fixed derandomised seed; STATEFUL_EXAMPLES and STATEFUL_STEPS make it longer
(README, "The state machine"). The state of each example is rolled back afterwards.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import transaction
from django.http import Http404
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from delivery.models import Shipment, ShipmentDirection, ShipmentStatus
from delivery.services.courier_events import CourierEventData, apply_courier_event
from delivery.services.shipments import register_shipment
from legal.access import Subject
from legal.models import Disclosure, PersonalDataRecord, RequestKind
from legal.services.requests import receive_request
from legal.services.retention import enforce_retention
from orders.calculations import FEE
from orders.models import (
    LineStatus,
    Order,
    OrderStatus,
    PaymentMethod,
    Refund,
    RefundStatus,
)
from orders.selectors import order_summary, withdrawal_deadline
from orders.services import refunds as refund_services
from orders.services.account import money_account
from orders.services.bank import received_at as booked_at
from orders.services.checkout import CustomerData, DeliveryData, LineRequest, place_order
from orders.services.lifecycle import cancel_by_customer, cancel_order, establish_contact
from orders.services.payments import FEE_RETAINED_FOR, record_payment
from orders.services.sepa import export_sepa_refunds
from orders.services.substitution import decide_substitution, mark_line_unavailable
from returns.claims import services as claims
from returns.claims.receiving import ClaimLineRequest
from returns.models import OPEN_WITHDRAWAL_STATUSES, InspectionOutcome, Withdrawal
from returns.models.claims import OPEN_CLAIM_STATUSES, Claim
from returns.withdrawals import services as withdrawals
from returns.withdrawals.services import LineInspection, RequestedLine
from shop.calendar import RIGA, riga_date
from shop.deadlines import run_all
from shop.errors import InvalidInput, Refused
from shop.models import Product
from tests.factories import (
    ParcelMachineFactory,
    PrivacyPolicyVersionFactory,
    ProductFactory,
    TermsVersionFactory,
)

PAYER = "LV97HABA0012345678910"
START = datetime(2026, 12, 7, 10, 0, tzinfo=RIGA)  # a Monday
PRODUCTS = {
    "KEU-A": Decimal("10.00"),
    "KEU-B": Decimal("24.90"),
    "KEU-H": Decimal("30.00"),  # sealed hygiene
    "KEU-S": Decimal("27.50"),  # a substitute
}
# What a refused action may raise: the action is refused and changes nothing.
REFUSALS = (Refused, InvalidInput, Http404, ValueError)

EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "80"))
STEPS = int(os.environ.get("STATEFUL_STEPS", "50"))


OUTCOMES: Counter = Counter()  # (action, "done" | refusal code): what the runs exercised


def attempt(func, /, **kwargs):
    """Run one action in its own savepoint: a refusal rolls back whatever it began."""
    try:
        with transaction.atomic():
            result = func(**kwargs)
    except REFUSALS as exc:
        OUTCOMES[(func.__name__, getattr(exc, "code", type(exc).__name__))] += 1
        return None
    OUTCOMES[(func.__name__, "done")] += 1
    return result


class OrderFlows(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = START
        self._travel = time_machine.travel(self.now, tick=False)
        self._clock = self._travel.start()
        self.counter = itertools.count(1)
        TermsVersionFactory()
        PrivacyPolicyVersionFactory()
        ParcelMachineFactory()
        for sku, price in PRODUCTS.items():
            ProductFactory(sku=sku, price=price, stock=6, sealed_hygiene=sku == "KEU-H")
        self.staff = User.objects.create_user("flows-staff", is_staff=True, is_superuser=True)
        self.orders: list[int] = []
        # Courier events sent per shipment, replayed out of order by `courier_replay`.
        self.sent_events: list[CourierEventData] = []

    def teardown(self):
        self._travel.stop()
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- Helpers ------------------------------------------------------------------------

    def _move(self, delta: timedelta) -> None:
        self.now += delta
        self._clock.move_to(self.now)

    def _order(self, data, **having) -> Order:
        """One of the orders (among those `having`, when there are such)."""
        ids = (
            list(Order.objects.filter(pk__in=self.orders, **having).values_list("pk", flat=True))
            or self.orders
        )
        return Order.objects.get(pk=data.draw(st.sampled_from(sorted(ids)), label="order"))

    def _outbound(self, order: Order):
        return list(
            Shipment.objects.filter(order=order, direction=ShipmentDirection.OUTBOUND).order_by(
                "pk"
            )
        )

    # --- Ordering and money in ------------------------------------------------------------

    @rule(
        lines=st.lists(
            st.tuples(st.sampled_from(["KEU-A", "KEU-B", "KEU-H"]), st.integers(1, 2)),
            min_size=1,
            max_size=3,
            unique_by=lambda line: line[0],
        )
    )
    def place(self, lines):
        placed = attempt(
            place_order,
            customer=CustomerData(
                first_name="Anna",
                last_name="Bērziņa",
                email=f"anna{len(self.orders)}@example.lv",
                phone="+37120000000",
            ),
            capacity="adult",
            delivery=DeliveryData(method="omniva_parcel_machine", parcel_machine_id="9001"),
            lines=[LineRequest(sku=sku, quantity=quantity) for sku, quantity in lines],
            accepted_terms_version="2026-01",
        )
        if placed is not None:
            self.orders.append(placed.order.pk)

    @precondition(lambda self: self.orders)
    @rule(
        data=st.data(),
        kind=st.sampled_from(["open", "partial", "over", "total"]),
        booked_days_ago=st.integers(0, 3),
    )
    def pay_by_bank(self, data, kind, booked_days_ago):
        """R10, R11: booking dates before and after deadlines; partial, over, duplicate."""
        order = self._order(data)
        open_amount = order_summary(order).amount_open
        amount = {
            "open": open_amount,
            "partial": (open_amount / 2).quantize(Decimal("0.01")),
            "over": open_amount + Decimal("5.00"),
            "total": order.total,
        }[kind]
        if amount <= 0:
            return
        booking_day = riga_date(self.now) - timedelta(days=booked_days_ago)
        attempt(
            record_payment,
            order_id=order.pk,
            amount=amount,
            method=PaymentMethod.BANK_TRANSFER,
            received_at=min(booked_at(booking_day), self.now),
            payer_name="Anna Bērziņa",
            payer_iban=PAYER,
        )

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def pay_by_card(self, data):
        """R11s: a card payment of the open amount (the webhook's service)."""
        order = self._order(data)
        amount = order_summary(order).amount_open
        if amount <= 0:
            return
        attempt(
            record_payment,
            order_id=order.pk,
            amount=amount,
            method=PaymentMethod.CARD,
            received_at=self.now,
            stripe_payment_intent=f"pi_flows_{next(self.counter)}",
        )

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def confirm(self, data):
        attempt(establish_contact, order_id=self._order(data).pk)

    @rule(hours=st.integers(1, 96))
    def time_passes_and_deadlines_run(self, hours):
        """R10, R12, R16, R21, R25: the nightly jobs at a random later moment."""
        self._move(timedelta(hours=hours))
        run_all()

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), parcels=st.integers(1, 2), hours=st.integers(1, 60))
    def the_usual_path_again(self, data, parcels, hours):
        """The same as `the_usual_path` (a second rule makes the walk take it more often:
        hypothesis draws rules uniformly)."""
        self.the_usual_path(data=data, parcels=parcels, hours=hours)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), parcels=st.integers(1, 2), hours=st.integers(1, 60))
    def the_usual_path(self, data, parcels, hours):
        """The common case, so that the random walk reaches delivered orders often: the
        open amount paid by bank today, the goods shipped (in one or two parcels) and the
        parcels delivered `hours` later, each at its own time."""
        order = self._order(data, status__in=[OrderStatus.PLACED, OrderStatus.CONFIRMED])
        open_amount = order_summary(order).amount_open
        if open_amount > 0:
            attempt(
                record_payment,
                order_id=order.pk,
                amount=open_amount,
                method=PaymentMethod.BANK_TRANSFER,
                received_at=self.now,
                payer_name="Anna Bērziņa",
                payer_iban=PAYER,
            )
        for _ in range(parcels):
            self._ship(Order.objects.get(pk=order.pk), split=parcels == 2)
        self._move(timedelta(hours=hours))
        for index, shipment in enumerate(self._outbound(Order.objects.get(pk=order.pk))):
            if shipment.barcode and shipment.status != ShipmentStatus.DELIVERED:
                sent = CourierEventData(
                    event_id=f"evt-{next(self.counter)}",
                    barcode=shipment.barcode,
                    event="delivered",
                    occurred_at=self.now - timedelta(hours=index),
                )
                self.sent_events.append(sent)
                attempt(apply_courier_event, event=sent)

    # --- Delivery --------------------------------------------------------------------------

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), split=st.booleans())
    def ship(self, data, split):
        """R14a: one parcel, or the first of two (the rest ships in a second parcel)."""
        self._ship(self._order(data), split)

    def _ship(self, order: Order, split: bool) -> None:
        lines = [line for line in order.lines.filter(status=LineStatus.ORDERED).order_by("pk")]
        shipped = {
            item["line_id"]
            for shipment in self._outbound(order)
            if shipment.status != ShipmentStatus.CANCELLED
            for item in shipment.lines or []
        }
        rest = [line for line in lines if line.pk not in shipped and line.quantity_to_ship]
        if not rest:
            return
        part = rest[:1] if split and len(rest) > 1 else rest
        attempt(
            register_shipment,
            order_id=order.pk,
            barcode=f"CE{next(self.counter):09d}LV",
            lines=[
                {"line_id": line.pk, "sku": line.sku, "quantity": line.quantity_to_ship}
                for line in part
            ],
            by=self.staff,
        )

    @precondition(lambda self: Shipment.objects.filter(barcode__gt="").exists())
    @rule(
        data=st.data(),
        event=st.sampled_from(
            ["accepted", "in_transit", "delivered", "delivery_failed", "returned_to_sender"]
        ),
        reason=st.sampled_from(["", "not_collected", "refused", "weather", "xyz"]),
        hours_ago=st.integers(0, 30),
    )
    def courier_event(self, data, event, reason, hours_ago):
        """R14b, R14c: events with and without a reason, at times in the past."""
        shipment = data.draw(
            st.sampled_from(list(Shipment.objects.filter(barcode__gt="").order_by("pk"))),
            label="shipment",
        )
        sent = CourierEventData(
            event_id=f"evt-{next(self.counter)}",
            barcode=shipment.barcode,
            event=event,
            occurred_at=self.now - timedelta(hours=hours_ago),
            reason=reason if event in ("delivery_failed", "returned_to_sender") else "",
        )
        self.sent_events.append(sent)
        attempt(apply_courier_event, event=sent)

    @precondition(lambda self: self.sent_events)
    @rule(data=st.data())
    def courier_replay(self, data):
        """R14b: a replayed event (same id) changes nothing."""
        attempt(apply_courier_event, event=data.draw(st.sampled_from(self.sent_events)))

    # --- Cancellation ------------------------------------------------------------------

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def customer_cancels(self, data):
        attempt(cancel_by_customer, order_id=self._order(data).pk)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def staff_cancel(self, data):
        order = self._order(data)
        if order.status in (OrderStatus.CANCELLED, OrderStatus.DELIVERED, OrderStatus.CLOSED):
            return
        attempt(cancel_order, order_id=order.pk, reason="staff")

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), accept=st.booleans())
    def substitution(self, data, accept):
        """R13: a line unavailable, a substitute offered, accepted or declined."""
        order = self._order(data)
        line = order.lines.filter(status=LineStatus.ORDERED).order_by("pk").first()
        if line is None or line.sku == "KEU-S":
            return
        offered = attempt(mark_line_unavailable, line_id=line.pk, substitute_sku="KEU-S")
        if offered is not None and offered.status == LineStatus.UNAVAILABLE:
            attempt(decide_substitution, order_id=order.pk, line_id=line.pk, accept=accept)

    # --- Withdrawal ----------------------------------------------------------------------

    @precondition(lambda self: self.orders)
    @rule(
        data=st.data(),
        whole=st.booleans(),
        channel=st.sampled_from(["api", "web", "staff"]),
        with_iban=st.booleans(),
    )
    def withdraw(self, data, whole, channel, with_iban):
        """R16-R19: partial or whole, before or after delivery, by any channel."""
        order = self._order(data, status=data.draw(st.sampled_from(list(OrderStatus))))
        lines = []
        if not whole:
            line = order.lines.filter(status=LineStatus.ORDERED).order_by("pk").first()
            if line is None:
                return
            lines = [RequestedLine(line.sku, 1)]
        attempt(
            withdrawals.receive_withdrawal,
            order_id=order.pk,
            lines=lines,
            iban="LV80BANK0000435195001" if with_iban else "",
            account_holder="Anna Bērziņa" if with_iban else "",
            reason=f"statement {next(self.counter)}",
            channel=channel,
            recorded_by=self.staff if channel == "staff" else None,
        )

    @precondition(lambda self: Withdrawal.objects.exists())
    @rule(data=st.data(), outcome=st.sampled_from(["accepted", "deduction", "rejected"]))
    def goods_back_and_inspected(self, data, outcome):
        """R20, R22: the goods arrive and every line is inspected."""
        withdrawal = data.draw(
            st.sampled_from(list(Withdrawal.objects.order_by("pk"))), label="withdrawal"
        )
        attempt(withdrawals.record_goods_received, withdrawal_id=withdrawal.pk, by=self.staff)
        results = {}
        for line in withdrawal.lines.select_related("order_line"):
            if outcome == "deduction":
                results[line.pk] = LineInspection(
                    InspectionOutcome.ACCEPTED_WITH_DEDUCTION,
                    deduction=Decimal("1.50"),
                    note="Opened beyond what was needed.",
                )
            elif outcome == "rejected" and line.order_line.sealed_hygiene:
                results[line.pk] = LineInspection(
                    InspectionOutcome.REJECTED, rejection_ground="hygiene_unsealed"
                )
            else:
                results[line.pk] = LineInspection(InspectionOutcome.ACCEPTED)
        attempt(
            withdrawals.inspect_withdrawal,
            withdrawal_id=withdrawal.pk,
            results=results,
            by=self.staff,
        )

    # --- Conformity claims ---------------------------------------------------------------

    @precondition(lambda self: self.orders)
    @rule(
        data=st.data(),
        decision=st.sampled_from(["repair", "replacement", "reduction", "termination", "reject"]),
    )
    def claim(self, data, decision):
        """R23-R25: a claim on the first line, decided one way or another."""
        order = self._order(data, delivered_at__isnull=False)
        line = order.lines.exclude(status=LineStatus.REPLACED).order_by("pk").first()
        if line is None:
            return
        claim = attempt(
            claims.receive_claim,
            order_id=order.pk,
            lines=[ClaimLineRequest(sku=line.sku, quantity=1)],
            description="The pump is broken.",
            discovered_on=riga_date(self.now),
            remedy="termination" if decision == "termination" else "repair",
        )
        if claim is None:
            return
        why = {"reason": "Decided in the flows test.", "by": self.staff}
        excluded = {"obstacle": "impossible", "obstacle_reason": "No spare parts."}
        if decision == "repair":
            attempt(claims.decide_repair, claim_id=claim.pk, **why)
        elif decision == "replacement":
            attempt(claims.decide_replacement, claim_id=claim.pk, **why)
        elif decision == "reduction":
            first = claim.lines.order_by("pk").first()
            attempt(
                claims.decide_price_reduction,
                claim_id=claim.pk,
                amounts={first.pk: Decimal("3.00")},
                **why,
                **excluded,
            )
        elif decision == "termination":
            attempt(claims.decide_termination, claim_id=claim.pk, **why, **excluded)
        else:
            attempt(claims.reject_claim, claim_id=claim.pk, **why)

    # --- Money out -----------------------------------------------------------------------

    @precondition(lambda self: Refund.objects.exists())
    @rule(step=st.sampled_from(["approve", "export", "settle", "fail"]))
    def refund_queue(self, step):
        """R21: staff approve, export the SEPA file, the bank settles or returns it."""
        if step == "approve":
            ready = Refund.objects.filter(status=RefundStatus.READY).values_list("pk", flat=True)
            attempt(refund_services.approve_refunds, refund_ids=list(ready), by=self.staff)
        elif step == "export":
            attempt(export_sepa_refunds, by=self.staff)
        elif step == "settle":
            sent = Refund.objects.filter(status=RefundStatus.SENT).values_list("pk", flat=True)
            attempt(refund_services.settle_refunds, refund_ids=list(sent))
        else:
            sent = Refund.objects.filter(status=RefundStatus.SENT).values_list("pk", flat=True)[:1]
            attempt(refund_services.fail_refunds, refund_ids=list(sent), reason="Account closed.")

    # --- Personal data -------------------------------------------------------------------

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), kind=st.sampled_from([RequestKind.ERASURE, RequestKind.RESTRICTION]))
    def data_subject_request(self, data, kind):
        """R30: the customer asks for erasure or restriction (identity proved by link)."""
        order = self._order(data)
        if "@" not in order.email:  # erased already
            return
        attempt(receive_request, subject=Subject(email=order.email), kind=kind, now=self.now)

    @rule(years=st.integers(0, 6))
    def retention_sweep(self, years):
        """R28, R29: the sweep at a later date never raises and erases nothing held."""
        self._move(timedelta(days=365 * years + 1))
        held = self._held_emails()
        report = enforce_retention(now=self.now)
        assert not getattr(report, "failed", 0), "the sweep reported failures"
        for order_id, email in held.items():
            assert Order.objects.get(pk=order_id).email == email, "held data was erased"
        # R29: right after the sweep no personal field is past its date unless held.
        overdue = PersonalDataRecord.objects.filter(
            order_id__in=self.orders,
            keep_until__lt=riga_date(self.now),
            erased_at__isnull=True,
            hold_note="",
        )
        assert not overdue.exists(), list(overdue.values("order_id", "category", "keep_until"))

    def _held_emails(self) -> dict[int, str]:
        held = {}
        for order in Order.objects.filter(pk__in=self.orders):
            open_withdrawal = order.withdrawals.filter(status__in=OPEN_WITHDRAWAL_STATUSES)
            open_refund = order.refunds.exclude(
                status__in=[RefundStatus.SETTLED, RefundStatus.FAILED]
            )
            open_claim = Claim.objects.filter(order=order, status__in=OPEN_CLAIM_STATUSES)
            if open_withdrawal.exists() or open_refund.exists() or open_claim.exists():
                held[order.pk] = order.email
        return held

    # --- Invariants ----------------------------------------------------------------------

    @invariant()
    def money_never_goes_back_beyond_what_was_paid(self):
        """R32: per target and per order, refunded <= paid; an overpayment is refunded or
        queued at once; a cancelled order gives back all it holds but a kept fee."""
        for order in Order.objects.filter(pk__in=self.orders):
            money = money_account(order)
            for target in money.targets():
                assert money.refunded.get(target, 0) <= money.paid[target], (order, target)
            assert money.refunded_total <= money.received
            # Every cent received sits in exactly one place: kept, refunded or refundable.
            assert sum(money.paid.values()) == money.received
            assert money.overpayment == 0, f"{order}: overpayment not refunded"
            if order.status == OrderStatus.CANCELLED:
                left = {t: money.refundable(t) for t in money.targets() if money.refundable(t)}
                if order.cancel_reason in FEE_RETAINED_FOR:
                    left.pop(FEE, None)
                assert not left, f"{order}: a cancelled order still holds {left}"

    @invariant()
    def nothing_ships_for_a_cancelled_order(self):
        """Build 5, R27: no parcel registered with the courier, and nothing disclosed to it,
        after the order was cancelled."""
        for order in Order.objects.filter(pk__in=self.orders, status=OrderStatus.CANCELLED):
            late = Shipment.objects.filter(
                order=order,
                direction=ShipmentDirection.OUTBOUND,
                registered_at__gt=order.cancelled_at,
            )
            assert not late.exists(), f"{order}: registered after its cancellation"
            told = Disclosure.objects.filter(
                order=order, recipient="omniva", disclosed_at__gt=order.cancelled_at
            )
            assert not told.exists(), f"{order}: disclosed to Omniva after its cancellation"

    @invariant()
    def delivery_time_is_the_last_parcels(self):
        """R16: delivered_at is the last outbound parcel's delivery; the withdrawal deadline
        follows it; no order is closed while an outbound parcel travels."""
        for order in Order.objects.filter(
            pk__in=self.orders, status__in=[OrderStatus.DELIVERED, OrderStatus.CLOSED]
        ):
            parcels = [
                s
                for s in self._outbound(order)
                if s.status != ShipmentStatus.CANCELLED and not s.replacement
            ]
            delivered = [s.delivered_at for s in parcels if s.delivered_at]
            if delivered:
                assert order.delivered_at == max(delivered), order
                assert withdrawal_deadline(order) is None or withdrawal_deadline(order) >= max(
                    delivered
                )
            if order.status == OrderStatus.CLOSED:
                open_parcels = [
                    s for s in parcels if s.status in (ShipmentStatus.REGISTERED, "in_transit")
                ]
                assert not open_parcels, f"{order} closed with a parcel on its way"

    @invariant()
    def stock_never_negative(self):
        assert not Product.objects.filter(stock__lt=0).exists()


@pytest.mark.django_db
def test_r32_r16_r28_every_flow_on_one_order_in_random_order():
    """R10-R32 where they meet: random interleavings of every flow on a few orders,
    the invariants checked after every step."""
    run_state_machine_as_test(
        OrderFlows,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    if os.environ.get("STATEFUL_REPORT"):
        for (action, outcome), count in sorted(OUTCOMES.items()):
            print(f"{action:32} {outcome:40} {count}")
