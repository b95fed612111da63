"""The durable outbox: written with the change, delivered once after commit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from shop import outbox
from shop.celery import app as celery_app
from shop.mail import queue_email
from shop.models import OutboxMessage
from tests.conftest import requires_broker

ROOT = Path(__file__).resolve().parents[2]


def queue_test_email(n: int = 0) -> OutboxMessage:
    return queue_email(to=f"anna{n}@example.lv", template="test_message", context={"n": n})


@pytest.mark.django_db
def test_message_is_sent_after_commit_only(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = queue_test_email()
    assert mail.outbox == []  # nothing leaves before commit
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert message.delivered_at is not None
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<outbox-{message.pk}@keune.lv>"


@pytest.mark.django_db
def test_rolled_back_change_sends_nothing(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        queue_test_email()
        raise RuntimeError("the state change failed")
    assert mail.outbox == []
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_repeated_delivery_sends_once():
    """Delivering the same message twice sends one email."""
    message = queue_test_email()
    assert outbox.deliver(message.pk) is True
    assert outbox.deliver(message.pk) is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_failed_delivery_is_retried_by_the_relay(monkeypatch):
    message = queue_test_email()
    calls = {"n": 0}
    original = outbox._handlers["email.send"]

    def flaky(payload, msg):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("smtp down")
        original(payload, msg)

    monkeypatch.setitem(outbox._handlers, "email.send", flaky)
    assert outbox.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.attempts == 1 and message.last_error == "ConnectionError"
    assert mail.outbox == []

    assert outbox.relay() == 0  # not yet: backing off
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert outbox.relay() == 1
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert message.delivered_at is not None


@pytest.mark.django_db
def test_dedupe_key_publishes_once():
    first = queue_email(
        to="a@example.lv", template="test_message", context={"n": 1}, dedupe_key="k1"
    )
    second = queue_email(
        to="a@example.lv", template="test_message", context={"n": 1}, dedupe_key="k1"
    )
    assert first.pk == second.pk
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_email_is_bilingual_latvian_first(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queue_test_email(7)
    body = mail.outbox[0].body
    assert body.index("Labdien") < body.index("Hello")


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
@requires_broker
def test_outbox_delivers_exactly_once_through_a_real_celery_worker(tmp_path):
    """A real worker on the Redis broker delivers every message once, also when the
    relay hands the same messages over a second time."""
    queue = f"test-outbox-{uuid.uuid4().hex[:8]}"
    maildir = tmp_path / "mail"
    maildir.mkdir()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "EMAIL_URL": f"filemail:///{maildir}",  # django-environ strips one slash
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DJANGO_DEBUG": "true",
    }
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shop",
            "worker",
            "-P",
            "solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ids = []
        for n in range(20):
            with transaction.atomic():
                ids.append(queue_test_email(n).pk)
        # The relay hands every message over again: the worker must not send twice.
        for message_id in ids:
            outbox._enqueue(message_id)

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if OutboxMessage.objects.filter(pk__in=ids, delivered_at__isnull=True).count() == 0:
                break
            time.sleep(0.2)  # waiting for another process, not for the clock
        assert OutboxMessage.objects.filter(pk__in=ids, delivered_at__isnull=True).count() == 0
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    sent = re.findall(
        r"Message-ID: <outbox-(\d+)@",
        "".join(p.read_text(errors="replace") for p in maildir.iterdir()),
    )
    assert sorted(map(int, sent)) == sorted(ids), output[-2000:]
