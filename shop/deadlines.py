"""The time-driven rules, run by `run_deadlines` and its beat job.

Each app registers its jobs (R10, R12, overdue refunds, claims, ...) with `@deadline_job`;
`run_all(now)` runs them in registration order. Every job must be idempotent and cheap
when nothing is due (an indexed query that finds nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

logger = logging.getLogger(__name__)

Job = Callable[[datetime], int]
_jobs: dict[str, Job] = {}


def deadline_job(name: str) -> Callable[[Job], Job]:
    def register(func: Job) -> Job:
        _jobs[name] = func
        return func

    return register


def run_all(*, now: datetime | None = None) -> dict[str, int]:
    """Run every registered job; returns how many items each one handled."""
    now = now or timezone.now()
    report = {}
    for name, job in _jobs.items():
        report[name] = job(now)
        if report[name]:
            logger.info("deadline job %s handled %s item(s)", name, report[name])
    return report
