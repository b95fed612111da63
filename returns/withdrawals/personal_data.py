"""Personal data of withdrawals, declared into the retention policy (legal.registry).

The statement (R17) is KA10 data of its order (category `claims`, which covers claims
and withdrawals): the account holder, the optional reason, staff's note on how it came in
and the customer's proof of dispatch. The refund IBAN is an accounting record like the
refund's own (category `settlement`, Accounting Law §28); the history keeps no copy of it.
"""

from __future__ import annotations

from django.db.models import Max

from legal import holds
from legal.registry import ERASE_MARKER, declare, event_source, exportable

declare(
    "claims",
    "returns.Withdrawal",
    order_path="order_id",
    fields={
        "account_holder": ERASE_MARKER,
        "reason": ERASE_MARKER,
        "staff_note": ERASE_MARKER,
        "proof_of_dispatch": ERASE_MARKER,
    },
)
declare(
    "settlement",
    "returns.Withdrawal",
    order_path="order_id",
    fields={"iban": ERASE_MARKER},
    history=False,  # the history excludes the IBAN
)
exportable(
    "returns.Withdrawal",
    key="withdrawals",
    order_path="order_id",
    fields=[
        "id",
        "status",
        "channel",
        "received_at",
        "reason",
        "iban",
        "account_holder",
        "return_deadline",
        "refund_due_date",
        "refund_amount",
        "proof_uploaded_at",
        "goods_received_at",
    ],
)


@event_source
def withdrawal_events(order_ids: list[int]) -> dict:
    """KA7: the acknowledgement follows each statement; the latest one counts."""
    from legal.sql import ids_in
    from returns.models import Withdrawal

    return dict(
        Withdrawal.objects.filter(ids_in(Withdrawal, "order_id", order_ids))
        .order_by()
        .values("order_id")
        .annotate(latest=Max("received_at"))
        .values_list("order_id", "latest")
    )


def _open_withdrawals():
    from django.db.models import Q

    from returns.models.withdrawals import OPEN_WITHDRAWAL_STATUSES

    return Q(status__in=OPEN_WITHDRAWAL_STATUSES)


# R28: an open withdrawal (goods, inspection or refund still to come) holds its order's
# personal data from the sweep and from erasure requests (legal.holds).
holds.declare(
    "withdrawal",
    "returns.Withdrawal",
    order_path="order_id",
    open=_open_withdrawals,
    opened_at="received_at",
    reason="open withdrawal #{pk}",
    fields=["pk"],
)
