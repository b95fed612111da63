"""Customer emails through the outbox: written with the change, sent after commit, once.

Two ways to queue one:

- `queue_email(context=...)` renders now, inside the caller's transaction: for emails
  whose context is not in the database (a one-off text, a token shown once).
- `queue_email(refs=...)` stores only ids; the template's context builder
  (`@context_builder("order_placed")`) loads them and the email is rendered when it is
  sent, after commit, in the worker. The hot paths (checkout, the courier webhook) pay
  one INSERT instead of rendering two languages inside their transaction. The rendered
  subject and body are written back into the outbox row when it is sent, so the row
  stays the record of what was said (KA7, `legal.services.communication`).

The row never keeps a usable secret in clear text (R26, R30: the data export and the
admin read it): what it keeps is the text with every link that carries a token struck
out ("[link removed]", `shop.tokens.strike_links`). The email sent carries the live
links: rendered at send time from `refs`, or, for an email rendered at queue time, kept
sealed (Fernet, `shop.tokens.seal`) in the row only until it is sent.

Customer-facing emails are bilingual: Latvian first, then English (Django i18n renders the
same template once per language). Attachments are referenced by kind and id and built
when the email is sent, so the outbox row stays small.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from shop import outbox, tokens
from shop.models import OutboxMessage

logger = logging.getLogger(__name__)

AttachmentBuilder = Callable[[int], tuple[str, bytes, str]]
_attachment_builders: dict[str, AttachmentBuilder] = {}
ContextBuilder = Callable[..., dict[str, Any]]
_context_builders: dict[str, ContextBuilder] = {}

LANGUAGES = ("lv", "en")
SEPARATOR = "\n\n" + "—" * 40 + "\nEnglish\n" + "—" * 40 + "\n\n"


def attachment_builder(kind: str) -> Callable[[AttachmentBuilder], AttachmentBuilder]:
    def register(func: AttachmentBuilder) -> AttachmentBuilder:
        _attachment_builders[kind] = func
        return func

    return register


def context_builder(template: str) -> Callable[[ContextBuilder], ContextBuilder]:
    """Register the function that builds `template`'s context from the ids given as
    `queue_email(refs=...)`, when the email is sent."""

    def register(func: ContextBuilder) -> ContextBuilder:
        if template in _context_builders and _context_builders[template] is not func:
            raise ValueError(f"email template {template!r} already has a context builder")
        _context_builders[template] = func
        return func

    return register


def render_bilingual(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body: Latvian, then English."""
    subjects, bodies = [], []
    for language in LANGUAGES:
        with translation.override(language):
            subjects.append(
                " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
            )
            bodies.append(render_to_string(f"emails/{template}.txt", context).strip())
    subject = subjects[0] if subjects[0] == subjects[1] else " / ".join(subjects)
    return subject, SEPARATOR.join(bodies) + "\n"


def queue_email(
    *,
    to: str,
    template: str,
    context: dict[str, Any] | None = None,
    refs: dict[str, int | str] | None = None,
    attachments: Sequence[tuple[str, int]] = (),
    dedupe_key: str | None = None,
) -> OutboxMessage:
    """Queue an email in the caller's transaction; it is sent once, after commit.

    With `context`, the email is rendered now. With `refs` (JSON ids), it is rendered when
    sent, by the template's registered context builder.
    """
    if (context is None) == (refs is None):
        raise TypeError("queue_email takes either context or refs")
    payload: dict[str, Any] = {
        "to": [to],
        "template": template,
        "attachments": [{"kind": kind, "id": obj_id} for kind, obj_id in attachments],
    }
    if refs is not None:
        if template not in _context_builders:
            raise LookupError(f"email template {template!r} has no context builder")
        payload["refs"] = refs
    else:
        subject, body = render_bilingual(template, context)
        payload["subject"], payload["body"] = _kept(subject, body)
        if (payload["subject"], payload["body"]) != (subject, body):
            payload["sealed"] = tokens.seal(json.dumps([subject, body]))
    return outbox.publish("email.send", payload, dedupe_key=dedupe_key)


def _kept(subject: str, body: str) -> tuple[str, str]:
    """What the outbox row keeps of an email: its text, links with tokens struck out."""
    return tokens.strike_links(subject), tokens.strike_links(body)


@outbox.handler("email.send")
def send_email(payload: dict[str, Any], message: OutboxMessage) -> None:
    if "sealed" in payload:
        try:
            subject, body = json.loads(tokens.unseal(payload["sealed"]))
        except tokens.InvalidLink:
            # Sealed under a key no longer configured: what was said still goes out,
            # without its links, rather than never.
            logger.warning(
                "outbox message %s: sealed text unreadable, sent without links", message.pk
            )
            subject, body = payload["subject"], payload["body"]
    elif "body" not in payload:
        # Rendered now, from the ids; kept in the row as the record of what was sent.
        context = _context_builders[payload["template"]](**payload["refs"])
        subject, body = render_bilingual(payload["template"], context)
    else:
        subject, body = payload["subject"], payload["body"]
    if "sealed" in payload or "body" not in payload:
        # The row keeps the text without its live links; the sealed copy goes when sent
        # (rolled back with the delivery if sending fails).
        payload = {k: v for k, v in payload.items() if k != "sealed"}
        payload["subject"], payload["body"] = _kept(subject, body)
        message.payload = payload
        message.save(update_fields=["payload"])
    email = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=payload["to"],
        headers={
            # Stable per outbox message: a receiver can drop a repeated delivery.
            "Message-ID": f"<outbox-{message.pk}@{settings.SHOP['SELLER_EMAIL'].split('@')[-1]}>",
            "X-Shop-Template": payload.get("template", ""),
        },
    )
    for attachment in payload.get("attachments", []):
        build = _attachment_builders[attachment["kind"]]
        filename, content, mimetype = build(attachment["id"])
        email.attach(filename, content, mimetype)
    email.send(fail_silently=False)
