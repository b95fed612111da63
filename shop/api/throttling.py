"""Rate limits per scope and client: a fixed-window counter.

DRF's `ScopedRateThrottle` keeps, per client, the list of every request time in the window
and reads and rewrites it on each request: the list grows with the rate (up to 6,000
floats per courier call at the webhook's rate) and two concurrent requests can each
overwrite the other's entry. This one keeps one counter per client and window, raised
with an atomic increment. A fixed window lets a client spend its rate twice around a
window's edge; the rates are set with that in mind.
"""

from __future__ import annotations

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import ScopedRateThrottle


class ScopedWindowThrottle(ScopedRateThrottle):
    """`throttle_scope` on the view names the rate in DEFAULT_THROTTLE_RATES."""

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        return self._count(f"{self.key}:{window}") <= self.num_requests

    def _count(self, key: str) -> int:
        backend = caches[DEFAULT_CACHE_ALIAS] if self.cache is default_cache else self.cache
        if isinstance(backend, RedisCache):
            # One round trip (Django's incr() asks EXISTS first): INCR and a fresh expiry
            # in a MULTI; the window is in the key, so the expiry only cleans up.
            full_key = backend.make_and_validate_key(key)
            client = backend._cache.get_client(full_key, write=True)
            with client.pipeline() as pipe:
                count, _expiry = pipe.incr(full_key).expire(full_key, self.duration + 1).execute()
            return count
        try:
            return self.cache.incr(key)
        except ValueError:  # the first request of the window
            if self.cache.add(key, 1, self.duration + 1):
                return 1
            return self.cache.incr(key)  # another request created it just now

    def wait(self) -> float:
        return max(0.0, self.window_end - self.now)


class ThrottleRefusedCallsOnly:
    """For a signed webhook: only calls whose signature is refused count against the rate
    (`throttle_refused_call` raises 429 past it). A correctly signed call is never
    throttled: the sender is known, checking the signature costs less than counting, and
    a 429 would only make the courier send the event again later."""

    def check_throttles(self, request) -> None:
        """Nothing before the signature is checked."""

    def throttle_refused_call(self, request) -> None:
        super().check_throttles(request)
