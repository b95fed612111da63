"""orders.services.sepa: approved bank refunds into a pain.001.001.03 file (DESIGN §2, §10)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import time_machine
import xmlschema
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from orders.models import Invoice, Order, PaymentMethod, Refund, RefundReason, RefundStatus
from orders.models import SepaExport as SepaExportModel
from orders.services.payments import record_payment
from orders.services.refunds import approve_refunds, create_refund
from orders.services.sepa import export_sepa_refunds
from shop.errors import Refused
from tests.factories import place_test_order

XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
LV_IBAN = "LV80BANK0000435195001"
DE_IBAN = "DE89370400440532013000"
# 23:30 UTC on 10 March is 01:30 on 11 March in Riga (R0.2).
EXPORT_MOMENT = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)


def paid_order(goods: str, *, email: str = "anna@example.lv") -> Order:
    sku = f"KEU-{goods}"  # products are get-or-create by SKU: one per price
    order = place_test_order(
        [(sku, 1)], prices={sku: Decimal(goods)}, customer={"email": email}
    ).order
    record_payment(
        order_id=order.pk,
        amount=order.total,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=timezone.now(),
        payer_name="Anna Bērziņa",
        payer_iban=LV_IBAN,
    )
    return Order.objects.get(pk=order.pk)


def text(node: ET.Element, path: str) -> str:
    found = node.find(path, NS)
    assert found is not None, path
    return found.text or ""


@pytest.fixture
def approver(db):
    return User.objects.create_user("approver", is_staff=True)


@pytest.fixture
def approved_refunds(approver):
    """Two approved bank refunds on two orders, and one still waiting for approval."""
    first = paid_order("18.00")
    second = paid_order("48.00", email="janis@example.lv")
    to_anna = create_refund(order_id=first.pk, amount=Decimal("12.34"), reason=RefundReason.STAFF)
    to_janis = create_refund(
        order_id=second.pk,
        amount=Decimal("50.00"),
        reason=RefundReason.WITHDRAWAL,
        iban="DE89 3704 0044 0532 0130 00",
        account_holder="Jānis Ozols",
    )
    waiting = create_refund(order_id=first.pk, amount=Decimal("1.00"), reason=RefundReason.STAFF)
    approve_refunds(refund_ids=[to_anna.pk, to_janis.pk], by=approver)
    return to_anna, to_janis, waiting


@pytest.mark.django_db
def test_pain001_validates_and_carries_amounts_ibans_and_the_shop_as_debtor(
    approved_refunds, approver, settings
):
    to_anna, to_janis, waiting = approved_refunds
    with time_machine.travel(EXPORT_MOMENT, tick=False):
        export = export_sepa_refunds(by=approver)

    assert export is not None
    # Independently of sepaxml's own check: the XSD it ships for pain.001.001.03.
    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(export.content)
    assert schema.is_valid(export.content)

    root = ET.fromstring(export.content.encode("utf-8"))  # noqa: S314 (our own output)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert text(header, "p:MsgId") == export.message_id
    assert text(header, "p:NbOfTxs") == "2"
    assert text(header, "p:CtrlSum") == "62.34"

    payment_info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert text(payment_info, "p:PmtMtd") == "TRF"
    assert text(payment_info, "p:ReqdExctnDt") == "2026-03-11"  # today in Riga
    assert text(payment_info, "p:Dbtr/p:Nm") == "SIA Orange Cosmetic"  # SEPA characters only
    assert text(payment_info, "p:DbtrAcct/p:Id/p:IBAN") == settings.SHOP["SELLER_IBAN"]
    assert text(payment_info, "p:DbtrAgt/p:FinInstnId/p:BIC") == settings.SHOP["SELLER_BIC"]

    transactions = {
        text(tx, "p:PmtId/p:EndToEndId"): tx for tx in payment_info.findall("p:CdtTrfTxInf", NS)
    }
    invoice_numbers = dict(Invoice.objects.values_list("order_id", "number"))
    expected = [
        (to_anna, "12.34", LV_IBAN, "Anna Berzina"),
        (to_janis, "50.00", DE_IBAN, "Janis Ozols"),
    ]
    assert len(transactions) == 2
    for refund, amount, iban, name in expected:
        number = refund.order.number
        end_to_end = f"R{refund.pk}-{number}"
        tx = transactions[end_to_end]
        instructed = tx.find("p:Amt/p:InstdAmt", NS)
        assert (instructed.text, instructed.get("Ccy")) == (amount, "EUR")
        assert text(tx, "p:CdtrAcct/p:Id/p:IBAN") == iban
        assert text(tx, "p:Cdtr/p:Nm") == name
        remittance = text(tx, "p:RmtInf/p:Ustrd")
        assert number in remittance
        assert invoice_numbers[refund.order_id] in remittance
        assert f"refund R{refund.pk}" in remittance
        assert remittance.startswith("Atmaksa")

    assert re.fullmatch(r"refunds-20260311-013000\.xml", export.file_name)
    assert (export.count, export.total) == (2, Decimal("62.34"))
    assert export.created_by == approver
    assert waiting.pk not in transactions  # not approved: not in the file
    assert f"R{waiting.pk}-" not in export.content


@pytest.mark.django_db
def test_exported_refunds_become_sent_and_are_never_exported_twice(approved_refunds):
    to_anna, to_janis, waiting = approved_refunds
    export = export_sepa_refunds()

    for refund in Refund.objects.filter(pk__in=[to_anna.pk, to_janis.pk]):
        assert refund.status == RefundStatus.SENT
        assert refund.sepa_export == export
        assert refund.sent_at is not None
    assert Refund.objects.get(pk=waiting.pk).status == RefundStatus.READY

    assert export_sepa_refunds() is None
    assert SepaExportModel.objects.count() == 1


@pytest.mark.django_db
def test_export_of_selected_refunds_only(approved_refunds):
    to_anna, to_janis, _waiting = approved_refunds
    export = export_sepa_refunds(refund_ids=[to_janis.pk])
    assert export.count == 1
    assert Refund.objects.get(pk=to_anna.pk).status == RefundStatus.APPROVED
    assert export_sepa_refunds(refund_ids=[to_janis.pk]) is None
    assert export_sepa_refunds().count == 1


@pytest.mark.django_db
def test_nothing_approved_nothing_exported(db):
    assert export_sepa_refunds() is None
    assert not SepaExportModel.objects.exists()


@pytest.mark.django_db
def test_an_invalid_file_is_refused_and_nothing_changes(approved_refunds, settings):
    settings.SHOP = {**settings.SHOP, "SELLER_IBAN": "not an iban"}
    with pytest.raises(Refused) as refused:
        export_sepa_refunds()
    assert refused.value.code == "sepa_file_invalid"
    assert not SepaExportModel.objects.exists()
    assert Refund.objects.filter(status=RefundStatus.APPROVED).count() == 2


@pytest.mark.django_db
def test_command_writes_the_file_and_prints_count_and_total(approved_refunds, tmp_path, capsys):
    target = tmp_path / "out" / "refunds.xml"
    call_command("export_sepa_refunds", output=str(target))
    out = capsys.readouterr().out
    assert "2 refund(s)" in out
    assert "EUR 62.34" in out
    export = SepaExportModel.objects.get()
    assert target.read_text(encoding="utf-8") == export.content
    assert xmlschema.XMLSchema(str(XSD)).is_valid(str(target))

    call_command("export_sepa_refunds", output=str(target))
    assert "No approved bank refunds to export." in capsys.readouterr().out
    assert SepaExportModel.objects.count() == 1


@pytest.mark.django_db
def test_command_default_location_is_var_sepa(approved_refunds, tmp_path, settings, capsys):
    settings.BASE_DIR = tmp_path
    call_command("export_sepa_refunds")
    export = SepaExportModel.objects.get()
    written = tmp_path / "var" / "sepa" / export.file_name
    assert written.read_text(encoding="utf-8") == export.content
    assert str(written) in capsys.readouterr().out
