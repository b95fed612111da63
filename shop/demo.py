"""Demo data for `seed_demo`: idempotent, safe to run on every `make run`."""

from __future__ import annotations

import os
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from delivery.services import load_demo_parcel_machines
from legal.models import PrivacyPolicyVersion, TermsVersion
from shop.calendar import RIGA
from shop.services import import_products

DEMO_STAFF_USERNAME = "staff"
# A demo login printed by `make run`; not a secret. Never seeded outside DEBUG.
DEMO_STAFF_PASSWORD = os.environ.get("DEMO_STAFF_PASSWORD", "staff-demo-password")

ROOT = Path(__file__).resolve().parent.parent


def seed_catalogue() -> None:
    import_products(text=(ROOT / "shop" / "fixtures" / "demo_products.csv").read_text("utf-8"))


def seed_legal_documents() -> None:
    fixtures = ROOT / "legal" / "fixtures"
    effective = datetime(2026, 1, 1, tzinfo=RIGA)
    for model, stem in ((TermsVersion, "terms"), (PrivacyPolicyVersion, "privacy")):
        model.objects.get_or_create(
            version="2026-01",
            defaults={
                "effective_from": effective,
                "text_lv": (fixtures / f"{stem}_2026-01.lv.txt").read_text("utf-8"),
                "text_en": (fixtures / f"{stem}_2026-01.en.txt").read_text("utf-8"),
            },
        )


class StaffSeed(StrEnum):
    CREATED = "created"
    PRESENT = "present"
    REFUSED = "refused"  # DEBUG is off: no login with a published password


def seed_staff_user() -> StaffSeed:
    """The demo superuser with its published password, in development (DEBUG) only."""
    user_model = get_user_model()
    if not settings.DEBUG:
        return StaffSeed.REFUSED
    user, created = user_model.objects.get_or_create(
        username=DEMO_STAFF_USERNAME,
        defaults={"is_staff": True, "is_superuser": True, "email": "staff@example.lv"},
    )
    if created:
        user.set_password(DEMO_STAFF_PASSWORD)
        user.save()
        return StaffSeed.CREATED
    return StaffSeed.PRESENT


def demo_password_still_works() -> bool:
    """Outside DEBUG: an earlier run left the demo superuser with its published password."""
    user = get_user_model().objects.filter(username=DEMO_STAFF_USERNAME).first()
    return user is not None and user.is_active and user.check_password(DEMO_STAFF_PASSWORD)


@transaction.atomic
def seed_demo() -> StaffSeed:
    seed_catalogue()
    seed_legal_documents()
    load_demo_parcel_machines()  # only into an empty directory
    return seed_staff_user()
