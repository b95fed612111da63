"""The data export (R30, GDPR Art 15 and 20) and the recipients list (R27, IP38)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.apps import apps

from legal import registry
from legal.access import subject_token
from legal.models import DataSubjectRequest, Disclosure
from legal.services.disclosures import record_disclosure
from orders.services.refunds import create_refund
from shop.errors import Refused
from tests.legal.helpers import deliver, pay, place, settle_refunds

pytestmark = pytest.mark.django_db


def auth(email):
    return {"HTTP_AUTHORIZATION": f"Bearer {subject_token(email)}"}


def person(email, first, iban, *, now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(
            email=email,
            first_name=first,
            last_name=f"{first}iņa",
            phone="+37129" + iban[-6:],
            now=now,
            consents={"marketing_email": True},
        )
        order = pay(order, datetime(2026, 1, 13, tzinfo=UTC), payer=f"{first} Payer", iban=iban)
        create_refund(
            order_id=order.pk,
            amount=Decimal("1.00"),
            reason="staff",
            iban=iban,
            account_holder=f"{first} Holder",
        )
        settle_refunds(order, datetime(2026, 1, 13, 15, tzinfo=UTC))  # R28: else it holds
        order = deliver(order, datetime(2026, 1, 14, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
        record_disclosure(
            recipient="omniva",
            categories=["name", "phone", "email", "address"],
            purpose="delivery",
            order=order,
            at=datetime(2026, 1, 14, 9, tzinfo=UTC),
        )
    return order


def declared_values(order_ids):
    """Every declared, order-scoped personal value of these orders (text fields)."""
    values = set()
    for fieldset in registry.fieldsets():
        if fieldset.order_path is None:
            continue
        model = apps.get_model(fieldset.model_label)
        names = [
            n
            for n in fieldset.fields
            if not model._meta.get_field(n).is_relation
            and model._meta.get_field(n).get_internal_type()
            in ("CharField", "EmailField", "TextField")
        ]
        if not names:
            continue
        for row in model._base_manager.filter(**{f"{fieldset.order_path}__in": order_ids}).values(
            *names
        ):
            values.update(v for v in row.values() if v)
    return values


def test_r30_the_export_holds_every_declared_personal_field_and_nobody_elses(
    api_client, shop_ready, django_capture_on_commit_callbacks
):
    anna = person(
        "anna@example.lv",
        "Anna",
        "LV80BANK0000435195001",
        now=datetime(2026, 1, 12, 9, tzinfo=UTC),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    berta = person(
        "berta@example.lv",
        "Berta",
        "LV20RIKO0000083012345",
        now=datetime(2026, 1, 12, 10, tzinfo=UTC),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    response = api_client.get("/api/me/data/", **auth("anna@example.lv"))
    assert response.status_code == 200
    data = response.json()
    text = json.dumps(data, ensure_ascii=False)

    mine = declared_values([anna.pk])
    assert {"Anna", "anna@example.lv", "LV80BANK0000435195001", "Anna Holder", "Anna Payer"} <= mine
    missing = [v for v in mine if v not in text]
    assert missing == []
    same_address = {"Rīga", "Brīvības iela 1", "LV-1050", "Brīvības iela 1, Rīga, LV-1050"}
    theirs = declared_values([berta.pk]) - same_address
    leaked = [v for v in theirs if v in text]
    assert leaked == []
    assert berta.number not in text

    [order] = data["orders"]
    assert order["number"] == anna.number and order["email"] == "anna@example.lv"
    assert order["lines"][0]["sku"] == "KEU-001"
    assert order["invoices"][0]["buyer_name"] == "Anna Annaiņa"
    assert order["payments"][0]["payer_iban"] == "LV80BANK0000435195001"
    assert order["refunds"][0]["account_holder"] == "Anna Holder"
    ledger = {row["category"]: row for row in order["personal_data"]}
    assert ledger["contact"]["keep_until"] == "2028-03-15"
    assert ledger["settlement"]["keep_until"] == "2031-12-31"
    assert "orders.Order.email" in ledger["contact"]["fields"]
    assert order["recipients"][0]["recipient"] == "omniva"
    assert data["consents"][0]["purpose"] == "marketing_email"
    assert data["consents"][0]["policy_version"] == "2026-01"
    assert any(m["template"] == "order_placed" for m in data["communications"])
    assert {c["category"] for c in data["retention_policy"]} >= {"identity", "settlement"}
    # R30: the access request is logged with its deadline.
    logged = DataSubjectRequest.objects.get(kind="access")
    assert logged.email == "anna@example.lv" and logged.status == "answered"


def test_r27_recipients_in_a_period(api_client, shop_ready, django_capture_on_commit_callbacks):
    order = person(
        "anna@example.lv",
        "Anna",
        "LV80BANK0000435195001",
        now=datetime(2026, 1, 12, 9, tzinfo=UTC),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    record_disclosure(
        recipient="stripe",
        categories=["contact"],
        purpose="card payment",
        order=order,
        at=datetime(2026, 3, 1, 9, tzinfo=UTC),
    )
    record_disclosure(
        recipient="authority",
        categories=["identity"],
        purpose="criminal case",
        order=order,
        at=datetime(2026, 3, 2, tzinfo=UTC),
        withheld_from_subject=True,
    )
    response = api_client.get(
        "/api/me/recipients/?from=2026-01-01&to=2026-01-31", **auth("anna@example.lv")
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["recipient"] for r in body["recipients"]] == ["omniva"]
    assert body["recipients"][0]["categories"] == ["name", "phone", "email", "address"]
    everything = api_client.get("/api/me/recipients/", **auth("anna@example.lv")).json()
    # IP38: what the law forbids telling (an authority's criminal case) is not listed.
    assert [r["recipient"] for r in everything["recipients"]] == ["omniva", "stripe"]
    assert Disclosure.objects.count() == 3
    bad = api_client.get(
        "/api/me/recipients/?from=2026-02-01&to=2026-01-01", **auth("anna@example.lv")
    )
    assert bad.status_code == 400
    assert (
        api_client.get("/api/me/recipients/?from=yesterday", **auth("anna@example.lv")).status_code
        == 400
    )
    assert body["from"] == "2026-01-01" and date.fromisoformat(body["to"]) == date(2026, 1, 31)


def test_r27_omniva_receives_only_what_delivery_needs(shop_ready):
    order = place()
    with pytest.raises(Refused) as refused:
        record_disclosure(
            recipient="omniva", categories=["name", "settlement"], purpose="delivery", order=order
        )
    assert refused.value.code == "disclosure_not_needed"
