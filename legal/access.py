"""Who the person asking is (R30: identity proved by the logged-in account or a one-time link
sent to the email on file).

A `Subject` is a proven email, an account, or both:

- an account holder logged in by session or `Authorization: Token ...`: their account; its
  email counts once they proved it (the link emailed at registration). Until then the
  account acts for nothing tied to an email: no orders placed with it, no emails sent to
  it, no consents or requests under it; only what the account itself did;
- a guest who opened the one-time link from `POST /api/me/email-link/`: a short-lived
  signed token (`Authorization: Bearer ...` or `X-Subject-Token`) that names the email.

The person's orders are those placed with the proven email or linked to the account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from shop import tokens

SUBJECT_TOKEN = "me-subject"  # noqa: S105  (a signing purpose, not a secret)
SUBJECT_TOKEN_MAX_AGE = 30 * 60  # seconds
EMAIL_LINK = "me-email-link"
EMAIL_LINK_MAX_AGE = 60 * 60  # the emailed link works for an hour, once


@dataclass(frozen=True)
class Subject:
    email: str | None  # proven
    user: Any | None = None

    @property
    def emails(self) -> set[str]:
        """The addresses this subject may act for: the proven one, never an unproven
        account email (R30)."""
        return {self.email} if self.email else set()

    @property
    def has_identity(self) -> bool:
        return bool(self.email) or self.user is not None

    def orders_q(self) -> Q:
        condition = Q(pk__in=[])
        if self.user is not None:
            condition |= Q(user=self.user)
        if self.email:
            condition |= Q(email=self.email)
        return condition


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def subject_token(email: str) -> str:
    """The short-lived token a guest gets for /api/me/ (30 minutes)."""
    return tokens.sign(SUBJECT_TOKEN, normalise_email(email))


def email_from_subject_token(token: str) -> str | None:
    try:
        return tokens.unsign(SUBJECT_TOKEN, token, max_age=SUBJECT_TOKEN_MAX_AGE)
    except tokens.InvalidLink:
        return None


def email_link_token(email: str) -> str:
    """The one-time link's token: the email and a nonce (only the nonce's hash is stored
    once the link is used)."""
    return tokens.sign(EMAIL_LINK, f"{secrets.token_urlsafe(16)}|{normalise_email(email)}")


def open_email_link(token: str) -> tuple[str, str] | None:
    """(nonce, email) of a valid link, or None."""
    try:
        value = tokens.unsign(EMAIL_LINK, token, max_age=EMAIL_LINK_MAX_AGE)
    except tokens.InvalidLink:
        return None
    nonce, _sep, email = value.partition("|")
    if not nonce or not email:
        return None
    return nonce, email


def subject_for_user(user) -> Subject | None:
    if user is None or not user.is_authenticated:
        return None
    from legal.models import CustomerAccount

    account = CustomerAccount.objects.filter(user=user).first()
    verified = account is not None and account.email_verified_at is not None
    return Subject(email=normalise_email(user.email) if verified else None, user=user)


def subject_for_request(request) -> Subject | None:
    """The subject of an API request: a guest's token (request.auth) or the account."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, Subject):
        return auth
    return subject_for_user(getattr(request, "user", None))
