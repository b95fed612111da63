"""The Latvian catalogue: complete, compiled, and used by the customer emails.

Customer-facing texts are Latvian with English through Django i18n (STYLE: every text
in Latvian); `make messages` extracts and compiles them. These tests read the committed
locale/lv/LC_MESSAGES/django.po with a small parser (no polib in the project)."""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.template import Context, Template
from django.utils import translation

from shop.mail import SEPARATOR

LC_MESSAGES = Path(settings.LOCALE_PATHS[0]) / "lv" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"
PLACEHOLDER = re.compile(r"%\([A-Za-z_]+\)[sdif]|%[sd]|\{[A-Za-z_0-9]*\}")


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> str:
        """The key of the entry in a compiled catalogue (context EOT msgid)."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"

    def __str__(self) -> str:
        context = f"[{self.msgctxt}] " if self.msgctxt is not None else ""
        return f"line {self.line}: {context}{self.msgid!r}"


def parse_po(path: Path) -> list[Entry]:
    """The entries of a .po file (obsolete `#~` entries left out), header excluded."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        entry, target = Entry(), None
        for number, line in enumerate(block.splitlines()):
            if line.startswith("#~") or not line.strip():
                continue
            if line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                value = ast.literal_eval(line)
                if isinstance(target, int):
                    entry.msgstr[target] += value
                else:
                    setattr(entry, target, getattr(entry, target) + value)
            else:
                keyword, _, rest = line.partition(" ")
                value = ast.literal_eval(rest)
                if keyword.startswith("msgstr"):
                    target = int(keyword[7:-1]) if keyword.startswith("msgstr[") else 0
                    entry.msgstr[target] = value
                else:
                    target = keyword
                    setattr(entry, keyword, value)
                    if keyword == "msgid":
                        entry.line = number
        if entry.msgid:
            entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    parsed = parse_po(PO_FILE)
    assert len(parsed) > 500, "the Latvian catalogue was not parsed"
    return parsed


def test_every_entry_is_translated(entries):
    untranslated = [str(e) for e in entries if not e.msgstr or not all(e.msgstr.values())]
    assert not untranslated, "untranslated:\n" + "\n".join(untranslated)


def test_no_entry_is_fuzzy(entries):
    fuzzy = [str(e) for e in entries if "fuzzy" in e.flags]
    assert not fuzzy, "fuzzy (check the translation, then remove the flag):\n" + "\n".join(fuzzy)


def test_translations_keep_the_placeholders(entries):
    """A missing or misspelt %(name)s breaks the text at run time, in Latvian only.
    Plural form 2 (zero) may leave the number out."""
    wrong = []
    for e in entries:
        wanted = set(PLACEHOLDER.findall(e.msgid + " " + (e.msgid_plural or "")))
        for index, text in e.msgstr.items():
            found = set(PLACEHOLDER.findall(text))
            if found - wanted or (found != wanted and (e.msgid_plural is None or index < 2)):
                wrong.append(f"{e} msgstr[{index}]: {sorted(found)} != {sorted(wanted)}")
    assert not wrong, "\n".join(wrong)


def test_compiled_catalogue_matches_the_po_file(entries):
    """django.mo is compiled from the current django.po (`make messages`): same entries,
    same translations, nothing stale."""
    with MO_FILE.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    expected: dict[object, str] = {}
    for e in entries:
        if e.msgid_plural is None:
            expected[e.key] = e.msgstr[0]
        else:
            for index, text in e.msgstr.items():
                expected[(e.key, index)] = text
    compiled = {key: text for key, text in catalog.items() if key != ""}
    stale = {key: (compiled.get(key), text) for key, text in expected.items()}
    stale = {key: pair for key, pair in stale.items() if pair[0] != pair[1]}
    assert not stale, f"django.mo is out of date, run `make messages`: {list(stale.items())[:5]}"
    assert not set(compiled) - set(expected), "django.mo has entries django.po no longer has"


def test_contexts_give_each_noun_its_own_latvian_form():
    """The same English word labels things of different gender in Latvian: an order
    (pasūtījums, masculine), a line or a refund (feminine), claims (feminine plural)."""
    from legal.admin import DataSubjectRequestAdmin
    from orders.models import LineStatus, OrderStatus, RefundStatus
    from returns.admin.claims import ClaimStateFilter
    from shop.models import Product

    with translation.override("lv"):
        assert OrderStatus.CANCELLED.label == "Atcelts"
        assert LineStatus.CANCELLED.label == "Atcelta"
        assert OrderStatus.CLOSED.label == "Slēgts"
        assert RefundStatus.FAILED.label == "Neizdevusies"
        claim_states = dict(ClaimStateFilter.lookups(None, None, None))
        assert (claim_states["closed"], claim_states["all"]) == ("Slēgtās", "Visas")
        assert str(DataSubjectRequestAdmin.overdue.short_description) == "nokavēts"
        assert str(Product._meta.get_field("active").verbose_name) == "aktīva"
        assert OrderStatus.PAID.label == "Apmaksāts"
        paid = Template('{% load i18n %}{% translate "Paid" context "amount" %}').render(Context())
        assert paid == "Samaksāts"
    with translation.override("en"):
        assert (OrderStatus.CANCELLED.label, LineStatus.CANCELLED.label) == (
            "Cancelled",
            "Cancelled",
        )


def english_fragments(entries: list[Entry]) -> set[str]:
    """Runs of at least four English words from the catalogue whose Latvian differs: none
    of them may appear in a Latvian text."""
    fragments = set()
    for e in entries:
        if e.msgstr.get(0) == e.msgid:
            continue
        for source in (e.msgid, e.msgid_plural or ""):
            for part in PLACEHOLDER.split(source):
                part = part.strip(" .,:;()?!—-")
                if len(part.split()) >= 4:
                    fragments.add(part)
    return fragments


@pytest.mark.django_db
def test_r9_order_confirmation_latvian_half_is_latvian(entries, django_capture_on_commit_callbacks):
    """R9: the order confirmation is Latvian first, then English; the Latvian half uses
    the shop's terms and no English sentence leaks into it."""
    from tests.factories import place_test_order

    with django_capture_on_commit_callbacks(execute=True):
        order = place_test_order().order
    [email] = [m for m in mail.outbox if m.extra_headers.get("X-Shop-Template") == "order_placed"]
    latvian, _, english = email.body.partition(SEPARATOR)
    assert english, "the email has no English half"
    for word in ("Labdien", "Paldies par jūsu pasūtījumu", "Atteikuma tiesības", "rēķinu"):
        assert word in latvian, word
    assert order.number in latvian and "Thank you for your order" in english
    leaked = sorted(f for f in english_fragments(entries) if f in latvian)
    assert not leaked, f"English in the Latvian half: {leaked}"
