"""Money in from bank statements (R11; R10 and R12 follow through `record_payment`).

Import flow (`import_statement_file` for the command, `submit_statement` and then
`import_statement` for the admin upload and its Celery task):

1. The file is parsed first (`orders.camt`): a file that cannot be read is refused with a
   clear message and nothing is stored. A file already imported (same SHA-256) is not
   imported again.
2. Credits are stored in batches, each batch in its own transaction, so the progress
   page sees `processed_entries` move: `bulk_create(ignore_conflicts=True)` on the unique
   `entry_key` stores each credit once; the rows that carry this statement are the new
   ones, the rest are duplicates of earlier imports (re-importing changes nothing).
3. Matching (R11): the invoice number in the remittance information (case, spaces and
   dashes ignored) or in a valid ISO 11649 RF creditor reference. Candidate numbers are
   read from the text first and looked up with one query per batch. Only invoices
   (not credit notes), only EUR.
4. A matched credit is recorded with `record_payment` (full, partial, overpayment refund
   T4.3, late money for a cancelled order refunded per R10/R12). Anything else waits in
   the staff queue (`unmatched`), where staff match it to an invoice or ignore it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from orders import camt
from orders.models import (
    BankEntry,
    BankEntryStatus,
    BankStatement,
    Invoice,
    InvoiceKind,
    PaymentMethod,
)
from orders.services.payments import record_payment
from shop import outbox
from shop.calendar import RIGA
from shop.errors import InvalidInput, Refused

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # credits per transaction; also keeps SQLite under its 999 parameters
LOOKUP_CHUNK = 500

CamtError = camt.CamtError
IMPORT_TOPIC = "bank.import_statement"


@dataclass
class ImportResult:
    """What one import did (the command prints it; the statement row keeps it too)."""

    statement_id: int | None
    total: int = 0
    new: int = 0
    duplicate: int = 0
    matched: int = 0
    already_imported: bool = False
    refused: list[dict] = field(default_factory=list)  # entries refused, with why

    @property
    def unmatched(self) -> int:
        return self.new - self.matched

    @classmethod
    def of(cls, statement: BankStatement, *, already_imported: bool = False) -> ImportResult:
        if already_imported:
            return cls(
                statement_id=statement.pk,
                total=statement.total_entries,
                duplicate=statement.total_entries,
                already_imported=True,
                refused=list(statement.refused_entries or []),
            )
        return cls(
            statement_id=statement.pk,
            total=statement.total_entries,
            new=statement.new_entries,
            duplicate=statement.duplicate_entries,
            matched=statement.matched_entries,
            refused=list(statement.refused_entries or []),
        )


# --- Matching rules (pure) --------------------------------------------------------------

_IGNORED = re.compile(r"[\s\-\u00ad\u2010-\u2015\u2212]+")  # spaces and dashes of any kind
_RF = re.compile(r"RF(\d{2})([0-9A-Z]{1,21})")


def normalise(text: str) -> str:
    """R11: case, spaces and dashes do not count ("keu 2026-000123" = "KEU2026000123")."""
    return _IGNORED.sub("", text or "").upper()


def rf_reference_part(reference: str) -> str | None:
    """The reference part of a valid ISO 11649 creditor reference (`RF` + 2 check digits
    + up to 21 characters, MOD 97-10), normalised; None when it is not a valid RF."""
    compact = normalise(reference)
    match = _RF.fullmatch(compact)
    if match is None:
        return None
    rearranged = match.group(2) + "RF" + match.group(1)
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    if int(digits) % 97 != 1:
        return None
    return match.group(2)


def rf_reference(reference_part: str) -> str:
    """The RF creditor reference for a reference part (ISO 11649), e.g. for demo files."""
    part = normalise(reference_part)
    digits = "".join(str(int(ch, 36)) for ch in part + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{part}"


def series_pattern(series: Iterable[str]) -> re.Pattern[str]:
    """Series, year and sequence of an invoice number inside normalised text."""
    names = sorted({normalise(s) for s in series if s}, key=len, reverse=True)
    alternatives = "|".join(re.escape(n) for n in names) or "(?!)"
    return re.compile(rf"({alternatives})(\d{{4}})(\d{{6,}})")


def invoice_candidates(text: str, pattern: re.Pattern[str], series: dict[str, str]) -> set[str]:
    """Invoice numbers (as issued, `KEU-2026-000123`) that normalised `text` may contain.

    Digits glued after the number ("...0001231") give every plausible sequence length,
    the database decides which exist.
    """
    found: set[str] = set()
    for match in pattern.finditer(text):
        prefix, year, digits = match.groups()
        name = series.get(prefix, prefix)
        for length in range(6, min(len(digits), 9) + 1):
            found.add(f"{name}-{year}-{digits[:length]}")
    return found


def searchable_text(*, remittance_info: str, creditor_reference: str) -> str:
    """Where R11 looks: the remittance text and, for a valid RF creditor reference, its
    reference part. A structured reference that is not RF is remittance text as well; an
    RF reference with wrong check digits is a typo and is not used."""
    parts = [normalise(remittance_info)]
    if creditor_reference:
        rf = rf_reference_part(creditor_reference)
        if rf is not None:
            parts.append(rf)
        elif not normalise(creditor_reference).startswith("RF"):
            parts.append(normalise(creditor_reference))
    # A separator that never occurs in normalised text keeps the parts from gluing.
    return " ".join(parts)


def received_at(booking_date: date) -> datetime:
    """The payment time of a credit: noon in Riga on its booking day (R0.2)."""
    return datetime.combine(booking_date, time(12), tzinfo=RIGA)


@dataclass(frozen=True)
class _Decision:
    order_id: int | None = None
    invoice_number: str = ""
    note: str = ""


class _Matcher:
    """Decides, for a batch of credits, which invoice each one pays (one query per batch)."""

    def __init__(self) -> None:
        series = set(
            Invoice.objects.filter(kind=InvoiceKind.INVOICE)
            .order_by()
            .values_list("series", flat=True)
            .distinct()
        )
        series.add(settings.SHOP["INVOICE_SERIES"])
        self.series = {normalise(s): s for s in series}
        self.pattern = series_pattern(series)
        self.currency = settings.SHOP.get("CURRENCY", "EUR")

    def decide(self, credits: Sequence[camt.Credit]) -> list[_Decision]:
        candidates = [
            invoice_candidates(
                searchable_text(
                    remittance_info=c.remittance_info, creditor_reference=c.creditor_reference
                ),
                self.pattern,
                self.series,
            )
            for c in credits
        ]
        invoices = self._lookup(set().union(*candidates))
        return [
            self._decide(credit, found, invoices)
            for credit, found in zip(credits, candidates, strict=True)
        ]

    def _lookup(self, numbers: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        ordered = sorted(numbers)
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            found.update(
                Invoice.objects.filter(kind=InvoiceKind.INVOICE, number__in=chunk).values_list(
                    "number", "order_id"
                )
            )
        return found

    def _decide(self, credit: camt.Credit, found: set[str], invoices: dict[str, int]) -> _Decision:
        if credit.reversal:
            return _Decision(note="Reversal of an earlier debit: not matched automatically.")
        known = sorted(n for n in found if n in invoices)
        if credit.currency != self.currency:
            note = f"Paid in {credit.currency}, not {self.currency}: not matched automatically."
            return _Decision(note=note)
        if not known:
            return _Decision()
        orders = {invoices[n] for n in known}
        if len(orders) > 1:
            return _Decision(note="Several invoices mentioned: " + ", ".join(known)[:250])
        return _Decision(order_id=orders.pop(), invoice_number=known[0])


# --- Import -----------------------------------------------------------------------------


def file_sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    for chunk in iter(partial(handle.read, 1 << 20), b""):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def already_imported(sha256: str) -> BankStatement | None:
    """The earlier statement with the same file, unless that import failed."""
    return (
        BankStatement.objects.filter(sha256=sha256)
        .exclude(status=BankStatement.Status.FAILED)
        .order_by("pk")
        .first()
    )


def import_statement_file(*, path: str | Path, user=None) -> ImportResult:
    """R11: import a camt.053/054 file now (management command `import_bank_statement`).

    Raises `CamtError` for a file that cannot be read; then nothing is stored.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            sha256 = file_sha256(handle)
    except OSError as exc:
        raise CamtError(f"The file cannot be read: {exc.strerror}") from exc
    earlier = already_imported(sha256)
    if earlier is not None and earlier.status == BankStatement.Status.PENDING:
        # Uploaded while the broker was down and never imported: import it now rather
        # than answer "already imported" (issue 14).
        return import_statement(statement_id=earlier.pk)
    if earlier is not None:
        return ImportResult.of(earlier, already_imported=True)
    document = camt.parse(path)
    with path.open("rb") as handle:
        statement = BankStatement(
            file_name=path.name[:255],
            sha256=sha256,
            imported_by=user,
            status=BankStatement.Status.RUNNING,
            **_header(document),
        )
        statement.uploaded_file.save(path.name, File(handle), save=False)
        statement.save()
    return _import_guarded(statement, document)


def submit_statement(*, upload: IO[bytes], file_name: str, user=None) -> tuple[BankStatement, bool]:
    """R11: store an uploaded statement and import it in the background after commit.

    Returns the statement and whether it is new; a file imported before is not stored
    again (its earlier statement is returned). A file that is not camt.053/054 at all is
    refused at once with `CamtError`; deeper problems show on the statement as `failed`.
    """
    sha256 = file_sha256(upload)
    earlier = already_imported(sha256)
    if earlier is not None:
        if earlier.status == BankStatement.Status.PENDING:
            # Stored but never imported (the broker was down): hand it over again
            # instead of answering "imported before" (issue 14).
            retry_import(statement_ids=[earlier.pk])
        return earlier, False
    message_type, _namespace = camt.sniff(upload)
    upload.seek(0)
    with transaction.atomic():
        statement = BankStatement(
            file_name=Path(file_name).name[:255],
            sha256=sha256,
            message_type=message_type,
            imported_by=user,
            status=BankStatement.Status.PENDING,
        )
        statement.uploaded_file.save(Path(file_name).name, File(upload), save=False)
        statement.save()
        _hand_over(statement.pk)
    return statement, True


def _hand_over(statement_id: int) -> None:
    """The import is handed to the worker through the outbox (a row in this transaction,
    relayed until the broker takes it), so a broker outage never loses an upload nor
    answers 500 (issue 14)."""
    outbox.publish(IMPORT_TOPIC, {"statement_id": statement_id})


@outbox.handler(IMPORT_TOPIC)
def _deliver_import(payload: dict, message) -> None:
    """Runs in the worker once the broker is back: queue the import task itself (its own
    transactions, so the progress page sees the batches move)."""
    from orders.tasks import import_bank_statement_task

    import_bank_statement_task.delay(int(payload["statement_id"]))


RETRYABLE = (BankStatement.Status.PENDING, BankStatement.Status.RUNNING)


def retry_import(*, statement_ids: Iterable[int]) -> int:
    """Staff hand stuck statements (waiting, or interrupted while importing) to the
    worker again; the import is idempotent. Returns how many were handed over."""
    with transaction.atomic():
        ids = list(
            BankStatement.objects.filter(pk__in=list(statement_ids), status__in=RETRYABLE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for statement_id in ids:
            _hand_over(statement_id)
    return len(ids)


def import_statement(*, statement_id: int) -> ImportResult:
    """Import a stored statement (the Celery task). Idempotent: a finished or failed
    statement is left as it is; an interrupted one is run again, and its credits that
    were already stored and paid are not paid twice."""
    statement = BankStatement.objects.get(pk=statement_id)
    if statement.status in (BankStatement.Status.DONE, BankStatement.Status.FAILED):
        return ImportResult.of(statement)
    BankStatement.objects.filter(pk=statement.pk).update(status=BankStatement.Status.RUNNING)
    try:
        with statement.uploaded_file.open("rb") as handle:
            document = camt.parse(handle)
    except (CamtError, OSError) as exc:
        message = str(exc) if isinstance(exc, CamtError) else "The stored file cannot be read."
        _fail(statement.pk, message)
        statement.refresh_from_db()
        return ImportResult.of(statement)
    for name, value in _header(document).items():
        setattr(statement, name, value)
    statement.save(update_fields=list(_header(document)))
    return _import_guarded(statement, document)


def _header(document: camt.Document) -> dict[str, Any]:
    return {
        "message_type": document.message_type[:32],
        "statement_id": document.statement_id,
        "account_iban": document.account_iban[:34],
        "refused_entries": [entry.as_dict() for entry in document.refused],
    }


def _fail(statement_id: int, message: str) -> None:
    BankStatement.objects.filter(pk=statement_id).update(
        status=BankStatement.Status.FAILED, error=message[:2000]
    )


def _import_guarded(statement: BankStatement, document: camt.Document) -> ImportResult:
    try:
        return _import_credits(statement, document.credits)
    except Exception as exc:
        # No traceback here: exception texts can carry row values (names, IBANs); the
        # exception itself goes on to the caller (command or Celery), which reports it.
        logger.error("bank statement %s: import stopped (%s)", statement.pk, type(exc).__name__)
        _fail(
            statement.pk,
            f"The import stopped with an unexpected error ({type(exc).__name__}). "
            "Credits stored so far are kept; upload the file again to finish.",
        )
        raise


def _import_credits(statement: BankStatement, credits: list[camt.Credit]) -> ImportResult:
    result = ImportResult(
        statement_id=statement.pk,
        total=len(credits),
        refused=list(statement.refused_entries or []),
    )
    BankStatement.objects.filter(pk=statement.pk).update(
        status=BankStatement.Status.RUNNING,
        total_entries=len(credits),
        processed_entries=0,
        new_entries=0,
        duplicate_entries=0,
        matched_entries=0,
        error="",
    )
    matcher = _Matcher()
    seen: set[str] = set()
    for batch in _batches(credits, BATCH_SIZE):
        with transaction.atomic():
            new, duplicate, matched = _import_batch(statement, batch, matcher, seen)
            BankStatement.objects.filter(pk=statement.pk).update(
                processed_entries=F("processed_entries") + len(batch),
                new_entries=F("new_entries") + new,
                duplicate_entries=F("duplicate_entries") + duplicate,
                matched_entries=F("matched_entries") + matched,
            )
        result.new += new
        result.duplicate += duplicate
        result.matched += matched
    BankStatement.objects.filter(pk=statement.pk).update(status=BankStatement.Status.DONE)
    logger.info(
        "bank statement %s imported: %s credits, %s new, %s duplicate, %s matched",
        statement.pk,
        result.total,
        result.new,
        result.duplicate,
        result.matched,
    )
    return result


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _import_batch(
    statement: BankStatement, batch: list[camt.Credit], matcher: _Matcher, seen: set[str]
) -> tuple[int, int, int]:
    """Store a batch, detect which credits are new, pay the matched ones. Returns
    (new, duplicate, matched)."""
    unique = []
    for credit in batch:
        if credit.entry_key not in seen:
            seen.add(credit.entry_key)
            unique.append(credit)
    decisions = dict(zip((c.entry_key for c in unique), matcher.decide(unique), strict=True))
    BankEntry.objects.bulk_create(
        [
            BankEntry(
                statement=statement,
                entry_key=credit.entry_key,
                amount=credit.amount,
                currency=credit.currency,
                booking_date=credit.booking_date,
                value_date=credit.value_date,
                debtor_name=credit.debtor_name,
                debtor_iban=credit.debtor_iban,
                debtor_bic=credit.debtor_bic,
                remittance_info=credit.remittance_info[:500],
                creditor_reference=credit.creditor_reference,
                bank_reference=credit.bank_reference,
                status=BankEntryStatus.UNMATCHED,
                note=decisions[credit.entry_key].note,
            )
            for credit in unique
        ],
        ignore_conflicts=True,
    )
    # Rows carrying this statement are the ones this import stored (also after an
    # interrupted run of the same statement); the others existed before.
    stored = list(
        BankEntry.objects.filter(statement=statement, entry_key__in=[c.entry_key for c in unique])
        .order_by("pk")  # file order: a partial payment before the rest
        .values_list("pk", "entry_key", "status")
    )
    new = len(stored)
    matched = 0
    for pk, key, status in stored:
        if status == BankEntryStatus.MATCHED:
            matched += 1  # paid by an earlier, interrupted run of this statement
            continue
        decision = decisions[key]
        if status != BankEntryStatus.UNMATCHED or decision.order_id is None:
            continue
        if _pay_new_entry(pk, decision):
            matched += 1
    return new, len(batch) - new, matched


def _pay_new_entry(entry_id: int, decision: _Decision) -> bool:
    """Record the payment of a freshly stored credit; a refusal leaves it for staff."""
    entry = BankEntry.objects.select_for_update().get(pk=entry_id)
    if entry.status != BankEntryStatus.UNMATCHED:
        return entry.status == BankEntryStatus.MATCHED  # another run got there first
    try:
        with transaction.atomic():
            _record_entry_payment(
                entry, order_id=decision.order_id, note=f"Matched to {decision.invoice_number}."
            )
    except (
        Refused,
        InvalidInput,
        TransitionNotAllowed,
        ConcurrentTransition,
        IntegrityError,
    ) as exc:
        logger.warning(
            "bank entry %s: automatic payment for order %s refused (%s)",
            entry_id,
            decision.order_id,
            getattr(exc, "code", type(exc).__name__),
        )
        BankEntry.objects.filter(pk=entry_id).update(
            note=f"{decision.invoice_number}: automatic payment refused, check the order."[:300]
        )
        return False
    return True


def _record_entry_payment(entry: BankEntry, *, order_id: int, note: str) -> None:
    """R11: the credit pays the order (record_payment decides paid, partial, refunds)."""
    record_payment(
        order_id=order_id,
        amount=entry.amount,
        method=PaymentMethod.BANK_TRANSFER,
        received_at=received_at(entry.booking_date),
        bank_entry=entry,
        payer_name=entry.debtor_name,
        payer_iban=entry.debtor_iban,
    )
    entry.status = BankEntryStatus.MATCHED
    entry.order_id = order_id
    entry.note = note[:300]
    entry.save(update_fields=["status", "order", "note"])


# --- Staff queue ------------------------------------------------------------------------


def find_invoice(number: str) -> Invoice:
    """An invoice (not a credit note) by its number as typed: case, spaces and dashes
    do not matter (R11)."""
    typed = normalise(number)
    if not typed:
        raise InvalidInput.single("invoice_number", "required", "Enter an invoice number.")
    matcher = _Matcher()
    candidates = invoice_candidates(typed, matcher.pattern, matcher.series)
    exact = [n for n in candidates if normalise(n) == typed]
    invoices = list(
        Invoice.objects.filter(kind=InvoiceKind.INVOICE, number__in=exact or [number.strip()])
    )
    if len(invoices) != 1:
        raise Refused(
            "invoice_not_found",
            f"No invoice has the number {number.strip()[:40]!r}.",
            invoice_number=number.strip()[:40],
        )
    return invoices[0]


def match_entry_to_invoice(*, entry_id: int, invoice_number: str, by=None) -> BankEntry:
    """R11: staff match a waiting credit to an invoice; the payment is then recorded as
    for an automatic match (partial payment, overpayment refund T4.3, R10, R12)."""
    invoice = find_invoice(invoice_number)
    with transaction.atomic():
        entry = BankEntry.objects.select_for_update().get(pk=entry_id)
        if entry.status == BankEntryStatus.MATCHED or hasattr(entry, "payment"):
            raise Refused(
                "bank_entry_already_matched",
                "This credit has already been matched to an order.",
                order=entry.order.number if entry.order_id else None,
            )
        currency = settings.SHOP.get("CURRENCY", "EUR")
        if entry.currency != currency:
            raise Refused(
                "bank_entry_currency",
                f"This credit is in {entry.currency}; only {currency} can pay an invoice.",
                currency=entry.currency,
            )
        who = f" by {by.get_username()}" if by is not None else ""
        _record_entry_payment(
            entry, order_id=invoice.order_id, note=f"Matched to {invoice.number}{who}."
        )
    logger.info("bank entry %s matched by staff to invoice %s", entry_id, invoice.pk)
    return entry


def ignore_entries(*, entry_ids: Iterable[int], note: str, by=None) -> int:
    """Staff set waiting credits aside (not a customer payment, e.g. interest or a
    transfer between own accounts). Only unmatched credits; returns how many."""
    note = " ".join((note or "").split())
    if not note:
        raise InvalidInput.single("note", "required", "Say why the credit is ignored.")
    who = f" ({by.get_username()})" if by is not None else ""
    count = 0
    with transaction.atomic():
        entries = (
            BankEntry.objects.select_for_update()
            .filter(pk__in=list(entry_ids), status=BankEntryStatus.UNMATCHED)
            .order_by("pk")
        )
        for entry in entries:
            entry.status = BankEntryStatus.IGNORED
            entry.note = f"{note}{who}"[:300]
            entry.save(update_fields=["status", "note"])
            count += 1
    return count
