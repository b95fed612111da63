"""A request body size limit, checked before anything reads the body.

Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE only when `request.body` or `request.POST` is
read; DRF's JSON parser reads the stream itself and would parse a body of any size. This
middleware refuses, from the Content-Length header alone, any body that is not a
multipart upload and is larger than DATA_UPLOAD_MAX_MEMORY_SIZE, and any multipart upload
larger than MAX_UPLOAD_REQUEST_SIZE (the forms check each file's own size and type): 413,
as application/problem+json under /api/.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from shop.api.errors import problem_response


def body_limit(request: HttpRequest) -> int | None:
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/form-data"):
        return getattr(settings, "MAX_UPLOAD_REQUEST_SIZE", None)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django treats a malformed length as no body
        if limit is not None and length > limit:
            if request.path.startswith("/api/"):
                return problem_response(
                    413,
                    code="request_too_large",
                    detail=f"The request body is larger than {limit} bytes.",
                    limit=limit,
                )
            return HttpResponse("Request body too large.", status=413, content_type="text/plain")
        return self.get_response(request)
