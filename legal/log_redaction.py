"""Keep the log redaction effective everywhere (R26 house rule: no emails, phone numbers,
IBANs or bearer tokens in log lines; see shop.logging.RedactPersonalDataFilter, which also
cuts the values of `token=` parameters out of request lines).

The filter sits on the root "console" handler (shop.settings.LOGGING), but some loggers
write through handlers of their own and never reach it: Django's defaults for "django"
and "django.server" (request lines, with query strings), and the handlers a Celery worker
installs when it takes over logging, and gunicorn's access log (`--access-logfile`),
whose handlers exist before the app is loaded. `ensure_redaction()` adds the filter to
every handler that lacks it; it runs when the app is ready and again whenever Celery sets
up its logging.
"""

from __future__ import annotations

import logging

from shop.logging import RedactPersonalDataFilter

_FILTER = RedactPersonalDataFilter()


def _loggers() -> list[logging.Logger]:
    found = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            found.append(logger)
    return found


def _has_redaction(handler: logging.Handler) -> bool:
    return any(isinstance(f, RedactPersonalDataFilter) for f in handler.filters)


def ensure_redaction() -> int:
    """Add the redaction filter to every handler of every logger; returns how many."""
    added = 0
    for logger in _loggers():
        for handler in logger.handlers:
            if not _has_redaction(handler):
                handler.addFilter(_FILTER)
                added += 1
    return added


def unredacted_handlers() -> list[tuple[str, logging.Handler]]:
    """(logger name, handler) that would write a record without redacting it."""
    return [
        (logger.name, handler)
        for logger in _loggers()
        for handler in logger.handlers
        if not _has_redaction(handler) and not isinstance(handler, logging.NullHandler)
    ]


def _after_celery_setup(*args, **kwargs) -> None:
    ensure_redaction()


def connect_celery_logging() -> None:
    from celery import signals

    signals.after_setup_logger.connect(_after_celery_setup, weak=False)
    signals.after_setup_task_logger.connect(_after_celery_setup, weak=False)
    ensure_redaction()
