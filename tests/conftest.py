"""Wiring shared by the whole suite."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from shop.celery import app as celery_app


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


requires_postgresql = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "sqlite").startswith("sqlite"),
    reason="needs PostgreSQL (row locks and real concurrency); set DATABASE_URL=postgres://...",
)
requires_broker = pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL")
    or os.environ.get("DATABASE_URL", "sqlite").startswith("sqlite"),
    reason="needs a real Celery broker (CELERY_BROKER_URL) and PostgreSQL shared with the worker",
)


@pytest.fixture(autouse=True)
def _celery_eager(request):
    """Tasks run in-process unless a test starts a real worker (marker `broker`)."""
    if request.node.get_closest_marker("broker"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttling counters live in the cache, reference data in the process (a test's rows
    are rolled back without signals): every test starts with neither."""
    from django.core.cache import cache

    from shop import reference

    cache.clear()
    reference.forget()
    yield
    reference.forget()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
