"""Rate limits per scope and client: a fixed-window counter.

DRF's `ScopedRateThrottle` keeps, per client, the list of every request time in the window
and reads and rewrites it on each request: the list grows with the rate (up to 6,000
floats per courier call at the webhook's rate) and two concurrent requests can each
overwrite the other's entry. This one keeps one counter per client and window, raised
with an atomic increment. A fixed window lets a client spend its rate twice around a
window's edge; the rates are set with that in mind.

The client is the logged-in user, else its IP address: REMOTE_ADDR, or with
TRUSTED_PROXY_COUNT proxies in front the address the outermost trusted proxy saw (never
what the client itself wrote into `X-Forwarded-For`). With the cache down, every limit
fails open with a warning: a rate limit is not worth a 500 on checkout.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache
from django.utils.crypto import salted_hmac
from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)

# What a cache backend raises when its server is down (redis-py's errors are not OSError).
CACHE_ERRORS = (RedisError, OSError)


def client_ip(request) -> str:
    """The client's address as the trusted proxies saw it (TRUSTED_PROXY_COUNT, default 0).

    With N trusted proxies, each appends the address it received the request from to
    `X-Forwarded-For`, so the N-th entry from the right was written by the outermost
    trusted proxy; everything left of it is the client's own text. With 0, REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    entries = [entry.strip() for entry in forwarded.split(",")]
    candidate = entries[-min(proxies, len(entries))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote  # a proxy that does not write addresses: do not trust the header


def client_key(request) -> str:
    """The throttling identity: the user's id when logged in, else the client's IP."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def hashed(value: str) -> str:
    """A cache key part for a personal value (an email, a username): keyed hash, so the
    cache (and a key printed anywhere) holds no address."""
    return salted_hmac("shop.throttling", value.strip().lower()).hexdigest()[:32]


def increment(key: str, duration: int) -> int:
    """Add one to the counter `key` (created with a lifetime of `duration` seconds) and
    return its new value. Raises one of CACHE_ERRORS when the cache is down."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        # One round trip (Django's incr() asks EXISTS first): INCR and a fresh expiry in a
        # MULTI; windowed keys carry the window, so the expiry only cleans up.
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)
        with client.pipeline() as pipe:
            count, _expiry = pipe.incr(full_key).expire(full_key, duration).execute()
        return count
    try:
        return default_cache.incr(key)
    except ValueError:  # the first one
        if default_cache.add(key, 1, duration):
            return 1
        return default_cache.incr(key)  # another request created it just now


def cache_unavailable(what: str, exc: BaseException) -> None:
    """The warning when a limit fails open: the scope and the error's type, no key (a key
    may hold an IP address)."""
    logger.warning("cache unavailable, %s not enforced (%s)", what, type(exc).__name__)


def allow(key: str, rate: str, *, what: str = "a rate limit") -> bool:
    """One more event for `key` under `rate` ("5/hour"): False once the window's count is
    past the rate. True when the rate is empty or the cache is down (with a warning)."""
    if not rate:
        return True
    number, duration = ScopedRateThrottle().parse_rate(rate)
    window = int(time.time() // duration)
    try:
        return increment(f"limit:{key}:{window}", duration + 1) <= number
    except CACHE_ERRORS as exc:
        cache_unavailable(what, exc)
        return True


def allow_for_address(purpose: str, email: str, rate: str) -> bool:
    """One more `purpose` (a login-link email, say) for this address under `rate`, whoever
    asks and from wherever: False past it. The key holds a hash, not the address."""
    return allow(f"{purpose}:{hashed(email)}", rate, what=f"the per-address {purpose} limit")


class ScopedWindowThrottle(ScopedRateThrottle):
    """`throttle_scope` on the view names the rate in DEFAULT_THROTTLE_RATES."""

    def get_ident(self, request) -> str:
        return client_ip(request)

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
        try:
            return self._count(f"{self.key}:{window}") <= self.num_requests
        except CACHE_ERRORS as exc:
            cache_unavailable(f"throttle scope {self.scope}", exc)
            return True

    def _count(self, key: str) -> int:
        if self.cache is default_cache:
            return increment(key, self.duration + 1)
        try:  # a cache of a test's own
            return self.cache.incr(key)
        except ValueError:
            if self.cache.add(key, 1, self.duration + 1):
                return 1
            return self.cache.incr(key)

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
