"""Legal holds (R28): an open claim or dispute postpones erasure until 3 years after it
closes (Commercial Law §406).

Any app can say that an order is held by registering a provider:

    from legal import holds

    @holds.register
    def open_claims(order_ids):
        # order_ids: a list of order ids, or None for "every order you hold"
        for claim in Claim.objects.filter(...):
            yield holds.Hold(order_id=claim.order_id, reason="conformity claim #12",
                             opened_at=claim.received_at, closed_at=claim.closed_at)

Closed holds count too: they keep the order's data until 3 years after they closed. The
ledger (`legal.services.ledger`) asks every provider when it recomputes an order, and
the retention sweep asks again right before it erases anything. When a claim opens or
closes, call `legal.services.ledger.recompute_ledger(order_ids=[...])` so the ledger
shows the hold at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from legal import rules
from shop.calendar import riga_date


@dataclass(frozen=True)
class Hold:
    order_id: int
    reason: str
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def as_rule(self) -> rules.Hold:
        return rules.Hold(
            reason=self.reason,
            opened_on=riga_date(self.opened_at),
            closed_on=riga_date(self.closed_at) if self.closed_at else None,
        )


Provider = Callable[[list[int] | None], Iterable[Hold]]
_providers: list[Provider] = []


def register(provider: Provider) -> Provider:
    """Add a provider of holds; usable as a decorator. Registering twice is harmless."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def unregister(provider: Provider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def providers() -> list[Provider]:
    return list(_providers)


def holds_for(order_ids: Iterable[int] | None) -> dict[int, list[Hold]]:
    """{order id: its holds} from every provider; `None` asks for every held order."""
    wanted = None if order_ids is None else list(order_ids)
    found: dict[int, list[Hold]] = defaultdict(list)
    if wanted is not None and not wanted:
        return found
    allowed = None if wanted is None else set(wanted)
    for provider in _providers:
        for hold in provider(wanted):
            if allowed is None or hold.order_id in allowed:
                found[hold.order_id].append(hold)
    return found


def open_hold_order_ids() -> set[int]:
    return {order_id for order_id, hs in holds_for(None).items() if any(h.is_open for h in hs)}


def staff_holds(order_ids: list[int] | None) -> Iterable[Hold]:
    """Holds staff placed in the admin (disputes, authority requests)."""
    from legal.models import LegalHold
    from legal.sql import ids_in

    queryset = LegalHold.objects.all()
    if order_ids is not None:
        queryset = queryset.filter(ids_in(LegalHold, "order_id", order_ids))
    for hold in queryset.only("order_id", "reason", "note", "opened_at", "closed_at"):
        reason = hold.get_reason_display()
        if hold.note:
            reason = f"{reason}: {hold.note}"
        yield Hold(
            order_id=hold.order_id,
            reason=str(reason),
            opened_at=hold.opened_at,
            closed_at=hold.closed_at,
        )
