"""ISO 20022 bank statements in (R11): camt.053 and camt.054, versions 001.02 to 001.08.

Pure: no database. `parse()` streams the file with lxml's `iterparse` (each entry is
cleared once read, so memory stays flat for large files) and returns the booked credits:

- only entries with `CdtDbtInd` CRDT and status BOOK (`<Sts>BOOK</Sts>` up to version 6,
  `<Sts><Cd>BOOK</Cd></Sts>` from version 7);
- an entry with several `TxDtls` (a batch) gives one credit per transaction, with the
  amount from `TxDtls/Amt` (version 3 on) or `TxDtls/AmtDtls/TxAmt/Amt`; when the
  transaction amounts are missing or do not add up to the booked amount, the entry is
  kept as one credit with the booked amount and the remittance of all transactions;
- the payer from `RltdPties/Dbtr/Nm` (`Dbtr/Pty/Nm` in version 8), `DbtrAcct/Id/IBAN` and
  `RltdAgts/DbtrAgt/FinInstnId/BIC` (`BICFI` from version 4).

The namespace is whatever the document declares (or none): element names are looked up
in the document's own namespace, so every version reads the same way.

Each credit has a stable `entry_key`: the bank's own reference (`AcctSvcrRef`) prefixed
with the account, or else a SHA-256 of the salient fields. The same credit therefore
gets the same key when it comes again, in the same file or in a camt.054 notification
followed by the day's camt.053, and is stored once (R11).

`build_camt053()` writes a minimal camt.053.001.02 document (demo command, benchmarks).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from lxml import etree
from lxml.builder import ElementMaker

from shop.money import to_money

# Root element of the message -> (message family, statement element).
MESSAGES = {
    "BkToCstmrStmt": ("camt.053", "Stmt"),
    "BkToCstmrDbtCdtNtfctn": ("camt.054", "Ntfctn"),
}
NAMESPACE_VERSION = re.compile(r"camt\.(05[34])\.001\.(\d{2})")
SUPPORTED_VERSIONS = range(2, 9)  # 001.02 to 001.08 (R11)
NOT_PROVIDED = {"", "NOTPROVIDED", "NOT PROVIDED"}

Source = str | Path | IO[bytes]


class CamtError(ValueError):
    """The file is not a camt.053/camt.054 statement this parser can read; the message
    says why in words a clerk can act on."""


@dataclass(frozen=True, slots=True)
class Credit:
    """One booked incoming payment."""

    entry_key: str
    amount: Decimal
    currency: str
    booking_date: date
    value_date: date | None
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    remittance_info: str
    creditor_reference: str
    bank_reference: str
    account_iban: str
    reversal: bool = False


@dataclass(frozen=True, slots=True)
class RefusedEntry:
    """A credit entry the import refuses (and reports), while the rest of the file imports."""

    line: int | None
    reference: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reference": self.reference, "reason": self.reason}


# Amounts as ISO 20022 writes them for EUR: ASCII digits, a point, at most two decimals
# (issue 14: `1E+30`, `10.005` and Arabic-Indic digits are refused, never read or rounded).
_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]+)?", re.ASCII)
MAX_AMOUNT = Decimal("1000000.00")  # a sane maximum for one credit to this shop


def parse_amount(raw: str) -> Decimal:
    """The exact amount of `raw`, or CamtError saying why it is refused (no rounding)."""
    text = raw.strip()
    shown = text[:24]
    if not _AMOUNT.fullmatch(text):
        raise CamtError(f"the amount {shown!r} is not written with the digits 0-9 and a point")
    amount = Decimal(text)
    if -amount.as_tuple().exponent > 2:
        raise CamtError(f"the amount {shown} has more than two decimals (it is not rounded)")
    if amount <= 0:
        raise CamtError("the amount is not positive")
    if amount > MAX_AMOUNT:
        raise CamtError(f"the amount {shown} is above the maximum of {MAX_AMOUNT}")
    return amount.quantize(Decimal("0.01"))


@dataclass(slots=True)
class Document:
    """What a statement file holds: its header and its booked credits."""

    message_type: str  # e.g. "camt.053.001.02"
    message_id: str = ""
    statement_ids: list[str] = field(default_factory=list)
    account_ibans: list[str] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)
    entries: int = 0  # every entry in the file, credits or not
    skipped: int = 0  # debits and entries not booked
    refused: list[RefusedEntry] = field(default_factory=list)  # credits refused, with why

    @property
    def statement_id(self) -> str:
        return ", ".join(self.statement_ids)[:100]

    @property
    def account_iban(self) -> str:
        return self.account_ibans[0] if self.account_ibans else ""


# --- Reading ------------------------------------------------------------------------------


def sniff(source: Source) -> tuple[str, str]:
    """The message type and namespace, read from the first two elements only.

    Raises CamtError for anything that is not a camt.053 or camt.054 document, so an
    upload form can refuse a wrong file at once without reading all of it.
    """
    handle, close = _open(source)
    try:
        root_tag = message_tag = None
        try:
            for _event, element in etree.iterparse(
                handle, events=("start",), resolve_entities=False, no_network=True
            ):
                if root_tag is None:
                    root_tag = element.tag
                else:
                    message_tag = element.tag
                    break
        except etree.XMLSyntaxError as exc:
            raise CamtError(f"The file is not well-formed XML: {exc.msg}") from exc
        if root_tag is None:
            raise CamtError("The file is empty.")
        return _message_type(root_tag, message_tag)
    finally:
        if close:
            handle.close()
        elif hasattr(handle, "seek"):
            handle.seek(0)


def parse(source: Source) -> Document:
    """Every booked credit of a camt.053 or camt.054 file, streamed (see module doc)."""
    message_type, namespace = sniff(source)
    reader = _Reader(message_type, namespace)
    handle, close = _open(source)
    try:
        context = etree.iterparse(
            handle,
            events=("end",),
            tag=[reader.tag("GrpHdr"), reader.tag("Ntry"), reader.tag(reader.statement_tag)],
            resolve_entities=False,
            no_network=True,
            remove_comments=True,
        )
        try:
            for _event, element in context:
                reader.feed(element)
        except etree.XMLSyntaxError as exc:
            raise CamtError(f"The file is not well-formed XML: {exc.msg}") from exc
    finally:
        if close:
            handle.close()
    return reader.document


def _open(source: Source) -> tuple[IO[bytes], bool]:
    if isinstance(source, str | Path):
        try:
            return Path(source).open("rb"), True
        except OSError as exc:
            raise CamtError(f"The file cannot be read: {exc.strerror}") from exc
    if hasattr(source, "seek"):
        source.seek(0)
    return source, False


def _local(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _message_type(root_tag: str, message_tag: str | None) -> tuple[str, str]:
    namespace, root_name = _local(root_tag)
    _, message_name = _local(message_tag)
    if root_name != "Document" or message_name not in MESSAGES:
        found = message_name if root_name == "Document" and message_name else root_name
        raise CamtError(
            "This is not a camt.053 bank statement or camt.054 notification "
            f"(the document starts with <{found}>)."
        )
    family, _ = MESSAGES[message_name]
    match = NAMESPACE_VERSION.search(namespace)
    if match is None:
        return family, namespace  # no or an unusual namespace: read it all the same
    if match.group(1) != family[-3:]:
        raise CamtError(f"The namespace says camt.{match.group(1)} but the message is a {family}.")
    version = int(match.group(2))
    if version not in SUPPORTED_VERSIONS:
        raise CamtError(
            f"{family}.001.{version:02d} is not supported; versions 001.02 to 001.08 are."
        )
    return f"{family}.001.{version:02d}", namespace


class _Reader:
    """Turns the `end` events of GrpHdr, Stmt/Ntfctn and Ntry into a Document."""

    def __init__(self, message_type: str, namespace: str) -> None:
        self.namespace = namespace
        self.statement_tag = "Stmt" if message_type.startswith("camt.053") else "Ntfctn"
        self.document = Document(message_type=message_type)
        self._paths: dict[str, str] = {}
        self._parent: Any = None
        self._account = ""
        self._hash_counts: dict[str, int] = {}

    # Element lookups in the document's namespace (C-speed `find`, no wildcards).

    def tag(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}" if self.namespace else name

    def path(self, path: str) -> str:
        cached = self._paths.get(path)
        if cached is None:
            cached = self._paths[path] = "/".join(self.tag(p) for p in path.split("/"))
        return cached

    def text(self, element: Any, path: str) -> str:
        found = element.find(self.path(path))
        if found is None or found.text is None:
            return ""
        return " ".join(found.text.split())

    def texts(self, element: Any, path: str) -> list[str]:
        return [
            " ".join(found.text.split())
            for found in element.iterfind(self.path(path))
            if found.text and found.text.strip()
        ]

    # Events.

    def feed(self, element: Any) -> None:
        _, name = _local(element.tag)
        if name == "GrpHdr":
            self.document.message_id = self.text(element, "MsgId")
            element.clear()
        elif name == "Ntry":
            parent = element.getparent()
            if parent is not self._parent:
                self._start_statement(parent)
            self.document.entries += 1
            try:
                credits = self._entry(element)
            except CamtError as exc:
                # One bad entry is reported and skipped; the rest of the file imports.
                reference = _reference(self.text(element, "AcctSvcrRef")) or _reference(
                    self.text(element, "NtryRef")
                )
                self.document.refused.append(
                    RefusedEntry(line=element.sourceline, reference=reference[:64], reason=str(exc))
                )
            else:
                if credits:
                    self.document.credits.extend(credits)
                else:
                    self.document.skipped += 1
            # Free the entry and everything read before it (streaming).
            element.clear()
            while element.getprevious() is not None:
                del parent[0]
        elif name == self.statement_tag:
            if element is not self._parent:  # a statement without entries
                self._start_statement(element)
            element.clear()

    def _start_statement(self, statement: Any) -> None:
        self._parent = statement
        statement_id = self.text(statement, "Id")
        if statement_id:
            self.document.statement_ids.append(statement_id)
        self._account = _compact_iban(self.text(statement, "Acct/Id/IBAN")) or self.text(
            statement, "Acct/Id/Othr/Id"
        )
        if self._account and self._account not in self.document.account_ibans:
            self.document.account_ibans.append(self._account)

    def _entry(self, entry: Any) -> list[Credit]:
        if self.text(entry, "CdtDbtInd") != "CRDT":
            return []
        status = entry.find(self.path("Sts"))
        code = ""
        if status is not None:
            code = self.text(status, "Cd") or (status.text or "").strip()
        if code != "BOOK":
            return []
        line = entry.sourceline
        amount, currency = self._amount(entry.find(self.path("Amt")), line, required=True)
        booking_date = self._date(entry, "BookgDt", line) or self._date(entry, "ValDt", line)
        if booking_date is None:
            raise CamtError(f"The credit entry on line {line} has no booking date.")
        value_date = self._date(entry, "ValDt", line)
        reversal = self.text(entry, "RvslInd").lower() in ("true", "1")
        entry_ref = _reference(self.text(entry, "AcctSvcrRef"))
        entry_info = self.text(entry, "AddtlNtryInf")
        ntry_ref = _reference(self.text(entry, "NtryRef"))
        details = [
            self._transaction(tx, line) for tx in entry.iterfind(self.path("NtryDtls/TxDtls"))
        ]
        tx_amounts = [d["amount"] for d in details]
        split = (
            len(details) > 1
            and all(a is not None and c == currency for a, c in tx_amounts)
            and sum((a for a, _ in tx_amounts), Decimal(0)) == amount
        )
        if not split:
            details = [_merge(details)]
            details[0]["amount"] = (amount, currency)

        own_refs = [d["account_ref"] for d in details]
        use_own = len(details) > 1 and all(own_refs) and len(set(own_refs)) == len(own_refs)
        credits = []
        for index, detail in enumerate(details, start=1):
            tx_amount, tx_currency = detail["amount"]
            remittance = detail["remittance"] or entry_info
            if use_own:
                reference = detail["account_ref"]
            elif entry_ref:
                reference = entry_ref if len(details) == 1 else f"{entry_ref}/{index}"
            else:
                reference = detail["account_ref"] if len(details) == 1 else ""
            bank_reference = detail["account_ref"] or entry_ref or ntry_ref or detail["end_to_end"]
            values = {
                "amount": tx_amount,
                "currency": tx_currency,
                "booking_date": booking_date,
                "value_date": value_date,
                "debtor_name": detail["debtor_name"][:140],
                "debtor_iban": detail["debtor_iban"][:34],
                "debtor_bic": detail["debtor_bic"][:11],
                "remittance_info": remittance,
                "creditor_reference": detail["creditor_reference"][:64],
                "bank_reference": bank_reference[:64],
                "account_iban": self._account,
                "reversal": reversal,
            }
            key = self._key(reference, values, detail)
            credits.append(Credit(entry_key=key, **values))
        return credits

    def _transaction(self, tx: Any, line: int) -> dict[str, Any]:
        amount = self._amount(tx.find(self.path("Amt")), line)
        if amount[0] is None:
            amount = self._amount(tx.find(self.path("AmtDtls/TxAmt/Amt")), line)
        parties = tx.find(self.path("RltdPties"))
        name = iban = ""
        if parties is not None:
            name = self.text(parties, "Dbtr/Nm") or self.text(parties, "Dbtr/Pty/Nm")
            iban = _compact_iban(self.text(parties, "DbtrAcct/Id/IBAN"))
        bic = self.text(tx, "RltdAgts/DbtrAgt/FinInstnId/BIC") or self.text(
            tx, "RltdAgts/DbtrAgt/FinInstnId/BICFI"
        )
        remittance = self.texts(tx, "RmtInf/Ustrd")
        remittance += self.texts(tx, "RmtInf/Strd/RfrdDocInf/Nb")
        remittance += self.texts(tx, "RmtInf/Strd/AddtlRmtInf")
        references = self.texts(tx, "RmtInf/Strd/CdtrRefInf/Ref")
        return {
            "amount": amount,
            "debtor_name": name,
            "debtor_iban": iban,
            "debtor_bic": bic.upper(),
            "remittance": " ".join(remittance),
            "creditor_reference": references[0] if references else "",
            "account_ref": _reference(self.text(tx, "Refs/AcctSvcrRef")),
            "end_to_end": _reference(self.text(tx, "Refs/EndToEndId")),
            "tx_id": _reference(self.text(tx, "Refs/TxId")),
            "instruction_id": _reference(self.text(tx, "Refs/InstrId")),
        }

    def _amount(
        self, element: Any, line: int, *, required: bool = False
    ) -> tuple[Decimal | None, str]:
        if element is None or not (element.text or "").strip():
            if required:
                raise CamtError(f"The entry on line {line} has no amount.")
            return None, ""
        try:
            amount = parse_amount(element.text)
        except CamtError as exc:
            raise CamtError(f"The entry on line {line} has an invalid amount: {exc}.") from exc
        currency = (element.get("Ccy") or "").strip().upper()
        if len(currency) != 3:
            raise CamtError(f"The entry on line {line} has an amount without a currency.")
        return amount, currency

    def _date(self, element: Any, name: str, line: int) -> date | None:
        holder = element.find(self.path(name))
        if holder is None:
            return None
        raw = self.text(holder, "Dt") or self.text(holder, "DtTm")
        if not raw:
            return None
        try:
            if len(raw) > 10:
                return datetime.fromisoformat(raw).date()
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise CamtError(f"The entry on line {line} has an invalid date {raw!r}.") from exc

    def _key(self, reference: str, values: dict[str, Any], detail: dict[str, Any]) -> str:
        if reference:
            key = f"ref:{values['account_iban']}:{reference}"
            if len(key) <= 128:
                return key
            return "ref:" + hashlib.sha256(key.encode()).hexdigest()
        salient = "|".join(
            str(v)
            for v in (
                values["account_iban"],
                values["booking_date"],
                values["value_date"] or "",
                values["amount"],
                values["currency"],
                values["debtor_iban"],
                values["debtor_name"],
                values["remittance_info"],
                values["creditor_reference"],
                detail["end_to_end"],
                detail["tx_id"],
                detail["instruction_id"],
            )
        )
        digest = hashlib.sha256(salient.encode()).hexdigest()
        # Two identical-looking transfers in one file are two credits: the second one's
        # key carries its occurrence, so re-reading the file gives the same keys.
        count = self._hash_counts.get(digest, 0) + 1
        self._hash_counts[digest] = count
        if count > 1:
            digest = hashlib.sha256(f"{salient}|#{count}".encode()).hexdigest()
        return f"sha256:{digest}"


def _merge(details: list[dict[str, Any]]) -> dict[str, Any]:
    """One credit for a whole entry: the first payer, every transaction's remittance."""
    if not details:
        return {
            "amount": (None, ""),
            "debtor_name": "",
            "debtor_iban": "",
            "debtor_bic": "",
            "remittance": "",
            "creditor_reference": "",
            "account_ref": "",
            "end_to_end": "",
            "tx_id": "",
            "instruction_id": "",
        }
    merged = dict(details[0])
    if len(details) > 1:
        merged["remittance"] = " ".join(d["remittance"] for d in details if d["remittance"])
        merged["account_ref"] = ""
    return merged


def _reference(raw: str) -> str:
    return "" if raw.upper() in NOT_PROVIDED else raw


def _compact_iban(raw: str) -> str:
    return "".join(raw.split()).upper()


# --- Writing (demo command, benchmarks) ----------------------------------------------------

NS_053_02 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@dataclass(frozen=True, slots=True)
class OutgoingCredit:
    """A credit to write into a generated statement."""

    amount: Decimal
    booking_date: date
    reference: str  # AcctSvcrRef, unique per credit
    debtor_name: str
    debtor_iban: str
    remittance_info: str = ""
    creditor_reference: str = ""
    debtor_bic: str = ""


def build_camt053(
    *,
    account_iban: str,
    statement_id: str,
    created_at: datetime,
    credits: Iterable[OutgoingCredit],
    currency: str = "EUR",
) -> bytes:
    """A minimal, valid camt.053.001.02 statement with one booked entry per credit
    (opening balance zero, closing balance the sum of the credits)."""
    return b"".join(
        _iter_camt053(
            account_iban=account_iban,
            statement_id=statement_id,
            created_at=created_at,
            credits=credits,
            currency=currency,
        )
    )


def _iter_camt053(*, account_iban, statement_id, created_at, credits, currency) -> Iterator[bytes]:
    E = ElementMaker()  # plain names: they take the default namespace of <Document>
    created = created_at.isoformat(timespec="seconds")
    yield b'<?xml version="1.0" encoding="UTF-8"?>\n'
    yield f'<Document xmlns="{NS_053_02}"><BkToCstmrStmt>'.encode()
    yield _xml(E.GrpHdr(E.MsgId(statement_id[:35]), E.CreDtTm(created)))
    yield b"<Stmt>"
    yield _xml(E.Id(statement_id[:35]))
    yield _xml(E.CreDtTm(created))
    yield _xml(E.Acct(E.Id(E.IBAN(account_iban)), E.Ccy(currency)))
    credits = list(credits)
    day = (max(c.booking_date for c in credits) if credits else created_at.date()).isoformat()
    closing = sum((to_money(c.amount) for c in credits), Decimal("0.00"))
    for code, amount in (("OPBD", Decimal("0.00")), ("CLBD", closing)):
        yield _xml(
            E.Bal(
                E.Tp(E.CdOrPrtry(E.Cd(code))),
                E.Amt(f"{amount:.2f}", Ccy=currency),
                E.CdtDbtInd("CRDT"),
                E.Dt(E.Dt(day)),
            )
        )
    for credit in credits:
        yield _xml(_entry_element(E, credit, currency))
    yield b"</Stmt></BkToCstmrStmt></Document>\n"


def _entry_element(E: Any, credit: OutgoingCredit, currency: str) -> Any:
    amount = f"{to_money(credit.amount):.2f}"
    day = credit.booking_date.isoformat()
    remittance = []
    if credit.remittance_info:
        remittance.append(E.Ustrd(credit.remittance_info[:140]))
    if credit.creditor_reference:
        remittance.append(
            E.Strd(
                E.CdtrRefInf(
                    E.Tp(E.CdOrPrtry(E.Cd("SCOR")), E.Issr("ISO")),
                    E.Ref(credit.creditor_reference),
                )
            )
        )
    transaction = E.TxDtls(
        E.Refs(E.AcctSvcrRef(credit.reference), E.EndToEndId("NOTPROVIDED")),
        E.AmtDtls(E.TxAmt(E.Amt(amount, Ccy=currency))),
        E.RltdPties(
            E.Dbtr(E.Nm(credit.debtor_name[:140])), E.DbtrAcct(E.Id(E.IBAN(credit.debtor_iban)))
        ),
    )
    if credit.debtor_bic:
        transaction.append(E.RltdAgts(E.DbtrAgt(E.FinInstnId(E.BIC(credit.debtor_bic)))))
    if remittance:
        transaction.append(E.RmtInf(*remittance))
    return E.Ntry(
        E.Amt(amount, Ccy=currency),
        E.CdtDbtInd("CRDT"),
        E.Sts("BOOK"),
        E.BookgDt(E.Dt(day)),
        E.ValDt(E.Dt(day)),
        E.AcctSvcrRef(credit.reference),
        E.BkTxCd(E.Domn(E.Cd("PMNT"), E.Fmly(E.Cd("RCDT"), E.SubFmlyCd("ESCT")))),
        E.NtryDtls(transaction),
    )


def _xml(element: Any) -> bytes:
    # Serialised one element at a time (flat memory for large files), escaped by lxml.
    return etree.tostring(element, encoding="UTF-8", xml_declaration=False)


def parse_bytes(content: bytes) -> Document:
    """Convenience for tests and small files."""
    import io

    return parse(io.BytesIO(content))
