"""Use cases of the catalogue."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction

from shop import selectors
from shop.models import Product
from shop.money import to_money

REQUIRED_COLUMNS = ("sku", "name", "price", "vat_rate", "stock", "sealed_hygiene")
TRUE_WORDS = {"1", "true", "yes", "jā", "ja", "y"}
FALSE_WORDS = {"0", "false", "no", "nē", "ne", "n", ""}


class CatalogueImportError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skus: list[str] = field(default_factory=list)


def _parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"not a yes/no value: {raw!r}")


def _parse_row(row: dict[str, str], rate_to_category: dict[Decimal, str]) -> dict:
    sku = (row.get("sku") or "").strip()
    if not sku:
        raise ValueError("sku is empty")
    name = (row.get("name") or "").strip()
    if not name:
        raise ValueError("name is empty")
    try:
        price = to_money(row["price"].replace(",", "."))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"price is not an amount: {row['price']!r}") from exc
    if price <= 0:
        raise ValueError("price must be positive")
    try:
        rate = Decimal(row["vat_rate"].strip().rstrip("%").replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(f"vat_rate is not a number: {row['vat_rate']!r}") from exc
    category = rate_to_category.get(rate)
    if category is None:
        known = ", ".join(f"{r:g}" for r in sorted(rate_to_category))
        raise ValueError(f"no VAT rate of {rate:g}% is in force (known: {known})")
    stock_raw = row["stock"].strip()
    if not stock_raw.isdigit():
        raise ValueError(f"stock must be a whole number ≥ 0: {stock_raw!r}")
    values = {
        "name_lv": name,
        "price": price,
        "vat_category": category,
        "stock": int(stock_raw),
        "sealed_hygiene": _parse_bool(row["sealed_hygiene"]),
    }
    if (row.get("name_en") or "").strip():
        values["name_en"] = row["name_en"].strip()
    if (row.get("warranty_months") or "").strip():
        values["warranty_months"] = int(row["warranty_months"])
    if (row.get("active") or "").strip():
        values["active"] = _parse_bool(row["active"])
    return {"sku": sku, **values}


def import_products(*, text: str) -> ImportResult:
    """Upsert the catalogue from CSV (header `sku,name,price,vat_rate,stock,sealed_hygiene`).

    All rows are checked first; any error refuses the whole file and changes nothing.
    Optional columns: name_en, warranty_months, active.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogueImportError([f"header lacks column(s): {', '.join(missing)}"])

    rate_to_category = {rate: category for category, rate in selectors.vat_rates_in_force().items()}
    rows, errors, seen = [], [], set()
    for line_no, raw in enumerate(reader, start=2):
        try:
            row = _parse_row(raw, rate_to_category)
        except (ValueError, KeyError, AttributeError) as exc:
            errors.append(f"line {line_no}: {exc}")
            continue
        if row["sku"] in seen:
            errors.append(f"line {line_no}: SKU {row['sku']} appears twice")
            continue
        seen.add(row["sku"])
        rows.append(row)
    if errors:
        raise CatalogueImportError(errors)

    result = ImportResult()
    with transaction.atomic():
        existing = {
            p.sku: p
            for p in Product.objects.select_for_update().filter(sku__in=[r["sku"] for r in rows])
        }
        for row in rows:
            sku = row.pop("sku")
            result.skus.append(sku)
            product = existing.get(sku)
            if product is None:
                Product.objects.create(sku=sku, **row)
                result.created += 1
                continue
            changed = [k for k, v in row.items() if getattr(product, k) != v]
            if not changed:
                result.unchanged += 1
                continue
            for key in changed:
                setattr(product, key, row[key])
            product.save()
            result.updated += 1
    return result
