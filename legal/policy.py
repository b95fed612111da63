"""The retention policy (R28): one row per category of personal data.

Each row says why the shop holds the data (purpose), on which legal basis (GDPR Art 6(1)),
how long (the rule, computed in `legal.rules`) and where that comes from (the clauses of
the privacy policies in `seeds/` and the law). Which model fields belong to a category is
declared by each app in its `personal_data.py` (see `legal.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _

from legal.rules import Rule


class Basis(models.TextChoices):
    """GDPR Art 6(1)."""

    CONSENT = "a", _("consent, GDPR Art 6(1)(a)")
    CONTRACT = "b", _("performance of the contract, GDPR Art 6(1)(b)")
    LEGAL_OBLIGATION = "c", _("legal obligation, GDPR Art 6(1)(c)")
    LEGAL_CLAIMS = "f", _("legitimate interest in legal claims, GDPR Art 6(1)(f)")


class OnRequest:
    """What an erasure request (GDPR Art 17) does to a category."""

    ERASE = "erase"  # no other basis: erased at once
    ERASE_WHEN_FINISHED = "erase_when_finished"  # once the contract has been performed
    KEEP = "keep"  # another basis still requires it (Art 17(3)(b), (e))


@dataclass(frozen=True)
class Category:
    code: str
    annex: str  # the category in the Keune.lv privacy-policy annex (KA1 ... KA16)
    title: str
    purpose: str
    basis: str  # while the contract is performed (or the only basis)
    basis_after: str  # once it has been performed
    rule: str  # legal.rules.Rule, or a person-level rule below
    rule_text: str
    citation: str
    on_request: str
    per_order: bool = True  # listed in every order's ledger (R26)


PERSON_RULE_ACCOUNT = "account"
PERSON_RULE_REQUEST = "request"

CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in [
        Category(
            code="identity",
            annex="KA1",
            title=_("Identity"),
            purpose=_("Conclude and perform the contract; identify the buyer in claims."),
            basis=Basis.CONTRACT,
            basis_after=Basis.LEGAL_CLAIMS,
            rule=Rule.CONTRACT,
            rule_text=_(
                "While the order is performed; then until delivery + 2 years + 2 months, "
                "or 3 years after an order closed without delivery."
            ),
            citation="T2.1, KP11.1-11.2, IP29.1-29.3, AP10.1; PTAL (R23); Commercial Law §406",
            on_request=OnRequest.KEEP,
        ),
        Category(
            code="contact",
            annex="KA2",
            title=_("Contact data"),
            purpose=_("Notices about the order, its payment and delivery (T2.3)."),
            basis=Basis.CONTRACT,
            basis_after=Basis.LEGAL_CLAIMS,
            rule=Rule.CONTRACT,
            rule_text=_(
                "While the order is performed; then until delivery + 2 years + 2 months, "
                "or 3 years after an order closed without delivery."
            ),
            citation="T2.1, T2.3, KP11.1-11.2, IP29.1-29.3, AP4.5.6-4.5.7",
            on_request=OnRequest.ERASE_WHEN_FINISHED,
        ),
        Category(
            code="delivery",
            annex="KA2",
            title=_("Delivery address or parcel machine"),
            purpose=_("Deliver the goods through Omniva (T5.1, AP4.4)."),
            basis=Basis.CONTRACT,
            basis_after=Basis.LEGAL_CLAIMS,
            rule=Rule.CONTRACT,
            rule_text=_(
                "While the order is performed; then until delivery + 2 years + 2 months, "
                "or 3 years after an order closed without delivery. The postcode area stays."
            ),
            citation="T5.1, KP11.1-11.2, IP29.1-29.3, AP4.5.5",
            on_request=OnRequest.ERASE_WHEN_FINISHED,
        ),
        Category(
            code="settlement",
            annex="KA8, KA9",
            title=_("Settlement and accounting records"),
            purpose=_(
                "Invoices, payments and refunds (buyer's name and address, payer and "
                "refund accounts) kept as accounting records."
            ),
            basis=Basis.LEGAL_OBLIGATION,
            basis_after=Basis.LEGAL_OBLIGATION,
            rule=Rule.ACCOUNTING,
            rule_text=_("5 years after the end of the year of issue of the latest document."),
            citation="Accounting Law §28; KP11.3, IP29.2, AP10.1",
            on_request=OnRequest.KEEP,
        ),
        Category(
            code="communication",
            annex="KA7",
            title=_("Communication"),
            purpose=_("What the customer was told: order, payment and delivery notices."),
            basis=Basis.CONTRACT,
            basis_after=Basis.LEGAL_CLAIMS,
            rule=Rule.COMMUNICATION,
            rule_text=_("Each email 3 years after it was sent."),
            citation="T2.3, KP11.2, IP29.3; Commercial Law §406",
            on_request=OnRequest.KEEP,
        ),
        Category(
            code="claims",
            annex="KA10",
            title=_("Claims and withdrawals"),
            purpose=_("Handle withdrawals and conformity claims (T6, T7)."),
            basis=Basis.LEGAL_OBLIGATION,
            basis_after=Basis.LEGAL_CLAIMS,
            rule=Rule.CONTRACT,
            rule_text=_(
                "Like the contact data; an open claim holds everything until 3 years "
                "after it closes."
            ),
            citation="T6, T7, PTAL; KP11.2, IP29.3; Commercial Law §406",
            on_request=OnRequest.KEEP,
        ),
        Category(
            code="consents",
            annex="KA16",
            title=_("Consents and marketing"),
            purpose=_("Marketing emails, SMS or profiling the customer agreed to (R31)."),
            basis=Basis.CONSENT,
            basis_after=Basis.CONSENT,
            rule=Rule.CONSENT,
            rule_text=_("Until the consent is withdrawn; then erased within 3 working days."),
            citation="KP11.4, KP20-22, IP15, IP29.4, AP4.3",
            on_request=OnRequest.ERASE,
        ),
        Category(
            code="account",
            annex="KA15",
            title=_("Customer account"),
            purpose=_("Log in and see one's orders."),
            basis=Basis.CONTRACT,
            basis_after=Basis.CONTRACT,
            rule=PERSON_RULE_ACCOUNT,
            rule_text=_("Until the account holder asks for erasure."),
            citation="KA15, AP9.4",
            on_request=OnRequest.ERASE,
            per_order=False,
        ),
        Category(
            code="requests",
            annex="KA7",
            title=_("Data-subject requests"),
            purpose=_("Show that requests were answered as the law requires (GDPR Art 5(2))."),
            basis=Basis.LEGAL_OBLIGATION,
            basis_after=Basis.LEGAL_CLAIMS,
            rule=PERSON_RULE_REQUEST,
            rule_text=_("3 years after the answer."),
            citation="GDPR Art 5(2), Art 12; KP13-18, IP36-43; Commercial Law §406",
            on_request=OnRequest.KEEP,
            per_order=False,
        ),
    ]
}

ORDER_CATEGORIES = [c for c in CATEGORIES.values() if c.per_order]
CATEGORY_CHOICES = [(c.code, c.title) for c in CATEGORIES.values()]


def category(code: str) -> Category:
    return CATEGORIES[code]
