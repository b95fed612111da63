"""R32: one money account per order, as arithmetic (pure: no ORM, tested with hypothesis).

Money received for an order is allocated to what the order charges for, in a fixed order:
the delivery fee first (so that what the shop may keep of it, T3.4 and T5.4, is what was
paid first), then the lines the customer still takes, then the lines cancelled since
(their money is owed back), and what is left over is an overpayment (T4.3). Every refund
takes money from one or more of these places ("targets"), never more than each holds.

Money a refund took from a target stays that target's: the refund is part of what was
paid for it, whatever happens to the order later (a dearer substitute, a fee that falls
away). Only the rest of the money received is spread again over what each target still
charges (`account`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from shop.money import ZERO, to_money

FEE = "fee"
EXCESS = "excess"

# A target is FEE, EXCESS or an order line's id.
Target = str | int


def allocate(received: Decimal, charges: Sequence[tuple[Target, Decimal]]) -> dict[Target, Decimal]:
    """Spread `received` over the charges in the order given; the rest is EXCESS.

    >>> allocate(Decimal("20.00"), [(FEE, Decimal("2.00")), (1, Decimal("30.00"))])
    {'fee': Decimal('2.00'), 1: Decimal('18.00'), 'excess': Decimal('0.00')}
    """
    left = max(to_money(received), ZERO)
    paid: dict[Target, Decimal] = {}
    for target, charge in charges:
        share = min(left, max(to_money(charge), ZERO))
        paid[target] = paid.get(target, ZERO) + share
        left -= share
    paid[EXCESS] = paid.get(EXCESS, ZERO) + left
    return paid


def account(
    received: Decimal,
    charges: Sequence[tuple[Target, Decimal]],
    refunded: Mapping[Target, Decimal],
    owed: Iterable[Target] = (),
) -> MoneyAccount:
    """R32: the account of an order that charges `charges` (in the order money covers
    them), received `received`, and whose refunds took `refunded` from each target.
    `owed`: the targets the customer still has to pay for (for `open_amount`)."""
    refunded = {t: to_money(v) for t, v in refunded.items() if to_money(v)}
    still = [(t, max(to_money(c) - refunded.get(t, ZERO), ZERO)) for t, c in charges]
    rest = allocate(to_money(received) - sum(refunded.values(), ZERO), still)
    paid = dict(rest)
    for target, amount in refunded.items():
        paid[target] = paid.get(target, ZERO) + amount
    owed = set(owed)
    open_amount = to_money(sum((charge - rest[t] for t, charge in still if t in owed), ZERO))
    return MoneyAccount(
        received=to_money(received), paid=paid, refunded=refunded, open_amount=open_amount
    )


@dataclass(frozen=True)
class MoneyAccount:
    """An order's money: what was received, where it sits, and what refunds took.

    `paid[t]` is the money allocated to target `t`; `refunded[t]` what refunds that took or
    will take money back (every refund but failed ones) took from `t`."""

    received: Decimal
    paid: Mapping[Target, Decimal]
    refunded: Mapping[Target, Decimal] = field(default_factory=dict)
    open_amount: Decimal = ZERO  # R10, R13: still to pay for what the order charges

    def refundable(self, target: Target) -> Decimal:
        """What may still be given back from `target` (never negative)."""
        return max(self.paid.get(target, ZERO) - self.refunded.get(target, ZERO), ZERO)

    @property
    def overpayment(self) -> Decimal:
        """R32: money received beyond what the order charges for, not yet refunded."""
        return self.refundable(EXCESS)

    @property
    def refunded_total(self) -> Decimal:
        return to_money(sum(self.refunded.values(), ZERO))

    @property
    def refundable_total(self) -> Decimal:
        return to_money(sum((self.refundable(t) for t in self.paid), ZERO))

    def targets(self) -> Iterable[Target]:
        return self.paid.keys()

    def capped(self, take: Mapping[Target, Decimal]) -> dict[Target, Decimal]:
        """`take` with each amount lowered to what its target still holds; zeros dropped."""
        out = {}
        for target, amount in take.items():
            amount = min(to_money(amount), self.refundable(target))
            if amount > 0:
                out[target] = amount
        return out

    def over_limit(self, take: Mapping[Target, Decimal]) -> dict[Target, Decimal]:
        """The targets `take` would overdraw, with what each still holds."""
        return {
            target: self.refundable(target)
            for target, amount in take.items()
            if to_money(amount) > self.refundable(target)
        }
