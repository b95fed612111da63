"""Customer accounts and one-time email links (R30: identity is proved by the logged-in
account or a one-time link sent to the email on file).

- `register_account`: an auth.User (username = email) and its `CustomerAccount`; the email
  is proved through the link emailed at once (`verify_email`), which also links the orders
  placed with that email to the account.
- `send_email_link`: a guest asks for a link; it is sent only when the shop holds data for
  the email, and the API answers the same either way (no account enumeration).
- `open_email_link`: the link works once, for an hour, and gives a 30-minute token for
  /api/me/.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from legal import access
from legal.models import Consent, CustomerAccount, DataSubjectRequest, UsedLink
from shop import tokens
from shop.api.throttling import allow_for_address
from shop.errors import Conflict, InvalidInput, Refused
from shop.mail import queue_email

ACCOUNT_VERIFY = "account-verify"
ACCOUNT_VERIFY_MAX_AGE = 7 * 24 * 3600


def _api_url(name: str, token: str) -> str:
    return f"{settings.SITE_URL}{reverse(name)}?{urlencode({'token': token})}"


def register_account(
    *, email: str, password: str, first_name: str = "", last_name: str = ""
) -> tuple[object, str]:
    """A new customer account; returns (user, API token). Emails the verification link."""
    User = get_user_model()
    email = access.normalise_email(email)
    candidate = User(username=email, email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(
            [{"field": "password", "code": "weak_password", "message": m} for m in exc.messages]
        ) from exc
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=email).exists():
                raise Conflict("account_exists", "An account with this email already exists.")
            user = User.objects.create_user(
                username=email,
                email=email,
                password=password,
                first_name=first_name[:150],
                last_name=last_name[:150],
            )
            CustomerAccount.objects.create(user=user)
            token = Token.objects.create(user=user)
            queue_email(
                to=email,
                template="account_verify",
                context={
                    "verify_url": _api_url(
                        "legal-api:verify-email", tokens.sign(ACCOUNT_VERIFY, str(user.pk))
                    ),
                    "shop": settings.SHOP,
                },
            )
    except IntegrityError as exc:  # a concurrent registration of the same email
        raise Conflict("account_exists", "An account with this email already exists.") from exc
    return user, token.key


def verify_email(*, token: str, at: datetime | None = None):
    """The link from the registration email: the account's email is proved, and the
    orders placed with it belong to the account from now on."""
    from orders.models import Order

    try:
        user_id = tokens.unsign(ACCOUNT_VERIFY, token, max_age=ACCOUNT_VERIFY_MAX_AGE)
    except tokens.InvalidLink as exc:
        raise Refused("invalid_link", "The link is invalid or has expired.") from exc
    User = get_user_model()
    with transaction.atomic():
        user = (
            User.objects.filter(pk=int(user_id), is_active=True).first()
            if user_id.isdigit()
            else None
        )
        if user is None:
            raise Refused("invalid_link", "The link is invalid or has expired.")
        account, _ = CustomerAccount.objects.select_for_update().get_or_create(user=user)
        if account.email_verified_at is None:
            account.email_verified_at = at or timezone.now()
            account.save(update_fields=["email_verified_at"])
        linked = Order.objects.filter(
            user__isnull=True, email=access.normalise_email(user.email)
        ).update(user=user)
    return user, linked


def log_in(*, email: str, password: str):
    """(user, API token) for a correct email and password; refused otherwise."""
    user = authenticate(username=access.normalise_email(email), password=password)
    if user is None or not user.is_active:
        raise InvalidInput.single(
            "password", "invalid_credentials", "The email or the password is not right."
        )
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def log_out(*, user) -> None:
    Token.objects.filter(user=user).delete()


def _holds_data_for(email: str) -> bool:
    from orders.models import Order

    User = get_user_model()
    return (
        Order.objects.filter(email=email).exists()
        or Consent.objects.filter(email=email, erased_at__isnull=True).exists()
        or User.objects.filter(email__iexact=email, is_active=True).exists()
        or DataSubjectRequest.objects.filter(email=email, erased_at__isnull=True).exists()
    )


def send_email_link(*, email: str) -> bool:
    """Email the one-time link if the shop holds data for `email`; True when sent.

    The caller answers the same either way (no enumeration)."""
    email = access.normalise_email(email)
    if not allow_for_address("email-link", email, settings.EMAIL_LINK_PER_ADDRESS_RATE):
        return False  # past the per-address limit: nothing sent, the same answer
    if not email or not _holds_data_for(email):
        return False
    queue_email(
        to=email,
        template="email_link",
        context={
            "link_url": _api_url("legal-api:email-link-confirm", access.email_link_token(email)),
            "minutes": access.EMAIL_LINK_MAX_AGE // 60,
            "shop": settings.SHOP,
        },
    )
    return True


def open_email_link(*, token: str) -> tuple[str, str]:
    """(email, 30-minute subject token) for a valid, unused link; the link is used up."""
    opened = access.open_email_link(token)
    if opened is None:
        raise Refused("invalid_link", "The link is invalid or has expired.")
    nonce, email = opened
    try:
        with transaction.atomic():
            UsedLink.objects.create(nonce_hash=tokens.hash_secret(nonce))
    except IntegrityError as exc:
        raise Refused("link_used", "This link has already been used; ask for a new one.") from exc
    return email, access.subject_token(email)


def forget_used_links(*, now: datetime | None = None) -> int:
    """Used-link hashes are needed only while the link could still be opened."""
    from datetime import timedelta

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=access.EMAIL_LINK_MAX_AGE + 3600)
    deleted, _ = UsedLink.objects.filter(used_at__lt=cutoff).delete()
    return deleted
