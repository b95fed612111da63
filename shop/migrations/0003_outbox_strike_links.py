"""Outbox rows keep no usable secret (R26, R30): the emails already in the outbox keep
their text with every link that carries a token struck out; an email not yet sent keeps
its live text sealed until it is sent (shop.mail)."""

import json

from django.db import migrations

from shop import tokens


def strike_links(apps, schema_editor):
    OutboxMessage = apps.get_model("shop", "OutboxMessage")
    rows = OutboxMessage.objects.filter(topic="email.send", payload__has_key="body")
    for message in rows.only("pk", "payload", "delivered_at").iterator(chunk_size=500):
        payload = message.payload
        subject, body = payload.get("subject") or "", payload.get("body") or ""
        kept = tokens.strike_links(subject), tokens.strike_links(body)
        if kept == (subject, body) or "sealed" in payload:
            continue
        payload["subject"], payload["body"] = kept
        if message.delivered_at is None:
            payload["sealed"] = tokens.seal(json.dumps([subject, body]))
        OutboxMessage.objects.filter(pk=message.pk).update(payload=payload)


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_default_vat_rates")]

    operations = [migrations.RunPython(strike_links, migrations.RunPython.noop)]
