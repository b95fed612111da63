"""Customer emails through the outbox: rendered in the transaction, sent after commit.

Customer-facing emails are bilingual: Latvian first, then English (Django i18n renders the
same template once per language). Attachments are referenced by kind and id and built
when the email is sent, so the outbox row stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from shop import outbox
from shop.models import OutboxMessage

AttachmentBuilder = Callable[[int], tuple[str, bytes, str]]
_attachment_builders: dict[str, AttachmentBuilder] = {}

LANGUAGES = ("lv", "en")
SEPARATOR = "\n\n" + "—" * 40 + "\nEnglish\n" + "—" * 40 + "\n\n"


def attachment_builder(kind: str) -> Callable[[AttachmentBuilder], AttachmentBuilder]:
    def register(func: AttachmentBuilder) -> AttachmentBuilder:
        _attachment_builders[kind] = func
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
    context: dict[str, Any],
    attachments: Sequence[tuple[str, int]] = (),
    dedupe_key: str | None = None,
) -> OutboxMessage:
    """Render now (inside the caller's transaction); send once after commit."""
    subject, body = render_bilingual(template, context)
    payload = {
        "to": [to],
        "subject": subject,
        "body": body,
        "template": template,
        "attachments": [{"kind": kind, "id": obj_id} for kind, obj_id in attachments],
    }
    return outbox.publish("email.send", payload, dedupe_key=dedupe_key)


@outbox.handler("email.send")
def send_email(payload: dict[str, Any], message: OutboxMessage) -> None:
    email = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["body"],
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
