"""The admin login with a lockout: after ADMIN_LOGIN_MAX_FAILURES wrong passwords in a
row for one username, or from one client, that username (or client) is refused for
ADMIN_LOGIN_LOCKOUT_SECONDS, doubled for each further failure after the lock ends, up to
ADMIN_LOGIN_LOCKOUT_MAX_SECONDS. While locked the password is not even checked, so a right
one is refused too; a successful login forgets the failures.

The counts live in the cache (shared by the web processes), under keyed hashes of the
username and the client's address. With the cache down the lockout fails open with a
warning, like every other limit (shop.api.throttling).
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

from shop.api.throttling import CACHE_ERRORS, cache_unavailable, client_ip, hashed, increment

FAILURES_REMEMBERED = 24 * 3600  # seconds since the last failure before the count restarts
WHAT = "the admin login lockout"


def _subjects(request, username: str) -> list[str]:
    return [f"user:{hashed(username)}", f"ip:{hashed(client_ip(request))}"]


def locked_for(request, username: str) -> int:
    """Seconds the login stays locked for this username or client (0: not locked)."""
    now = time.time()
    try:
        until = cache.get_many([f"admin-login:lock:{s}" for s in _subjects(request, username)])
    except CACHE_ERRORS as exc:
        cache_unavailable(WHAT, exc)
        return 0
    return max((math.ceil(value - now) for value in until.values()), default=0)


def record_failure(request, username: str) -> None:
    limit = settings.ADMIN_LOGIN_MAX_FAILURES
    now = time.time()
    try:
        for subject in _subjects(request, username):
            failures = increment(f"admin-login:failures:{subject}", FAILURES_REMEMBERED)
            if failures >= limit:
                backoff = min(
                    settings.ADMIN_LOGIN_LOCKOUT_SECONDS * 2 ** min(failures - limit, 30),
                    settings.ADMIN_LOGIN_LOCKOUT_MAX_SECONDS,
                )
                cache.set(f"admin-login:lock:{subject}", now + backoff, timeout=backoff)
    except CACHE_ERRORS as exc:
        cache_unavailable(WHAT, exc)


def forget_failures(request, username: str) -> None:
    try:
        cache.delete_many(
            [
                f"admin-login:{kind}:{s}"
                for s in _subjects(request, username)
                for kind in ("failures", "lock")
            ]
        )
    except CACHE_ERRORS as exc:
        cache_unavailable(WHAT, exc)


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        seconds = locked_for(self.request, username)
        if seconds > 0:
            minutes = math.ceil(seconds / 60)
            raise ValidationError(
                ngettext(
                    "Too many failed sign-in attempts. Signing in is locked for %(minutes)d "
                    "more minute; please try again later.",
                    "Too many failed sign-in attempts. Signing in is locked for %(minutes)d "
                    "more minutes; please try again later.",
                    minutes,
                ),
                code="locked_out",
                params={"minutes": minutes},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            record_failure(self.request, username)
            raise
        forget_failures(self.request, username)
        return cleaned
