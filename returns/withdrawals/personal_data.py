"""Personal data of withdrawals, declared into the retention policy (legal.registry).

The statement (R17) is KA10 data of its order (category `claims`, which covers claims
and withdrawals): the account holder, the optional reason, staff's note on how it came in,
the customer's proof of dispatch and staff's free-text reason of each line's inspection
(R22: a deduction or a rejection may describe the person, their use of the goods). The
refund IBAN is an accounting record like the refund's own (category `settlement`,
Accounting Law §28); the history keeps no copy of it.
"""

from __future__ import annotations

from django.db.models import Max

from legal import holds
from legal.registry import ERASE_MARKER, ExportedFile, declare, event_source, exportable

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
    "claims",
    "returns.WithdrawalLine",
    order_path="withdrawal__order_id",
    fields={"inspection_note": ERASE_MARKER},
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
        "includes_delivery_fee",
        "proof_content_type",
        "proof_uploaded_at",
        "goods_received_at",
        "returned_late",
        "inspected_at",
    ],
    # R20: no customer endpoint serves the proof back yet (only staff's admin page), so
    # the export names it without a link.
    files={"proof_of_dispatch": ExportedFile(content_type="proof_content_type")},
)
# R22: each withdrawn line with its inspection: outcome, deduction, ground and reason.
exportable(
    "returns.WithdrawalLine",
    key="lines",
    order_path="withdrawal__order_id",
    within="returns.Withdrawal",
    parent_path="withdrawal_id",
    related={"sku": "order_line__sku", "name": "order_line__name_lv"},
    fields=["quantity", "unit_price", "outcome", "deduction", "rejection_ground"],
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
