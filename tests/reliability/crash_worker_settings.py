"""Settings of the Celery worker the crash test kills (tests/reliability/test_crash.py).

The production settings, with one change: the email backend answers like an SMTP
server that takes a moment to confirm (the message is written at once, the answer comes
CRASH_MAIL_LATENCY seconds later), which is the window in which a worker killed after
the hand-over and before its commit leaves a message sent but not marked delivered.
"""

from shop.settings import *  # noqa: F403

EMAIL_BACKEND = "tests.reliability.crash_worker_settings.SlowFileBackend"


def _backend():
    import os
    import time

    from django.core.mail.backends.filebased import EmailBackend

    class SlowFileBackend(EmailBackend):
        def send_messages(self, email_messages):
            sent = super().send_messages(email_messages)
            time.sleep(float(os.environ.get("CRASH_MAIL_LATENCY", "0.05")))
            return sent

    return SlowFileBackend


def __getattr__(name):  # the backend class, imported lazily by Django's mail module
    if name == "SlowFileBackend":
        return _backend()
    raise AttributeError(name)
