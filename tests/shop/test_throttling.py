"""The fixed-window throttle behind every throttled endpoint (shop.api.throttling)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from shop.api.throttling import ScopedWindowThrottle, allow, client_ip


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


@pytest.mark.parametrize(
    ("proxies", "forwarded", "client"),
    [
        (0, "198.51.100.1", "192.0.2.1"),  # no trusted proxy: the header is ignored
        (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the proxy's own entry
        (2, "198.51.100.1, 203.0.113.7, 10.0.0.3", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),  # fewer entries than proxies: the leftmost
        (1, "<script>", "192.0.2.1"),  # not an address: REMOTE_ADDR
        (1, None, "192.0.2.1"),
    ],
)
def test_the_client_is_the_address_the_trusted_proxies_saw(settings, proxies, forwarded, client):
    """Issue 14: with TRUSTED_PROXY_COUNT proxies, the entry that many from the right of
    X-Forwarded-For; the client's own entries left of it never count."""
    settings.TRUSTED_PROXY_COUNT = proxies
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = APIRequestFactory().get("/", REMOTE_ADDR="192.0.2.1", **extra)
    assert client_ip(request) == client


def test_allow_counts_per_key_and_window():
    """The helper behind per-address limits: `rate` events per window, then False."""
    with time_machine.travel(datetime(2026, 11, 23, 12, 0, 15, tzinfo=UTC), tick=False):
        assert [allow("k", "2/hour") for _ in range(3)] == [True, True, False]
        assert allow("other", "2/hour")
        assert allow("k", "")  # no rate: no limit
    with time_machine.travel(datetime(2026, 11, 23, 13, 0, 0, tzinfo=UTC), tick=False):
        assert allow("k", "2/hour")


def test_a_cache_that_is_down_lets_requests_through_with_a_warning(settings, rates, caplog):
    """Issue 14: the cache down fails open (no 500), with a warning that names no client."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with caplog.at_level(logging.WARNING, logger="shop.api.throttling"):
        assert all(allowed("192.0.2.77")[0] for _ in range(5))
        assert allow("email-link:abc", "1/hour") and allow("email-link:abc", "1/hour")
    messages = [record.getMessage() for record in caplog.records]
    assert messages and all("cache unavailable" in m for m in messages)
    assert not any("192.0.2.77" in m for m in messages)
