"""Rate limits for the server-rendered customer pages (order, withdrawal button,
unsubscribe): the same per-client window counter as the API (shop.api.throttling), with
a page instead of problem+json past the rate.

    path("<str:number>/", throttle_page(web.order_detail), name="detail")

The rate is the `web_page` scope of DEFAULT_THROTTLE_RATES (THROTTLE_WEB_PAGE).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shop.api.throttling import ScopedWindowThrottle

WEB_PAGE_SCOPE = "web_page"


def too_many_requests(request: HttpRequest, wait: float) -> HttpResponse:
    retry_after = max(1, math.ceil(wait))
    response = render(
        request, "shop/too_many_requests.html", {"retry_after": retry_after}, status=429
    )
    response["Retry-After"] = str(retry_after)
    return response


def throttle_page(view: Callable | None = None, *, scope: str = WEB_PAGE_SCOPE):
    """Wrap a page view: past the scope's rate for this client, 429 with a page that says
    when to come back (and `Retry-After`). Usable bare or as `throttle_page(scope=...)`."""

    def decorator(page: Callable) -> Callable:
        holder = SimpleNamespace(throttle_scope=scope)

        @wraps(page)
        def throttled(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            throttle = ScopedWindowThrottle()
            if not throttle.allow_request(request, holder):
                return too_many_requests(request, throttle.wait())
            return page(request, *args, **kwargs)

        return throttled

    return decorator(view) if view is not None else decorator
