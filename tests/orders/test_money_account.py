"""R32: one money account per order. The allocation arithmetic (pure, hypothesis) and the
account's answers as every refund path sees them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.calculations import EXCESS, FEE, MoneyAccount, account, allocate
from orders.models import PaymentMethod, Refund, RefundReason, RefundTarget
from orders.services.account import money_account
from orders.services.payments import record_payment
from orders.services.refunds import create_refund
from shop.errors import Refused
from tests.factories import place_test_order

cents = st.integers(min_value=0, max_value=10_000_00).map(lambda c: Decimal(c) / 100)


@given(received=cents, charges=st.lists(cents, max_size=6))
def test_r32_allocation_spends_every_cent_once(received, charges):
    """R32: what is received is spread over the charges in order, never more than each
    charge, and what is left is the overpayment; nothing is lost or made up."""
    keyed = [(FEE, charges[0])] if charges else []
    keyed += [(i, c) for i, c in enumerate(charges[1:], start=1)]
    paid = allocate(received, keyed)
    assert sum(paid.values()) == received
    for target, charge in keyed:
        assert Decimal(0) <= paid[target] <= charge
    assert paid[EXCESS] == max(received - sum(charges, Decimal(0)), Decimal(0))
    # Earlier charges are covered in full before a later one gets anything.
    seen_short = False
    for target, charge in keyed:
        if seen_short:
            assert paid[target] == 0
        seen_short = seen_short or paid[target] < charge


@given(received=cents, charges=st.lists(cents, min_size=1, max_size=4), data=st.data())
def test_r32_capped_takes_never_overdraw_a_target(received, charges, data):
    keyed = [(i, c) for i, c in enumerate(charges)]
    paid = allocate(received, keyed)
    refunded = {t: data.draw(st.sampled_from([Decimal(0), paid[t]])) for t in paid}
    money = MoneyAccount(received=received, paid=paid, refunded=refunded)
    want = {t: data.draw(cents) for t in paid}
    for target, amount in money.capped(want).items():
        assert 0 < amount <= paid[target] - refunded[target]


@pytest.mark.django_db
def test_r32_fee_is_paid_first_so_no_contact_keeps_only_what_was_paid():
    """R32 with R12 (T3.4): a partial payment covers the fee first; cancelled for lack of
    contact, the shop keeps the fee and gives back the rest."""
    placed = place_test_order([("KEU-001", 1)], prices={"KEU-001": Decimal("30.00")})
    order = placed.order
    record_payment(
        order_id=order.pk,
        amount=Decimal("10.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_at=order.placed_at,
        payer_iban="LV97HABA0012345678910",
    )
    money = money_account(order)
    line = order.lines.get()
    assert money.paid[FEE] == Decimal("2.00")
    assert money.paid[line.pk] == Decimal("8.00")


@pytest.mark.django_db
def test_r32_a_refund_never_takes_more_than_a_line_holds():
    """R32: per line, refunded never exceeds paid: asking for more is refused with the facts."""
    placed = place_test_order(
        [("KEU-001", 1), ("KEU-002", 1)],
        prices={"KEU-001": Decimal("20.00"), "KEU-002": Decimal("20.00")},
    )
    order = placed.order
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=order.placed_at,
        payer_iban="LV97HABA0012345678910",
    )
    first = order.lines.order_by("pk").first()
    create_refund(order_id=order.pk, take={first.pk: Decimal("15.00")}, reason=RefundReason.STAFF)
    with pytest.raises(Refused) as refused:
        create_refund(
            order_id=order.pk, take={first.pk: Decimal("5.01")}, reason=RefundReason.STAFF
        )
    assert refused.value.code == "refund_exceeds_paid"
    refund = create_refund(
        order_id=order.pk, take={first.pk: Decimal("5.00")}, reason=RefundReason.STAFF
    )
    allocation = refund.allocations.get()
    assert (allocation.target, allocation.line_id) == (RefundTarget.LINE, first.pk)
    assert money_account(order).refundable(first.pk) == 0
    assert Refund.objects.filter(order=order).count() == 2


@given(
    received=cents,
    charges=st.lists(cents, min_size=1, max_size=4),
    later=st.lists(cents, min_size=1, max_size=4),
    data=st.data(),
)
def test_r32_money_refunded_stays_with_its_target_whatever_the_order_charges_later(
    received, charges, later, data
):
    """R32: refunds taken from the account stay part of what was paid for their targets
    when the charges change afterwards (a dearer R13 substitute, a fee that falls away):
    per target refunded <= paid, and every cent received sits in exactly one place."""
    keyed = [(FEE, charges[0]), *[(i, c) for i, c in enumerate(charges[1:], 1)]]
    before = account(received, keyed, {})
    refunded = {}
    for target in [*before.targets()]:
        refunded[target] = data.draw(
            st.sampled_from([Decimal(0), before.refundable(target)]), label=str(target)
        )
    changed = [(t, later[i % len(later)]) for i, (t, _c) in enumerate(keyed)]
    after = account(received, changed, refunded, owed=[t for t, _c in changed])
    assert sum(after.paid.values()) == received
    for target in after.targets():
        assert after.refunded.get(target, 0) <= after.paid[target]
    assert after.open_amount >= 0
