"""The fixed-window throttle behind every throttled endpoint (shop.api.throttling)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from shop.api.throttling import ScopedWindowThrottle


class View:
    throttle_scope = "checkout"


@pytest.fixture
def rates(monkeypatch):
    cache.clear()
    monkeypatch.setattr(ScopedWindowThrottle, "THROTTLE_RATES", {"checkout": "3/min"})


def allowed(address: str = "192.0.2.1") -> tuple[bool, float, str]:
    request = APIRequestFactory().post("/api/orders/", REMOTE_ADDR=address)
    request.user = AnonymousUser()
    throttle = ScopedWindowThrottle()
    ok = throttle.allow_request(request, View())
    return ok, throttle.wait(), throttle.key


def test_the_rate_is_counted_per_client_and_window(rates):
    """The 4th request in a minute waits for the next minute; another client is not hit;
    the state is one counter per client and window, whatever the rate."""
    with time_machine.travel(datetime(2026, 11, 23, 12, 0, 15, tzinfo=UTC), tick=False):
        assert [allowed()[0] for _ in range(3)] == [True, True, True]
        ok, wait, key = allowed()
        assert not ok and wait == pytest.approx(45)
        assert allowed("192.0.2.2")[0]
        minute = int(datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp() // 60)
        assert cache.get(f"{key}:{minute}") == 4  # one integer, not a list of times
    with time_machine.travel(datetime(2026, 11, 23, 12, 1, 0, tzinfo=UTC), tick=False):
        assert allowed()[0]


def test_a_view_without_a_scope_is_not_throttled(rates):
    class Unscoped:
        pass

    request = APIRequestFactory().post("/x/")
    request.user = AnonymousUser()
    assert all(ScopedWindowThrottle().allow_request(request, Unscoped()) for _ in range(10))
