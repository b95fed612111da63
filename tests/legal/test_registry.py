"""legal.registry and legal.policy: every personal field is declared (R26, R28)."""

from __future__ import annotations

import pytest
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps

from legal import registry
from legal.policy import CATEGORIES, ORDER_CATEGORIES, Basis


def test_r28_the_policy_has_one_row_per_category_with_basis_rule_and_citation():
    assert {
        "identity",
        "contact",
        "delivery",
        "settlement",
        "communication",
        "claims",
        "consents",
    } <= set(CATEGORIES)
    for category in CATEGORIES.values():
        assert category.purpose and category.rule_text and category.citation
        assert category.basis in Basis.values and category.basis_after in Basis.values
    assert CATEGORIES["settlement"].basis == Basis.LEGAL_OBLIGATION
    assert "Accounting Law §28" in CATEGORIES["settlement"].citation
    assert CATEGORIES["consents"].basis == Basis.CONSENT
    assert "IP15" in CATEGORIES["consents"].citation
    assert CATEGORIES["contact"].basis_after == Basis.LEGAL_CLAIMS
    assert {c.code for c in ORDER_CATEGORIES} >= {"identity", "contact", "delivery"}


def test_r26_every_app_declares_its_personal_fields():
    declared = registry.declared_fields()
    for field in [
        ("orders.Order", "first_name"),
        ("orders.Order", "email"),
        ("orders.Order", "phone"),
        ("orders.Order", "street"),
        ("orders.Order", "postal_code"),
        ("orders.Invoice", "buyer_name"),
        ("orders.Payment", "payer_iban"),
        ("orders.Refund", "iban"),
        ("orders.Refund", "account_holder"),
        ("shop.OutboxMessage", "payload"),
        ("legal.Consent", "email"),
    ]:
        assert field in declared, field


def test_r26_no_personal_looking_field_is_left_undeclared():
    """A model that gains a name, email, phone, address, IBAN, IP, payer, debtor or buyer
    field fails here until its app declares it in personal_data.py (or exempts it)."""
    assert registry.undeclared_personal_fields() == []
    assert registry.broken_declarations() == []
    problems = [m for m in checks.run_checks() if m.id in ("legal.W001", "legal.W002")]
    assert problems == []


@pytest.mark.parametrize(
    "name",
    [
        "first_name",
        "email",
        "phone",
        "street",
        "city",
        "postal_code",
        "iban",
        "account_holder",
        "ip_address",
        "payer_name",
        "debtor_iban",
        "buyer_name",
        "username",
        "contact_email",
        "address",
        "mobile",
    ],
)
def test_r26_personal_looking_names(name):
    assert registry.looks_personal(name)


@pytest.mark.parametrize("name", ["capacity", "recipient", "shipment", "description", "total"])
def test_r26_names_that_are_not_personal(name):
    assert not registry.looks_personal(name)


@isolate_apps("legal")
def test_r26_a_new_model_with_a_personal_field_is_reported():
    class Courier(models.Model):
        driver_phone = models.CharField(max_length=20)
        parcels = models.IntegerField()

        class Meta:
            app_label = "legal"

        def __str__(self) -> str:
            return self.driver_phone

    missing = registry.undeclared_personal_fields(["legal"], models_to_check=[Courier])
    assert missing == ["legal.Courier.driver_phone"]


def test_r26_every_declared_field_names_its_order_or_a_date_or_a_sweeper():
    sweeper_categories = {s.category for s in registry.sweepers()}
    for fieldset in registry.fieldsets():
        assert (
            fieldset.order_path is not None
            or fieldset.dated
            or fieldset.category in sweeper_categories
            or fieldset.category == "account"  # erased on request only
        ), fieldset
