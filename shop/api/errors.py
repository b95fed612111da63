"""Every API error as application/problem+json (RFC 9457), DESIGN.md section 10.

    {"type": "...", "title": "...", "status": 400, "detail": "...",
     "errors": [{"field": "customer.email", "code": "invalid", "message": "..."}]}

A refused business action is a `BusinessRuleViolation`: 422 with a machine-readable
`code` and the facts that explain it (for example `deadline`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from shop.errors import InvalidInput, Refused

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://keune.lv/problems/"


class BusinessRuleViolation(exceptions.APIException):
    """A business action the rules refuse: 422 with `code` and the relevant facts."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "business_rule_violation"
    default_detail = "The action is not allowed."

    def __init__(self, code: str, detail: str, **facts: Any) -> None:
        super().__init__(detail=detail, code=code)
        self.code = code
        self.facts = facts


def problem(
    status_code: int,
    *,
    code: str | None = None,
    title: str | None = None,
    detail: str = "",
    **extra: Any,
) -> dict[str, Any]:
    title = title or HTTPStatus(status_code).phrase
    slug = code or title.lower().replace(" ", "-")
    body = {
        "type": f"{TYPE_BASE}{slug}",
        "title": title,
        "status": status_code,
        "detail": detail or title,
    }
    if code:
        body["code"] = code
    body.update(extra)
    return body


def flatten_errors(data: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error dict/list into [{"field", "code", "message"}], dotted paths."""
    out: list[dict[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = "" if key in ("non_field_errors",) else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            out.extend(flatten_errors(value, path))
    elif isinstance(data, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in data):
            for item in data:
                out.append(
                    {
                        "field": prefix or "__all__",
                        "code": getattr(item, "code", "invalid") or "invalid",
                        "message": str(item),
                    }
                )
        else:
            for index, item in enumerate(data):
                if item:
                    out.extend(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.append(
            {
                "field": prefix or "__all__",
                "code": getattr(data, "code", "invalid") or "invalid",
                "message": str(data),
            }
        )
    return out


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Refused):
        body = problem(
            exc.status_code,
            code=exc.code,
            title="Action refused" if exc.status_code == 422 else "Conflict",
            detail=exc.detail,
            **{key: _jsonable(value) for key, value in exc.facts.items()},
        )
        return Response(body, status=exc.status_code, content_type=PROBLEM_JSON)
    if isinstance(exc, RequestDataTooBig):
        # A body read past DATA_UPLOAD_MAX_MEMORY_SIZE (shop.middleware refuses most of
        # them earlier, from Content-Length): 413, never a 500.
        body = problem(413, code="request_too_large", detail="The request body is too large.")
        return Response(body, status=413, content_type=PROBLEM_JSON)
    if isinstance(exc, InvalidInput):
        exc = exceptions.ValidationError(
            {e["field"]: [exceptions.ErrorDetail(e["message"], code=e["code"])] for e in exc.errors}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handler answers (see shop.urls)

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = problem(
            response.status_code,
            code="validation_error",
            title="Validation failed",
            detail="; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
            errors=errors,
        )
    elif isinstance(exc, BusinessRuleViolation):
        body = problem(
            response.status_code,
            code=exc.code,
            title="Action refused",
            detail=str(exc.detail),
            **{key: _jsonable(value) for key, value in exc.facts.items()},
        )
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        body = problem(
            response.status_code,
            code=code if isinstance(code, str) else None,
            detail=str(getattr(exc, "detail", "")),
        )
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            body["retry_after"] = int(exc.wait)

    response.data = body
    response.content_type = PROBLEM_JSON
    return response


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        if hasattr(value, "tzinfo") and value.tzinfo is not None:
            from django.utils import timezone

            value = timezone.localtime(value)
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value) if not isinstance(value, int | str | bool | dict | None) else value


def problem_response(status_code: int, **kwargs: Any) -> JsonResponse:
    """A problem+json answer outside DRF (Django's 404/500 handlers for /api/)."""
    return JsonResponse(
        problem(status_code, **kwargs), status=status_code, content_type=PROBLEM_JSON
    )


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: problem+json under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return problem_response(
            403, code="csrf_failed", detail="CSRF verification failed; the request was refused."
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)
