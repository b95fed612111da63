"""Personal data of the legal app itself, declared into the retention policy."""

from __future__ import annotations

from legal.registry import ERASE_MARKER, ERASE_NULL, declare, json_keep, not_personal, presence

# KA16: a consent carries its own date (kept while it stands, erased once withdrawn).
declare(
    "consents",
    "legal.Consent",
    order_path="order_id",
    dated=True,
    history=False,
    fields={"email": ERASE_MARKER, "user": ERASE_NULL, "order": ERASE_NULL},
)
# A consent outlives the order it was given with: the link goes with the buyer's identity.
declare(
    "identity", "legal.Consent", order_path="order_id", history=False, fields={"order": ERASE_NULL}
)


@presence("consents")
def orders_with_consents(order_ids: list[int]) -> set[int]:
    from legal.models import Consent

    return set(
        Consent.objects.filter(order_id__in=order_ids).order_by().values_list("order_id", flat=True)
    )


# R30: requests and their answers, 3 years after the answer (Art 5(2) accountability).
declare(
    "requests",
    "legal.DataSubjectRequest",
    dated=True,
    history=False,
    fields={
        "email": ERASE_MARKER,
        "user": ERASE_NULL,
        "details": json_keep(),
        "answer": json_keep(),
    },
)

# KA15: customer accounts, until the holder asks for erasure (legal.services.requests).
declare(
    "account",
    "auth.User",
    history=False,
    fields={
        "username": ERASE_MARKER,
        "first_name": ERASE_MARKER,
        "last_name": ERASE_MARKER,
        "email": ERASE_MARKER,
    },
)
not_personal("legal.CustomerAccount", "email_verified_at", reason="a timestamp")
not_personal("legal.SweepCursor", "name", reason="the name of a sweep")
not_personal("auth.Group", "name", reason="a staff group's name")
not_personal("auth.Permission", "name", "codename", reason="a permission's name")
