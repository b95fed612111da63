"""The guest's short-lived token for /api/me/ (R30: identity by a one-time link).

`Authorization: Bearer <token>` or `X-Subject-Token: <token>`; the token is the signed
email from `GET /api/me/email-link/confirm/`, valid for 30 minutes.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from legal.access import Subject, email_from_subject_token, subject_for_request


class SubjectTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        raw = request.headers.get("X-Subject-Token", "")
        if not raw:
            parts = request.headers.get("Authorization", "").split()
            if len(parts) == 2 and parts[0] == self.keyword:
                raw = parts[1]
        if not raw:
            return None
        email = email_from_subject_token(raw)
        if email is None:
            raise exceptions.AuthenticationFailed("The token is invalid or has expired.")
        return AnonymousUser(), Subject(email=email)

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class SubjectTokenScheme(OpenApiAuthenticationExtension):
    target_class = "legal.api.authentication.SubjectTokenAuthentication"
    name = "subjectToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "The 30-minute token from GET /api/me/email-link/confirm/ (also accepted "
                "in the X-Subject-Token header)."
            ),
        }


class HasSubject(permissions.BasePermission):
    """A proven email (guest token) or a logged-in account."""

    def has_permission(self, request, view) -> bool:
        subject = subject_for_request(request)
        return subject is not None and subject.has_identity
