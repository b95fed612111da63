"""The Celery application and its beat schedule.

Without CELERY_BROKER_URL tasks run eagerly in-process (the embedded default). With a
broker, run `make worker` and `make beat`. Each scheduled job is thin: it calls the same
service as its management command.
"""

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Anything whose immediate delivery after commit was lost is picked up here.
    "relay-outbox": {"task": "shop.tasks.relay_outbox", "schedule": timedelta(minutes=1)},
    # R10, R12, overdue refunds and every other deadline registered in shop.deadlines.
    "run-deadlines": {"task": "shop.tasks.run_deadlines", "schedule": timedelta(minutes=5)},
}


def add_schedule(name: str, task: str, schedule: timedelta | crontab) -> None:
    """Let an app add its job to the beat schedule from its AppConfig.ready()."""
    app.conf.beat_schedule[name] = {"task": task, "schedule": schedule}
