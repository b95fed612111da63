"""Money in from bank statements (R11, with R10 and R12 for late money): the camt parser
(`orders.camt`), the import and matching service (`orders.services.bank`), the
`import_bank_statement` and `demo_bank_statement` commands and the staff admin."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from orders import camt
from orders.models import (
    BankEntry,
    BankEntryStatus,
    BankStatement,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    Refund,
    RefundReason,
    RefundStatus,
)
from orders.services import bank
from orders.services.lifecycle import cancel_order
from shop.calendar import RIGA, end_of_day, riga_date
from shop.models import OutboxMessage
from tests.factories import place_test_order

PAYER_IBAN = "LV80BANK0000435195001"
SHOP_IBAN = "LV97HABA0012345678910"
TODAY = date(2026, 3, 2)  # a Monday
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=RIGA)
ENTRIES_URL = reverse("admin:orders_bankentry_changelist")
UPLOAD_URL = reverse("admin:orders_bankstatement_upload")


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


# --- camt documents, written here by hand per version -----------------------------------


@dataclass
class Tx:
    amount: str | None = None
    remittance: str = ""
    creditor_reference: str = ""
    name: str = "Anna Bērziņa"
    iban: str = PAYER_IBAN
    bic: str = "HABALV22"
    reference: str | None = None  # TxDtls/Refs/AcctSvcrRef


@dataclass
class Entry:
    amount: str
    remittance: str = ""
    creditor_reference: str = ""
    reference: str | None = "REF-1"  # Ntry/AcctSvcrRef
    direction: str = "CRDT"
    status: str = "BOOK"
    currency: str = "EUR"
    booking_date: date = TODAY
    name: str = "Anna Bērziņa"
    iban: str = PAYER_IBAN
    txs: list[Tx] | None = None  # several TxDtls (a batch); default one from the fields above
    extra_tx: str = ""  # raw XML appended inside each TxDtls
    additional_info: str = ""
    references: dict = field(default_factory=dict)


def _tx_xml(tx: Tx, version: int, currency: str) -> str:
    amount = ""
    if tx.amount is not None:
        amount = f'<AmtDtls><TxAmt><Amt Ccy="{currency}">{tx.amount}</Amt></TxAmt></AmtDtls>'
        if version >= 3:  # TxDtls/Amt and CdtDbtInd exist from version 3 on
            amount = f'<Amt Ccy="{currency}">{tx.amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>' + amount
    refs = "<Refs>"
    if tx.reference:
        refs += f"<AcctSvcrRef>{tx.reference}</AcctSvcrRef>"
    refs += "<EndToEndId>NOTPROVIDED</EndToEndId></Refs>"
    if version >= 8:
        debtor = f"<Dbtr><Pty><Nm>{escape(tx.name)}</Nm></Pty></Dbtr>"
    else:
        debtor = f"<Dbtr><Nm>{escape(tx.name)}</Nm></Dbtr>"
    bic_tag = "BICFI" if version >= 4 else "BIC"
    remittance = ""
    if tx.remittance or tx.creditor_reference:
        remittance = "<RmtInf>"
        if tx.remittance:
            remittance += f"<Ustrd>{escape(tx.remittance)}</Ustrd>"
        if tx.creditor_reference:
            remittance += (
                "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                f"<Ref>{tx.creditor_reference}</Ref></CdtrRefInf></Strd>"
            )
        remittance += "</RmtInf>"
    return (
        f"<TxDtls>{refs}{amount}"
        f"<RltdPties>{debtor}<DbtrAcct><Id><IBAN>{tx.iban}</IBAN></Id></DbtrAcct></RltdPties>"
        f"<RltdAgts><DbtrAgt><FinInstnId><{bic_tag}>{tx.bic}</{bic_tag}></FinInstnId></DbtrAgt>"
        f"</RltdAgts>{remittance}</TxDtls>"
    )


def _entry_xml(entry: Entry, version: int) -> str:
    # Status: a code up to version 6, a choice with <Cd> from version 7.
    status = f"<Sts><Cd>{entry.status}</Cd></Sts>" if version >= 7 else f"<Sts>{entry.status}</Sts>"
    txs = entry.txs or [
        Tx(
            amount=entry.amount,
            remittance=entry.remittance,
            creditor_reference=entry.creditor_reference,
            name=entry.name,
            iban=entry.iban,
        )
    ]
    reference = f"<AcctSvcrRef>{entry.reference}</AcctSvcrRef>" if entry.reference else ""
    info = (
        f"<AddtlNtryInf>{escape(entry.additional_info)}</AddtlNtryInf>"
        if entry.additional_info
        else ""
    )
    return (
        f'<Ntry><Amt Ccy="{entry.currency}">{entry.amount}</Amt>'
        f"<CdtDbtInd>{entry.direction}</CdtDbtInd>{status}"
        f"<BookgDt><Dt>{entry.booking_date}</Dt></BookgDt><ValDt><Dt>{entry.booking_date}</Dt></ValDt>"
        f"{reference}<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd>"
        f"</Fmly></Domn></BkTxCd><NtryDtls>"
        + "".join(_tx_xml(tx, version, entry.currency) for tx in txs)
        + f"</NtryDtls>{info}</Ntry>"
    )


def camt_xml(
    entries: list[Entry], *, version: int = 2, message: str = "053", statement_id: str = "STMT-1"
) -> bytes:
    """A camt.053 statement or camt.054 notification of the given version (001.0N)."""
    root, container = (
        ("BkToCstmrStmt", "Stmt") if message == "053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    )
    namespace = f"urn:iso:std:iso:20022:tech:xsd:camt.{message}.001.{version:02d}"
    balances = ""
    if message == "053":
        balances = (
            '<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">0.00</Amt>'
            f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{TODAY}</Dt></Dt></Bal>"
        )
    body = "".join(_entry_xml(e, version) for e in entries)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace}"><{root}>'
        f"<GrpHdr><MsgId>MSG-{statement_id}</MsgId><CreDtTm>2026-03-02T18:00:00+02:00</CreDtTm></GrpHdr>"
        f"<{container}><Id>{statement_id}</Id><CreDtTm>2026-03-02T18:00:00+02:00</CreDtTm>"
        f"<Acct><Id><IBAN>{SHOP_IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>{balances}{body}"
        f"</{container}></{root}></Document>"
    ).encode()


def write(tmp_path: Path, content: bytes, name: str = "statement.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def import_entries(tmp_path: Path, entries: list[Entry], name: str = "s.xml", **kwargs):
    return bank.import_statement_file(path=write(tmp_path, camt_xml(entries, **kwargs), name))


def new_order(goods: str = "10.00"):
    """An order of `goods` + EUR 2.00 delivery fee, placed through the real checkout."""
    placed = place_test_order([("KEU-001", 1)], prices={"KEU-001": Decimal(goods)})
    order = placed.order
    return order, order.invoices.get().number


def reload(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


# --- Parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(2, 9))
@pytest.mark.parametrize("message", ["053", "054"])
def test_r11_every_version_from_001_02_to_001_08_parses(version, message):
    """R11: camt.053 and camt.054, versions 001.02 to 001.08, give the same credit."""
    content = camt_xml(
        [
            Entry(
                "12.50",
                remittance="Rēķins KEU-2026-000123",
                creditor_reference="RF39KEU2026000123",
                reference="BANK-REF-77",
            )
        ],
        version=version,
        message=message,
    )
    document = camt.parse_bytes(content)
    assert document.message_type == f"camt.{message}.001.{version:02d}"
    assert document.statement_id == "STMT-1"
    assert document.account_iban == SHOP_IBAN
    [credit] = document.credits
    assert credit.amount == Decimal("12.50")
    assert credit.currency == "EUR"
    assert credit.booking_date == TODAY
    assert credit.value_date == TODAY
    assert credit.debtor_name == "Anna Bērziņa"
    assert credit.debtor_iban == PAYER_IBAN
    assert credit.debtor_bic == "HABALV22"
    assert credit.remittance_info == "Rēķins KEU-2026-000123"
    assert credit.creditor_reference == "RF39KEU2026000123"
    assert credit.bank_reference == "BANK-REF-77"
    assert credit.entry_key == f"ref:{SHOP_IBAN}:BANK-REF-77"


@pytest.mark.parametrize("version", [2, 5, 8])
def test_r11_a_batch_entry_gives_one_credit_per_transaction(version):
    """R11: an entry with several TxDtls yields one credit per TxDtls."""
    entry = Entry(
        "30.00",
        reference="BATCH-1",
        txs=[
            Tx(amount="10.00", remittance="KEU-2026-000001", name="A", iban=PAYER_IBAN),
            Tx(
                amount="20.00", remittance="KEU-2026-000002", name="B", iban="LV10RIKO0000000000001"
            ),
        ],
    )
    credits = camt.parse_bytes(camt_xml([entry], version=version)).credits
    assert [(c.amount, c.remittance_info, c.debtor_name) for c in credits] == [
        (Decimal("10.00"), "KEU-2026-000001", "A"),
        (Decimal("20.00"), "KEU-2026-000002", "B"),
    ]
    assert len({c.entry_key for c in credits}) == 2


def test_r11_a_batch_whose_amounts_do_not_add_up_stays_one_credit():
    """R11: never record more or less than was booked: without usable transaction
    amounts the entry is one credit with the booked amount."""
    entry = Entry(
        "30.00",
        txs=[Tx(amount=None, remittance="first"), Tx(amount=None, remittance="second")],
    )
    [credit] = camt.parse_bytes(camt_xml([entry])).credits
    assert credit.amount == Decimal("30.00")
    assert credit.remittance_info == "first second"


def test_r11_only_booked_credits_are_read():
    """R11: debits and entries that are not booked (pending, information) are skipped."""
    document = camt.parse_bytes(
        camt_xml(
            [
                Entry("5.00", reference="A", direction="DBIT"),
                Entry("6.00", reference="B", status="PDNG"),
                Entry("7.00", reference="C"),
            ],
            version=8,
        )
    )
    assert [c.amount for c in document.credits] == [Decimal("7.00")]
    assert document.skipped == 2


def test_r11_without_a_bank_reference_the_key_is_a_stable_content_hash():
    """R11: entries without the bank's reference get a SHA-256 of their salient fields;
    two identical transfers in one file are still two credits."""
    entries = [
        Entry("5.00", reference=None, remittance="same"),
        Entry("5.00", reference=None, remittance="same"),
    ]
    first = [c.entry_key for c in camt.parse_bytes(camt_xml(entries)).credits]
    again = [c.entry_key for c in camt.parse_bytes(camt_xml(entries, statement_id="X")).credits]
    assert first == again
    assert len(set(first)) == 2
    assert all(key.startswith("sha256:") and len(key) == 71 for key in first)


def test_parser_is_namespace_agnostic_and_reads_a_file_without_namespace():
    content = camt_xml([Entry("1.00")]).replace(
        b' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"', b""
    )
    document = camt.parse_bytes(content)
    assert document.message_type == "camt.053"
    assert document.credits[0].amount == Decimal("1.00")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.4 not xml", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'>"
            b"<CstmrCdtTrfInitn/></Document>",
            "not a camt.053",
        ),
        (camt_xml([Entry("1.00")])[:-40], "not well-formed XML"),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused_clearly(content, message):
    with pytest.raises(camt.CamtError, match=message):
        camt.parse(io.BytesIO(content))


def test_r11_an_entry_with_an_invalid_amount_is_refused_alone():
    """R11 (issue 14): a bad amount refuses that entry, with its line and why; the rest
    of the file is read."""
    document = camt.parse(io.BytesIO(camt_xml([Entry("abc"), Entry("2.00")])))
    assert [c.amount for c in document.credits] == [Decimal("2.00")]
    [refused] = document.refused
    assert "invalid amount" in refused.reason and refused.line


# --- Matching rules (pure) ------------------------------------------------------------------


def test_r11_normalise_ignores_case_spaces_and_dashes():
    assert bank.normalise("keu 2026 – 000123") == "KEU2026000123"
    assert bank.normalise("KEU-2026-000123") == bank.normalise("KEU2026000123")


def test_r11_rf_creditor_reference_check_digits():
    """R11 (ISO 11649): RF + 2 check digits (MOD 97-10) + the reference."""
    assert bank.rf_reference("KEU2026000123") == "RF39KEU2026000123"
    assert bank.rf_reference_part("RF39 KEU2 0260 0012 3") == "KEU2026000123"
    assert bank.rf_reference_part("RF18539007547034") == "539007547034"  # ISO example
    assert bank.rf_reference_part("RF19539007547034") is None
    assert bank.rf_reference_part("KEU2026000123") is None


def test_r11_invoice_candidates_survive_glued_digits():
    pattern = bank.series_pattern(["KEU"])
    found = bank.invoice_candidates(bank.normalise("inv KEU 2026 0001231"), pattern, {"KEU": "KEU"})
    assert "KEU-2026-000123" in found
    assert "KEU-2026-0001231" in found


# --- Import and matching --------------------------------------------------------------------


@pytest.mark.django_db
def test_r11_full_payment_marks_the_order_paid(
    tmp_path, django_capture_on_commit_callbacks, mailoutbox
):
    """R11: a credit with the invoice number pays the order in full (and R12: contact)."""
    order, invoice_number = new_order()
    with django_capture_on_commit_callbacks(execute=True):
        result = import_entries(tmp_path, [Entry("12.00", remittance=f"Rēķins {invoice_number}")])

    assert (result.total, result.new, result.duplicate, result.matched, result.unmatched) == (
        1,
        1,
        0,
        1,
        0,
    )
    order = reload(order)
    assert order.status == OrderStatus.PAID
    assert order.contact_established_at is not None
    entry = BankEntry.objects.get()
    assert entry.status == BankEntryStatus.MATCHED
    assert entry.order_id == order.pk
    payment = Payment.objects.get(order=order)
    assert payment.bank_entry_id == entry.pk
    assert payment.method == PaymentMethod.BANK_TRANSFER
    assert payment.amount == Decimal("12.00")
    assert payment.payer_iban == PAYER_IBAN
    assert payment.received_at == datetime(2026, 3, 2, 12, 0, tzinfo=RIGA)
    statement = BankStatement.objects.get()
    assert statement.status == BankStatement.Status.DONE
    assert (statement.total_entries, statement.processed_entries) == (1, 1)
    assert (statement.new_entries, statement.matched_entries) == (1, 1)
    assert statement.message_type == "camt.053.001.02"
    assert statement.statement_id == "STMT-1"
    assert statement.account_iban == SHOP_IBAN
    assert len(statement.sha256) == 64
    assert not Refund.objects.exists()
    assert [m.to for m in mailoutbox] == [[order.email]]  # payment received, after commit


@pytest.mark.django_db
def test_r11_partial_payment_waits_for_the_rest(tmp_path):
    """R11: a partial payment is recorded; the order is paid when the rest arrives."""
    order, invoice_number = new_order()
    import_entries(tmp_path, [Entry("5.00", reference="P1", remittance=invoice_number)], "a.xml")
    order = reload(order)
    assert order.status == OrderStatus.CONFIRMED  # contact established (R12), not paid
    assert order.paid_at is None

    import_entries(tmp_path, [Entry("7.00", reference="P2", remittance=invoice_number)], "b.xml")
    order = reload(order)
    assert order.status == OrderStatus.PAID
    assert sorted(p.amount for p in order.payments.all()) == [Decimal("5.00"), Decimal("7.00")]
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_r11_overpayment_is_refunded_to_the_payers_account(tmp_path):
    """R11 (T4.3): the excess goes back to the account it came from."""
    order, invoice_number = new_order()
    import_entries(tmp_path, [Entry("15.00", remittance=invoice_number, name="Jānis Ozols")])
    order = reload(order)
    assert order.status == OrderStatus.PAID
    refund = Refund.objects.get(order=order)
    assert refund.amount == Decimal("3.00")
    assert refund.reason == RefundReason.OVERPAYMENT
    assert refund.iban == PAYER_IBAN
    assert refund.account_holder == "Jānis Ozols"
    assert refund.status == RefundStatus.READY


@pytest.mark.django_db
def test_r11_importing_the_same_file_twice_changes_nothing(
    tmp_path, django_capture_on_commit_callbacks
):
    """R11: each credit is stored once; re-importing a statement has no effect."""
    order, invoice_number = new_order()
    path = write(
        tmp_path,
        camt_xml(
            [
                Entry("15.00", reference="R1", remittance=invoice_number),
                Entry("3.00", reference="R2", remittance="unknown payer"),
                Entry("4.00", reference=None, remittance="no reference at all"),
            ]
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = bank.import_statement_file(path=path)
    assert (first.new, first.matched, first.unmatched) == (3, 1, 2)
    snapshot = (
        BankStatement.objects.count(),
        list(BankEntry.objects.values_list("pk", "status", "order_id", "note").order_by("pk")),
        list(Payment.objects.values_list("pk", "amount").order_by("pk")),
        list(Refund.objects.values_list("pk", "amount").order_by("pk")),
        OutboxMessage.objects.count(),
        reload(order).status,
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = bank.import_statement_file(path=path)
    assert again.already_imported
    assert (again.total, again.new, again.duplicate, again.matched) == (3, 0, 3, 0)
    assert callbacks == []
    assert snapshot == (
        BankStatement.objects.count(),
        list(BankEntry.objects.values_list("pk", "status", "order_id", "note").order_by("pk")),
        list(Payment.objects.values_list("pk", "amount").order_by("pk")),
        list(Refund.objects.values_list("pk", "amount").order_by("pk")),
        OutboxMessage.objects.count(),
        reload(order).status,
    )


@pytest.mark.django_db
def test_r11_the_same_credits_in_another_file_are_duplicates(tmp_path):
    """R11: a camt.054 notification and the day's camt.053 carry the same credits; the
    statement after the notification stores and pays nothing again."""
    order, invoice_number = new_order()
    entries = [
        Entry("12.00", reference="R1", remittance=invoice_number),
        Entry("4.00", reference=None, remittance="no reference"),
    ]
    notification = import_entries(tmp_path, entries, "n.xml", message="054", version=8)
    statement = import_entries(tmp_path, entries, "s.xml", message="053", version=2)
    assert (notification.new, notification.matched) == (2, 1)
    assert not statement.already_imported
    assert (statement.new, statement.duplicate, statement.matched) == (0, 2, 0)
    assert BankEntry.objects.count() == 2
    assert Payment.objects.count() == 1
    assert reload(order).status == OrderStatus.PAID
    assert BankStatement.objects.get(pk=statement.statement_id).duplicate_entries == 2


@pytest.mark.django_db
def test_r11_camt054_notification_pays_the_order(tmp_path):
    """R11: camt.054 (BkToCstmrDbtCdtNtfctn) is imported like a statement."""
    order, invoice_number = new_order()
    result = import_entries(
        tmp_path, [Entry("12.00", remittance=invoice_number)], message="054", version=4
    )
    assert result.matched == 1
    assert reload(order).status == OrderStatus.PAID
    assert BankStatement.objects.get().message_type == "camt.054.001.04"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "remittance",
    ["keu 2026 000001", "KEU2026000001", "Rēķins nr. keu-2026-000001, paldies", "KEU 2026-000 001"],
)
def test_r11_remittance_matches_ignoring_case_spaces_and_dashes(tmp_path, remittance):
    """R11: case, spaces and dashes in the remittance information do not matter."""
    order, invoice_number = new_order()
    assert invoice_number == "KEU-2026-000001"
    result = import_entries(tmp_path, [Entry("12.00", remittance=remittance)])
    assert result.matched == 1
    assert reload(order).status == OrderStatus.PAID


@pytest.mark.django_db
def test_r11_rf_creditor_reference_matches(tmp_path):
    """R11: an RF creditor reference (ISO 11649) whose reference part holds the invoice
    number matches, even with no remittance text."""
    order, invoice_number = new_order()
    reference = bank.rf_reference(bank.normalise(invoice_number))
    result = import_entries(tmp_path, [Entry("12.00", creditor_reference=reference)])
    assert result.matched == 1
    assert reload(order).status == OrderStatus.PAID
    assert BankEntry.objects.get().creditor_reference == reference


@pytest.mark.django_db
def test_r11_rf_reference_with_wrong_check_digits_is_not_trusted(tmp_path):
    order, invoice_number = new_order()
    good = bank.rf_reference(bank.normalise(invoice_number))
    wrong = "RF" + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:]
    result = import_entries(tmp_path, [Entry("12.00", creditor_reference=wrong)])
    assert result.matched == 0
    assert reload(order).status == OrderStatus.PLACED


@pytest.mark.django_db
def test_r11_a_debit_entry_is_ignored(tmp_path):
    """R11: only credits are money in; a debit with the invoice number changes nothing."""
    order, invoice_number = new_order()
    result = import_entries(tmp_path, [Entry("12.00", remittance=invoice_number, direction="DBIT")])
    assert (result.total, result.new) == (0, 0)
    assert not BankEntry.objects.exists()
    assert reload(order).status == OrderStatus.PLACED


@pytest.mark.django_db
def test_r11_only_invoices_in_eur_match(tmp_path):
    """R11: a credit in another currency waits for staff with a note."""
    order, invoice_number = new_order()
    result = import_entries(tmp_path, [Entry("12.00", remittance=invoice_number, currency="USD")])
    assert result.matched == 0
    entry = BankEntry.objects.get()
    assert entry.status == BankEntryStatus.UNMATCHED
    assert "USD" in entry.note
    assert reload(order).status == OrderStatus.PLACED


@pytest.mark.django_db
def test_r11_a_credit_naming_two_orders_waits_for_staff(tmp_path):
    _first, first_invoice = new_order()
    _second, second_invoice = new_order()
    import_entries(tmp_path, [Entry("24.00", remittance=f"{first_invoice} {second_invoice}")])
    entry = BankEntry.objects.get()
    assert entry.status == BankEntryStatus.UNMATCHED
    assert first_invoice in entry.note and second_invoice in entry.note
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_r10_money_after_an_unpaid_cancellation_is_refunded_in_full(tmp_path):
    """R10: money that arrives after the order was cancelled as unpaid is refunded in full."""
    order, invoice_number = new_order()
    cancel_order(order_id=order.pk, reason="unpaid")
    late = riga_date(order.payment_due_at) + timedelta(days=1)  # booked after the due date
    with time_machine.travel(end_of_day(late), tick=False):
        result = import_entries(
            tmp_path, [Entry("12.00", remittance=invoice_number, booking_date=late)]
        )
    assert result.matched == 1
    order = reload(order)
    assert order.status == OrderStatus.CANCELLED
    refund = Refund.objects.get(order=order)
    assert refund.amount == Decimal("12.00")
    assert refund.reason == RefundReason.UNPAID_LATE_PAYMENT
    assert refund.iban == PAYER_IBAN


@pytest.mark.django_db
def test_r12_money_after_a_no_contact_cancellation_is_refunded_without_the_fee(tmp_path):
    """R12 (T3.4): the shop keeps the delivery fee of an order cancelled for no contact."""
    order, invoice_number = new_order()
    assert order.delivery_fee == Decimal("2.00")
    cancel_order(order_id=order.pk, reason="no_contact")
    late = riga_date(order.contact_deadline) + timedelta(days=1)  # booked after the deadline
    with time_machine.travel(end_of_day(late), tick=False):
        import_entries(tmp_path, [Entry("12.00", remittance=invoice_number, booking_date=late)])
    refund = Refund.objects.get(order=order)
    assert refund.amount == Decimal("10.00")
    assert refund.reason == RefundReason.NO_CONTACT
    assert refund.iban == PAYER_IBAN


@pytest.mark.django_db
def test_r11_credit_notes_are_not_matched(tmp_path):
    """R11: only invoices (kind `invoice`) are paid, never a credit note's number."""
    from orders.models import Invoice, InvoiceKind

    _order, invoice_number = new_order()
    invoice = Invoice.objects.get(number=invoice_number)
    Invoice.objects.filter(pk=invoice.pk).update(kind=InvoiceKind.CREDIT_NOTE)
    result = import_entries(tmp_path, [Entry("12.00", remittance=invoice_number)])
    assert result.matched == 0


@pytest.mark.django_db
def test_r11_import_queries_do_not_grow_with_the_number_of_entries(
    tmp_path, django_assert_max_num_queries
):
    """R11: a large statement of unmatched credits costs a few queries per batch of 500,
    never one per credit (invoice candidates are looked up per batch)."""
    new_order()
    entries = [
        Entry(
            f"{i % 90 + 1}.{i % 100:02d}",
            reference=f"BULK-{i}",
            remittance=f"KEU-2026-{900000 + i}",
        )
        for i in range(1000)
    ]
    path = write(tmp_path, camt_xml(entries))
    with django_assert_max_num_queries(60):
        result = bank.import_statement_file(path=path)
    assert (result.new, result.matched) == (1000, 0)
    assert BankStatement.objects.get().processed_entries == 1000


@pytest.mark.django_db
def test_r11_matched_credits_cost_a_bounded_number_of_queries_each(
    tmp_path, django_assert_max_num_queries
):
    orders = [new_order() for _ in range(5)]
    entries = [
        Entry("12.00", reference=f"M-{i}", remittance=number)
        for i, (_order, number) in enumerate(orders)
    ]
    path = write(tmp_path, camt_xml(entries))
    with django_assert_max_num_queries(15 + 20 * len(orders)):
        result = bank.import_statement_file(path=path)
    assert result.matched == 5


@pytest.mark.django_db
def test_an_unreadable_file_changes_nothing(tmp_path):
    path = write(tmp_path, camt_xml([Entry("12.00")])[:-30])
    with pytest.raises(camt.CamtError):
        bank.import_statement_file(path=path)
    assert not BankStatement.objects.exists()
    assert not BankEntry.objects.exists()


# --- Commands -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_r11_import_command_prints_counts(tmp_path):
    order, invoice_number = new_order()
    path = write(
        tmp_path,
        camt_xml(
            [
                Entry("12.00", reference="C1", remittance=invoice_number),
                Entry("9.99", reference="C2", remittance="who knows"),
            ]
        ),
    )
    out = io.StringIO()
    call_command("import_bank_statement", str(path), stdout=out)
    assert "2 credit(s): 2 new, 0 duplicate, 1 matched, 1 unmatched" in out.getvalue()
    out = io.StringIO()
    call_command("import_bank_statement", str(path), stdout=out)
    assert "already imported" in out.getvalue()
    assert "0 new, 2 duplicate, 0 matched, 0 unmatched" in out.getvalue()
    assert reload(order).status == OrderStatus.PAID


@pytest.mark.django_db
def test_import_command_reports_a_bad_file_without_a_traceback(tmp_path):
    good = write(tmp_path, camt_xml([Entry("1.00", reference="G")]), "good.xml")
    bad = write(tmp_path, b"<html>not a statement</html>", "bad.xml")
    missing = tmp_path / "missing.xml"
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="2 of 3 file"):
        call_command(
            "import_bank_statement", str(bad), str(good), str(missing), stdout=out, stderr=err
        )
    assert "bad.xml: not imported. This is not a camt.053" in err.getvalue()
    assert "missing.xml: not imported. The file cannot be read" in err.getvalue()
    assert "good.xml: statement" in out.getvalue()
    assert BankStatement.objects.count() == 1  # only the good file


@pytest.mark.django_db
def test_r11_demo_statement_closes_the_loop(tmp_path):
    """R11 for a newcomer: place order -> demo_bank_statement -> import -> order paid."""
    order, invoice_number = new_order("55.00")  # free delivery: total 55.00
    path = tmp_path / "demo.xml"
    out = io.StringIO()
    call_command("demo_bank_statement", order.number, "--output", str(path), stdout=out)
    assert invoice_number in out.getvalue()
    document = camt.parse(path)
    assert document.message_type == "camt.053.001.02"
    [credit] = document.credits
    assert credit.amount == Decimal("55.00")
    assert invoice_number in credit.remittance_info
    assert credit.debtor_iban == PAYER_IBAN

    call_command("import_bank_statement", str(path), stdout=io.StringIO())
    assert reload(order).status == OrderStatus.PAID
    with pytest.raises(CommandError, match="nothing open"):
        call_command("demo_bank_statement", order.number, "--output", str(path))


# --- Admin: upload, progress, the staff queue --------------------------------------------------


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_r11_upload_imports_in_the_background_and_shows_progress(
    superuser_client, django_capture_on_commit_callbacks
):
    order, invoice_number = new_order()
    upload = SimpleUploadedFile(
        "statement.xml", camt_xml([Entry("12.00", remittance=invoice_number)]), "application/xml"
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = superuser_client.post(UPLOAD_URL, {"file": upload})
    assert response.status_code == 302
    assert callbacks  # the Celery task was enqueued after commit (eager here)
    statement = BankStatement.objects.get()
    assert response["Location"] == reverse(
        "admin:orders_bankstatement_progress", args=[statement.pk]
    )
    assert statement.status == BankStatement.Status.DONE
    assert statement.imported_by.username == "admin"
    assert reload(order).status == OrderStatus.PAID

    page = superuser_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert '<progress id="import-progress" value="1" max="1"' in html
    assert 'http-equiv="refresh"' not in html  # finished: no more refreshing


@pytest.mark.django_db
def test_progress_page_refreshes_itself_while_running(superuser_client):
    statement = BankStatement.objects.create(
        file_name="big.xml",
        sha256="0" * 64,
        status=BankStatement.Status.RUNNING,
        total_entries=50000,
        processed_entries=12500,
    )
    page = superuser_client.get(reverse("admin:orders_bankstatement_progress", args=[statement.pk]))
    html = page.content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    assert 'value="12500" max="50000"' in html


@pytest.mark.django_db
def test_upload_refuses_a_file_that_is_not_a_statement(superuser_client):
    upload = SimpleUploadedFile("invoice.pdf", b"%PDF-1.4", "application/pdf")
    response = superuser_client.post(UPLOAD_URL, {"file": upload})
    assert response.status_code == 200
    assert "not well-formed XML" in response.content.decode()
    assert not BankStatement.objects.exists()


@pytest.mark.django_db
def test_a_file_uploaded_again_is_not_imported_again(
    superuser_client, django_capture_on_commit_callbacks
):
    content = camt_xml([Entry("3.00", remittance="x")])
    with django_capture_on_commit_callbacks(execute=True):
        superuser_client.post(UPLOAD_URL, {"file": SimpleUploadedFile("a.xml", content)})
        response = superuser_client.post(UPLOAD_URL, {"file": SimpleUploadedFile("b.xml", content)})
    statement = BankStatement.objects.get()
    assert response["Location"].endswith(f"/{statement.pk}/progress/")
    assert BankEntry.objects.count() == 1


@pytest.mark.django_db
def test_r11_unmatched_credit_waits_and_staff_match_it_in_the_admin(
    tmp_path, superuser_client, django_capture_on_commit_callbacks, mailoutbox
):
    """R11: an unmatched credit waits in the staff queue; "Match to invoice…" records the
    payment and the order is paid."""
    order, invoice_number = new_order()
    import_entries(tmp_path, [Entry("12.00", remittance="for my shampoo", name="Jānis Ozols")])
    entry = BankEntry.objects.get()
    assert entry.status == BankEntryStatus.UNMATCHED

    queue = superuser_client.get(ENTRIES_URL)
    assert queue.status_code == 200
    assert "for my shampoo" in queue.content.decode()
    assert superuser_client.get(ENTRIES_URL, {"q": "shampoo"}).context["cl"].result_count == 1
    assert superuser_client.get(ENTRIES_URL, {"q": "12,00"}).context["cl"].result_count == 1
    assert superuser_client.get(ENTRIES_URL, {"q": "Ozols"}).context["cl"].result_count == 1

    form = superuser_client.post(
        ENTRIES_URL, {"action": "match_to_invoice", ACTION_CHECKBOX_NAME: [entry.pk]}
    )
    assert form.status_code == 200
    assert f'name="invoice_{entry.pk}"' in form.content.decode()

    wrong = superuser_client.post(
        ENTRIES_URL,
        {
            "action": "match_to_invoice",
            ACTION_CHECKBOX_NAME: [entry.pk],
            "apply": "yes",
            f"invoice_{entry.pk}": "KEU-2026-999999",
        },
    )
    assert wrong.status_code == 200
    assert "No invoice has the number" in wrong.content.decode()
    assert reload(order).status == OrderStatus.PLACED

    typed = invoice_number.lower().replace("-", " ")  # the clerk types it loosely
    with django_capture_on_commit_callbacks(execute=True):
        done = superuser_client.post(
            ENTRIES_URL,
            {
                "action": "match_to_invoice",
                ACTION_CHECKBOX_NAME: [entry.pk],
                "apply": "yes",
                f"invoice_{entry.pk}": typed,
            },
        )
    assert done.status_code == 302
    entry.refresh_from_db()
    assert entry.status == BankEntryStatus.MATCHED
    assert entry.order_id == order.pk
    assert "admin" in entry.note
    assert reload(order).status == OrderStatus.PAID
    assert Payment.objects.get().payer_name == "Jānis Ozols"
    assert [m.to for m in mailoutbox] == [[order.email]]
    # Matched credits leave the queue.
    assert superuser_client.get(ENTRIES_URL).context["cl"].result_count == 0


@pytest.mark.django_db
def test_staff_ignore_a_credit_with_a_note(tmp_path, superuser_client):
    import_entries(tmp_path, [Entry("0.42", remittance="interest")])
    entry = BankEntry.objects.get()
    missing_note = superuser_client.post(
        ENTRIES_URL,
        {"action": "ignore", ACTION_CHECKBOX_NAME: [entry.pk], "apply": "yes", "note": ""},
    )
    assert missing_note.status_code == 200
    response = superuser_client.post(
        ENTRIES_URL,
        {
            "action": "ignore",
            ACTION_CHECKBOX_NAME: [entry.pk],
            "apply": "yes",
            "note": "Bank interest",
        },
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == BankEntryStatus.IGNORED
    assert entry.note.startswith("Bank interest")
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_matching_and_uploading_need_their_model_permissions(tmp_path, client):
    import_entries(tmp_path, [Entry("12.00", remittance="?")])
    entry = BankEntry.objects.get()
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_bankentry", "view_bankstatement"])
    )
    client.force_login(viewer)
    queue = client.get(ENTRIES_URL)
    assert queue.status_code == 200
    assert "match_to_invoice" not in queue.content.decode()
    refused = client.post(
        ENTRIES_URL,
        {
            "action": "match_to_invoice",
            ACTION_CHECKBOX_NAME: [entry.pk],
            "apply": "yes",
            f"invoice_{entry.pk}": "KEU-2026-000001",
        },
    )
    assert refused.status_code in (200, 302)
    entry.refresh_from_db()
    assert entry.status == BankEntryStatus.UNMATCHED
    assert client.get(UPLOAD_URL).status_code == 403


@pytest.mark.django_db
def test_a_bad_entry_found_in_the_background_is_reported_clearly_and_stored_nowhere(
    superuser_client, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("bad.xml", camt_xml([Entry("12,00")]), "application/xml")
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(UPLOAD_URL, {"file": upload})
    statement = BankStatement.objects.get()
    assert statement.status == BankStatement.Status.DONE
    [refused] = statement.refused_entries
    assert "invalid amount" in refused["reason"]
    assert not BankEntry.objects.exists()
    page = superuser_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "refused and not imported" in page and "invalid amount" in page
    assert 'http-equiv="refresh"' not in page


@pytest.mark.django_db
def test_r11_the_import_task_is_idempotent(tmp_path):
    """R11: a task delivered twice (acks_late) imports once."""
    from orders.tasks import import_bank_statement_task

    order, invoice_number = new_order()
    result = import_entries(tmp_path, [Entry("12.00", remittance=invoice_number)])
    import_bank_statement_task.delay(result.statement_id)
    assert Payment.objects.count() == 1
    assert BankEntry.objects.count() == 1
    assert reload(order).status == OrderStatus.PAID


@pytest.mark.django_db
def test_bank_admin_pages_render(tmp_path, superuser_client):
    order, invoice_number = new_order()
    result = import_entries(
        tmp_path,
        [
            Entry("12.00", reference="A", remittance=invoice_number),
            Entry("1.00", reference="B", remittance="?"),
        ],
    )
    statement_url = reverse("admin:orders_bankstatement_change", args=[result.statement_id])
    statements = superuser_client.get(reverse("admin:orders_bankstatement_changelist"))
    assert statements.status_code == 200
    assert "<progress" in statements.content.decode()
    assert superuser_client.get(statement_url).status_code == 200
    add = superuser_client.get(reverse("admin:orders_bankstatement_add"))
    assert add.status_code == 302 and add["Location"] == UPLOAD_URL
    assert superuser_client.get(UPLOAD_URL).status_code == 200
    of_statement = superuser_client.get(
        ENTRIES_URL, {"statement__id__exact": result.statement_id, "queue": "all"}
    )
    assert of_statement.context["cl"].result_count == 2
    matched = BankEntry.objects.get(status=BankEntryStatus.MATCHED)
    detail = superuser_client.get(reverse("admin:orders_bankentry_change", args=[matched.pk]))
    assert detail.status_code == 200
    assert order.number in detail.content.decode()
