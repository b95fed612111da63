"""The parcel-machine directory (R4) and delivery tariffs (R6)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from delivery.models import DeliveryTariff, ParcelMachine
from shop import reference
from shop.errors import InvalidInput
from shop.money import to_money

LATVIA = "LV"
PARCEL_MACHINE_TYPE = "0"  # Omniva: "0" parcel machine, "1" post office
DEMO_LOCATIONS_FILE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "omniva_locations_lv.json"
)
COORDINATE_PLACES = Decimal("0.000001")
# A parish or county in A2_NAME means the settlement in A3_NAME is the place to show.
RURAL_MUNICIPALITY_SUFFIXES = ("pagasts", "novads")
# A new tariff may be dated a little in the past: the admin form is filled in with "now"
# when it opens, not when it is saved.
TARIFF_BACKDATING_GRACE = timedelta(minutes=15)

_FIELDS = ("name", "city", "address", "county", "latitude", "longitude")


class ParcelMachineImportError(Exception):
    """The locations file cannot be loaded; nothing was changed."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class LoadResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: int = 0  # rows of other countries or post offices
    zips: list[str] = field(default_factory=list)


def parse_locations(text: str) -> list[dict[str, Any]]:
    """Omniva's locations JSON (a list of objects) from text; refuses anything else."""
    try:
        rows = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise ParcelMachineImportError(
            [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        ) from exc
    if not isinstance(rows, list):
        raise ParcelMachineImportError(["expected a JSON list of locations"])
    return rows


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _coordinate(raw: str, key: str, limit: int) -> Decimal | None:
    if not raw:
        return None
    try:
        value = Decimal(raw.replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(f"{key} is not a number: {raw!r}") from exc
    if not value.is_finite() or abs(value) > limit:
        raise ValueError(f"{key} is out of range: {raw!r}")
    return value.quantize(COORDINATE_PLACES)


def _city(row: dict[str, Any]) -> str:
    """The place a customer recognises: the city, or the settlement inside a parish."""
    county, municipality, settlement = (_text(row, f"A{i}_NAME") for i in (1, 2, 3))
    if settlement and (
        not municipality or municipality.lower().endswith(RURAL_MUNICIPALITY_SUFFIXES)
    ):
        return settlement
    return municipality or settlement or county


def _address(row: dict[str, Any]) -> str:
    """Street (A5, or the farmstead name in A4 where there is no street) and house number."""
    street = _text(row, "A5_NAME") or _text(row, "A4_NAME")
    parts = [street, _text(row, "A6_NAME"), _text(row, "A7_NAME"), _text(row, "A8_NAME")]
    return " ".join(p for p in parts if p)


def _check_length(values: dict[str, Any]) -> None:
    for name in ("zip", *_FIELDS):
        model_field = ParcelMachine._meta.get_field(name)
        value = values[name]
        if (
            isinstance(value, str)
            and model_field.max_length
            and len(value) > model_field.max_length
        ):
            raise ValueError(f"{name} is longer than {model_field.max_length} characters")


def _machine_values(row: dict[str, Any]) -> dict[str, Any]:
    zip_code = _text(row, "ZIP")
    if not zip_code:
        raise ValueError("ZIP is empty")
    name = _text(row, "NAME")
    if not name:
        raise ValueError("NAME is empty")
    values = {
        "zip": zip_code,
        "name": name,
        "city": _city(row),
        "address": _address(row),
        "county": _text(row, "A1_NAME"),
        "latitude": _coordinate(_text(row, "Y_COORDINATE"), "Y_COORDINATE", 90),
        "longitude": _coordinate(_text(row, "X_COORDINATE"), "X_COORDINATE", 180),
    }
    _check_length(values)
    return values


def _latvian_machines(rows: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """R4: only Latvian parcel machines (A0_NAME "LV", TYPE "0"); every one must be valid."""
    machines, errors, seen, skipped = [], [], set(), 0
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(f"location {index}: not an object")
            continue
        if _text(row, "A0_NAME").upper() != LATVIA or _text(row, "TYPE") != PARCEL_MACHINE_TYPE:
            skipped += 1
            continue
        try:
            values = _machine_values(row)
        except ValueError as exc:
            errors.append(f"location {index} (ZIP {_text(row, 'ZIP') or '?'}): {exc}")
            continue
        if values["zip"] in seen:
            errors.append(f"location {index}: ZIP {values['zip']} appears twice")
            continue
        seen.add(values["zip"])
        machines.append(values)
    if errors:
        raise ParcelMachineImportError(errors)
    if not machines:
        raise ParcelMachineImportError(
            ["the file holds no Latvian parcel machines (A0_NAME 'LV', TYPE '0')"]
        )
    return machines, skipped


def load_parcel_machines(*, rows: list[Any], now: datetime | None = None) -> LoadResult:
    """R4: the Omniva locations list into the directory of Latvian parcel machines.

    Upserts by ZIP; a machine that is no longer in the file is deactivated, never deleted
    (orders refer to it), and one that comes back is activated again. All rows are
    checked first: an invalid row, or a file without Latvian machines, refuses the whole
    file and changes nothing. One transaction.
    """
    if not isinstance(rows, list):
        raise ParcelMachineImportError(["expected a list of locations"])
    machines, skipped = _latvian_machines(rows)
    now = now or timezone.now()
    result = LoadResult(skipped=skipped)
    with transaction.atomic():
        existing = {m.zip: m for m in ParcelMachine.objects.select_for_update().order_by("pk")}
        to_create, to_update = [], []
        for values in machines:
            zip_code = values["zip"]
            result.zips.append(zip_code)
            machine = existing.get(zip_code)
            if machine is None:
                to_create.append(ParcelMachine(**values, active=True, updated_at=now))
                continue
            changed = [k for k in _FIELDS if getattr(machine, k) != values[k]]
            if not changed and machine.active:
                result.unchanged += 1
                continue
            for key in changed:
                setattr(machine, key, values[key])
            machine.active = True
            machine.updated_at = now
            to_update.append(machine)
        in_file = set(result.zips)
        to_deactivate = [m for z, m in existing.items() if z not in in_file and m.active]
        for machine in to_deactivate:
            machine.active = False
            machine.updated_at = now

        ParcelMachine.objects.bulk_create(to_create, batch_size=500)
        ParcelMachine.objects.bulk_update(
            to_update + to_deactivate, [*_FIELDS, "active", "updated_at"], batch_size=500
        )
        reference.changed()  # bulk writes send no signals (checkout caches the directory)
    result.created = len(to_create)
    result.updated = len(to_update)
    result.deactivated = len(to_deactivate)
    return result


def load_demo_parcel_machines() -> LoadResult | None:
    """seed_demo: the sample directory, only while the directory is empty.

    A directory loaded from Omniva's real file is left alone (the sample would
    deactivate most of it).
    """
    if ParcelMachine.objects.exists():
        return None
    return load_parcel_machines(rows=parse_locations(DEMO_LOCATIONS_FILE.read_text("utf-8")))


def set_parcel_machines_active(*, zips: list[str], active: bool) -> int:
    """Staff switch machines on or off by hand (the next load may switch them back)."""
    with transaction.atomic():
        machines = list(
            ParcelMachine.objects.select_for_update()
            .filter(zip__in=zips)
            .exclude(active=active)
            .order_by("pk")
        )
        now = timezone.now()
        for machine in machines:
            machine.active = active
            machine.updated_at = now
        ParcelMachine.objects.bulk_update(machines, ["active", "updated_at"])
        reference.changed()
    return len(machines)


def check_new_tariff_date(effective_from: datetime, *, now: datetime | None = None) -> None:
    """R6: a new tariff applies from now on; it never reaches back to earlier orders."""
    now = now or timezone.now()
    if effective_from < now - TARIFF_BACKDATING_GRACE:
        raise InvalidInput.single(
            "effective_from",
            "in_the_past",
            str(_("A new tariff cannot take effect in the past; choose now or a later time.")),
        )


def create_delivery_tariff(
    *,
    fee: Decimal,
    free_above: Decimal,
    effective_from: datetime,
    now: datetime | None = None,
) -> DeliveryTariff:
    """R6: schedule a new fee and free-delivery threshold from `effective_from`.

    Orders placed earlier keep the tariff they were placed under.
    """
    check_new_tariff_date(effective_from, now=now)
    fee, free_above = to_money(fee), to_money(free_above)
    if fee < 0 or free_above < 0:
        raise InvalidInput.single("fee", "negative", str(_("Amounts cannot be negative.")))
    return DeliveryTariff.objects.create(
        fee=fee, free_above=free_above, effective_from=effective_from
    )
