"""Where every app declares its personal data (R26, R28, R29, R30).

Each app keeps a `personal_data.py` (loaded when the legal app is ready) that says, per
model, which fields belong to which category of the policy (`legal.policy`), how to reach
the order they belong to, and how each is erased:

    from legal.registry import MARKER, declare, exportable, not_personal

    declare("contact", "orders.Order", order_path="id", fields={"email": MARKER, "phone": MARKER})
    not_personal("shop.Product", "name_lv", "name_en", reason="product names")
    exportable("orders.OrderLine", key="lines", order_path="order_id", fields=["sku", ...])

- Order-scoped fields (`order_path` given) are erased by the retention sweep when the
  order's ledger row for the category is past its date, in bulk, together with their
  django-simple-history copies.
- Person-scoped rows that carry their own `keep_until` / `erased_at` (consents,
  data-subject requests) are declared with `dated=True`.
- Anything else (the outbox, unmatched bank entries) is declared with `order_path=None`
  and erased by a `@sweeper` of its own.

`undeclared_personal_fields()` lists every field whose name looks personal (name, email,
phone, address, street, city, postal, IBAN, account holder, IP, payer, debtor, buyer) that
no category declares and no `not_personal` exempts; a system check (legal.W001) and the
test suite report them, so a new model cannot slip past the policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Concat, JSONObject, Substr

MARKER = "[dzēsts]"  # what replaces an erased text (R29)
PERSONAL_WORDS = {
    "name",
    "email",
    "mail",
    "phone",
    "mobile",
    "address",
    "street",
    "city",
    "postal",
    "postcode",
    "iban",
    "holder",
    "ip",
    "payer",
    "debtor",
    "buyer",
}


# --- How a field is erased -----------------------------------------------------------------


class Eraser:
    """Gives the value (or SQL expression) an erased field gets, and recognises it.

    `output_field`: the model field being erased. An expression that mixes the column
    with a constant (a text column and the marker) takes its type from it, whatever the
    column's type (CharField, TextField, FileField)."""

    def expression(self, name: str, output_field: models.Field | None = None) -> Any:
        raise NotImplementedError

    def is_erased(self, value: Any) -> bool:
        raise NotImplementedError

    def python_value(self, value: Any) -> Any:
        """The erased value of `value`, computed in Python (for one row)."""
        raise NotImplementedError


class _Marker(Eraser):
    """Text replaced by the fixed marker; empty values stay empty."""

    def expression(self, name: str, output_field: models.Field | None = None) -> Any:
        empty = Q(**{f"{name}__isnull": True}) | Q(**{name: ""})
        return Case(
            When(empty, then=F(name)),
            default=Value(MARKER),
            output_field=_text_field(output_field),
        )

    def is_erased(self, value: Any) -> bool:
        return value in (None, "", MARKER)

    def python_value(self, value: Any) -> Any:
        return value if value in (None, "") else MARKER


class _Null(Eraser):
    """A link (foreign key) or value set to NULL."""

    def expression(self, name: str, output_field: models.Field | None = None) -> Any:
        return None

    def is_erased(self, value: Any) -> bool:
        return value is None

    def python_value(self, value: Any) -> Any:
        return None


class _PostcodeArea(Eraser):
    """LV-1050 -> LV-10xx: the area stays for statistics (R29, IP11)."""

    _pattern = re.compile(r"^LV-\d\dxx$")

    def expression(self, name: str, output_field: models.Field | None = None) -> Any:
        empty = Q(**{f"{name}__isnull": True}) | Q(**{name: ""})
        field = _text_field(output_field)
        return Case(
            When(empty, then=F(name)),
            default=Concat(Substr(F(name), 1, 5), Value("xx"), output_field=field),
            output_field=field,
        )

    def is_erased(self, value: Any) -> bool:
        return value in (None, "") or bool(self._pattern.match(value))

    def python_value(self, value: Any) -> Any:
        return value if value in (None, "") else f"{value[:5]}xx"


class _JsonKeep(Eraser):
    """A JSON document replaced by {"erased": MARKER} plus the listed harmless keys."""

    def __init__(self, *keep: str) -> None:
        self.keep = keep

    def expression(self, name: str, output_field: models.Field | None = None) -> Any:
        kept = {key: KT(f"{name}__{key}") for key in self.keep}
        return JSONObject(erased=Value(MARKER), **kept)

    def is_erased(self, value: Any) -> bool:
        return isinstance(value, dict) and value.get("erased") == MARKER

    def python_value(self, value: Any) -> Any:
        value = value if isinstance(value, dict) else {}
        return {"erased": MARKER, **{k: value.get(k) for k in self.keep}}


def _text_field(output_field: models.Field | None) -> models.Field:
    """The type of an erased text column's expression: the column's own field (a
    FileField keeps the stored name as text), or plain text when none is given."""
    return output_field if output_field is not None else models.TextField()


ERASE_MARKER: Eraser = _Marker()
ERASE_NULL: Eraser = _Null()
POSTCODE_AREA: Eraser = _PostcodeArea()


def json_keep(*keys: str) -> Eraser:
    return _JsonKeep(*keys)


# --- Declarations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSet:
    """Fields of one model in one category."""

    category: str
    model_label: str
    fields: Mapping[str, Eraser]
    order_path: str | None = None  # lookup to the order's id ("id", "order_id", ...)
    dated: bool = False  # rows carry keep_until / erased_at of their own
    history: bool = True  # erase the django-simple-history copies too

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    @property
    def history_model(self) -> type[models.Model] | None:
        return history_model(self.model) if self.history else None


@dataclass(frozen=True)
class ExportedFile:
    """How a stored file appears in the data export (R30): its name, type and size, and a
    link the person can open while authenticated, where a customer endpoint serves it.

    `content_type` and `size` name the model's columns holding them (no `size` column:
    the storage is asked); `url(row)` builds the link from the exported row (None: no
    customer endpoint serves the file, so the export gives no link)."""

    content_type: str | None = None
    size: str | None = None
    url: Callable[[Mapping[str, Any]], str | None] | None = None


@dataclass(frozen=True)
class Exportable:
    """How a model appears in the data export (R30): under `key`, with these fields.

    `within` nests the rows under the rows of another exportable ("returns.Withdrawal"),
    `parent_path` naming the column that holds the parent's id ("withdrawal_id");
    `related` adds values read across a relation in the same query ({"sku":
    "order_line__sku"}); `files` describes the file fields (`ExportedFile`)."""

    model_label: str
    key: str
    order_path: str | None
    fields: tuple[str, ...]
    within: str | None = None
    parent_path: str | None = None
    related: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, ExportedFile] = field(default_factory=dict)

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)


@dataclass(frozen=True)
class Sweeper:
    """Erases data of `category` that is not tied to an order ledger (outbox, bank)."""

    name: str
    category: str
    func: Callable[..., int]


@dataclass
class _Registry:
    fieldsets: list[FieldSet] = field(default_factory=list)
    not_personal: dict[tuple[str, str], str] = field(default_factory=dict)
    presence: dict[str, Callable[[list[int]], set[int]]] = field(default_factory=dict)
    sweepers: dict[str, Sweeper] = field(default_factory=dict)
    exportables: dict[str, Exportable] = field(default_factory=dict)
    event_sources: list[Callable[[list[int]], Mapping[int, datetime | date]]] = field(
        default_factory=list
    )
    accounting_sources: list[Callable[[list[int]], Mapping[int, int]]] = field(default_factory=list)


_registry = _Registry()


def declare(
    category: str,
    model: str,
    *,
    fields: Mapping[str, Eraser] | Iterable[str],
    order_path: str | None = None,
    dated: bool = False,
    history: bool = True,
) -> FieldSet:
    """Declare personal fields of `model` ("app.Model") in a policy category."""
    from legal.policy import CATEGORIES

    if category not in CATEGORIES:
        raise ValueError(f"unknown personal-data category {category!r}")
    if not isinstance(fields, Mapping):
        fields = {name: ERASE_MARKER for name in fields}
    fieldset = FieldSet(
        category=category,
        model_label=model,
        fields=dict(fields),
        order_path=order_path,
        dated=dated,
        history=history,
    )
    _registry.fieldsets = [
        f for f in _registry.fieldsets if not (f.category == category and f.model_label == model)
    ] + [fieldset]
    return fieldset


def not_personal(model: str, *names: str, reason: str) -> None:
    """A field whose name looks personal but is not (a product name, the shop's IBAN)."""
    for name in names:
        _registry.not_personal[(model, name)] = reason


def presence(category: str) -> Callable:
    """Register `func(order_ids) -> ids of the orders that hold data of `category``.

    Categories without one appear in every order's ledger (identity, contact, ...)."""

    def register(func: Callable[[list[int]], set[int]]) -> Callable[[list[int]], set[int]]:
        _registry.presence[category] = func
        return func

    return register


def sweeper(name: str, *, category: str) -> Callable:
    """Register `func(*, today, now, batch_size) -> rows erased` for the daily sweep."""

    def register(func: Callable[..., int]) -> Callable[..., int]:
        _registry.sweepers[name] = Sweeper(name=name, category=category, func=func)
        return func

    return register


def exportable(
    model: str,
    *,
    key: str,
    order_path: str | None,
    fields: Iterable[str],
    within: str | None = None,
    parent_path: str | None = None,
    related: Mapping[str, str] | None = None,
    files: Mapping[str, ExportedFile] | None = None,
) -> None:
    """Show `model` in the data export under `key` with these (non-personal) fields; its
    declared personal fields are always added. With `within`, under each row of that
    exportable (`parent_path`: this model's column holding the parent's id)."""
    if (within is None) != (parent_path is None):
        raise ValueError("`within` and `parent_path` go together")
    _registry.exportables[model] = Exportable(
        model_label=model,
        key=key,
        order_path=order_path,
        fields=tuple(fields),
        within=within,
        parent_path=parent_path,
        related=dict(related or {}),
        files=dict(files or {}),
    )


def event_source(func: Callable[[list[int]], Mapping[int, datetime | date]]) -> Callable:
    """Register `func(order_ids) -> {order_id: latest event}`: things that happen to an
    order outside `orders` (a withdrawal, a claim) and after which emails follow (KA7)."""
    _registry.event_sources.append(func)
    return func


def accounting_source(func: Callable[[list[int]], Mapping[int, int]]) -> Callable:
    """Register `func(order_ids) -> {order_id: year}` for accounting documents that are not
    invoices, payments or refunds of `orders`."""
    _registry.accounting_sources.append(func)
    return func


# --- Reading the registry --------------------------------------------------------------------


def fieldsets(*, category: str | None = None, model: str | None = None) -> list[FieldSet]:
    return [
        f
        for f in _registry.fieldsets
        if (category is None or f.category == category)
        and (model is None or f.model_label == model)
    ]


def order_fieldsets(categories: Iterable[str] | None = None) -> list[FieldSet]:
    wanted = set(categories) if categories is not None else None
    return [
        f
        for f in _registry.fieldsets
        if f.order_path is not None and not f.dated and (wanted is None or f.category in wanted)
    ]


def dated_fieldsets() -> list[FieldSet]:
    return [f for f in _registry.fieldsets if f.dated]


def presence_checks() -> dict[str, Callable[[list[int]], set[int]]]:
    return dict(_registry.presence)


def sweepers() -> list[Sweeper]:
    return list(_registry.sweepers.values())


def exportables() -> dict[str, Exportable]:
    return dict(_registry.exportables)


def event_sources() -> list[Callable]:
    return list(_registry.event_sources)


def accounting_sources() -> list[Callable]:
    return list(_registry.accounting_sources)


def fields_of(category: str) -> list[tuple[str, str]]:
    """(model label, field name) of a category, in declaration order."""
    return [(f.model_label, name) for f in fieldsets(category=category) for name in f.fields]


def field_labels(category: str) -> list[str]:
    """Human-readable "Model: field" names of a category's fields."""
    labels = []
    for fieldset in fieldsets(category=category):
        model = fieldset.model
        for name in fieldset.fields:
            try:
                verbose = model._meta.get_field(name).verbose_name
            except Exception:  # a declaration naming a missing field: legal.W002
                verbose = name
            labels.append(f"{model._meta.verbose_name}: {verbose}")
    return labels


def history_model(model: type[models.Model]) -> type[models.Model] | None:
    """The django-simple-history model of `model`, if it keeps one."""
    manager = getattr(model._meta, "simple_history_manager_attribute", None)
    if not manager:
        return None
    return getattr(model, manager).model


def is_history_model(model: type[models.Model]) -> bool:
    return hasattr(model, "instance_type") and hasattr(model, "history_object")


def looks_personal(name: str) -> bool:
    words = name.lower().split("_")
    return any(w in PERSONAL_WORDS or w.endswith("name") for w in words)


def project_app_labels() -> list[str]:
    """Our own apps (the ones in the repository), plus auth for customer accounts."""
    base = str(settings.BASE_DIR)
    labels = [
        config.label
        for config in apps.get_app_configs()
        if str(config.path).startswith(base) and ".venv" not in str(config.path)
    ]
    return [*labels, "auth"]


def declared_fields() -> set[tuple[str, str]]:
    return {(f.model_label, name) for f in _registry.fieldsets for name in f.fields}


def undeclared_personal_fields(
    app_labels: Iterable[str] | None = None, models_to_check: Iterable | None = None
) -> list[str]:
    """Fields that look personal but no category declares and none is exempted."""
    labels = set(app_labels or project_app_labels())
    declared = declared_fields()
    missing = []
    for model in models_to_check if models_to_check is not None else apps.get_models():
        if model._meta.app_label not in labels or is_history_model(model):
            continue
        label = model._meta.label
        for model_field in model._meta.concrete_fields:
            name = model_field.name
            if not looks_personal(name):
                continue
            if (label, name) in declared or (label, name) in _registry.not_personal:
                continue
            missing.append(f"{label}.{name}")
    return sorted(missing)


def broken_declarations() -> list[str]:
    """Declarations that name a model or field that does not exist."""
    problems = []
    for fieldset in _registry.fieldsets:
        try:
            model = fieldset.model
        except LookupError:
            problems.append(f"{fieldset.model_label}: no such model")
            continue
        names = {f.name for f in model._meta.concrete_fields}
        for name in fieldset.fields:
            if name not in names:
                problems.append(f"{fieldset.model_label}.{name}: no such field")
    for (label, name), _reason in _registry.not_personal.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue  # an app that is not installed here
        if name not in {f.name for f in model._meta.concrete_fields}:
            problems.append(f"{label}.{name}: exempted but no such field")
    return problems
