"""Customer accounts and one-time email links (R30: identity is proved by the logged-in
account or a one-time link sent to the email on file).

- `register_account`: an auth.User (username = email) and its `CustomerAccount`. The answer
  is the same whether or not the address already has an account (no enumeration) and
  carries no token: the owner of an existing verified account is emailed ("someone tried
  to register with your address") instead; a pending (unverified) account is taken over
  by the newest registration (its password replaced, its tokens revoked), because nobody
  has proved the address yet.
- `verify_email`: the link emailed at registration, opened while logged in to that very
  account: only someone who holds both the password and the mailbox proves the address.
  Only then are the orders placed with the email linked to the account; until then the
  account acts for nothing tied to the email (legal.access).
- `send_email_link`: a guest asks for a link; it is sent only when the shop holds data for
  the email, and the API answers the same either way (no account enumeration). The
  decision runs after the answer, through the outbox, so the answer takes as long whether
  or not the shop holds data.
- `open_email_link`: the link works once, for an hour, and gives a 30-minute token for
  /api/me/.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from legal import access
from legal.models import Consent, CustomerAccount, DataSubjectRequest, UsedLink
from shop import outbox, tokens
from shop.api.throttling import allow_for_address
from shop.errors import InvalidInput, Refused
from shop.mail import queue_email

ACCOUNT_VERIFY = "account-verify"
ACCOUNT_VERIFY_MAX_AGE = 7 * 24 * 3600


def _api_url(name: str, token: str) -> str:
    return f"{settings.SITE_URL}{reverse(name)}?{urlencode({'token': token})}"


def _verify_value(user) -> str:
    """What the verification link signs: the account and a fingerprint of its email and
    password hash (never the address itself, which would end up in access logs), so a link
    dies when the address or the pending password changes."""
    email = access.normalise_email(user.email)
    return f"{user.pk}|{tokens.hash_secret(f'{email}|{user.password}')[:32]}"


def _queue_verification(user) -> None:
    queue_email(
        to=access.normalise_email(user.email),
        template="account_verify",
        context={
            "verify_url": _api_url(
                "legal-api:verify-email", tokens.sign(ACCOUNT_VERIFY, _verify_value(user))
            ),
            "shop": settings.SHOP,
        },
    )


def register_account(
    *, email: str, password: str, first_name: str = "", last_name: str = ""
) -> str:
    """Register `email`; returns the normalised email. The same answer whether or not the
    address has an account (R30: no enumeration, no token before the proof):

    - new address: the account is created, the verification link emailed;
    - an account whose email is proven: nothing changes, the owner is emailed that
      someone tried to register with the address;
    - an account still unverified: nobody has proved the address, so the newest
      registration takes it over (password and names replaced, API tokens and sessions
      revoked) and a fresh link is emailed; the older links no longer work.
    """
    User = get_user_model()
    email = access.normalise_email(email)
    candidate = User(username=email, email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(
            [{"field": "password", "code": "weak_password", "message": m} for m in exc.messages]
        ) from exc
    hashed = make_password(password)  # the same work whichever branch follows
    for _attempt in range(2):  # a concurrent registration of the same email: read it again
        try:
            with transaction.atomic():
                _register(email, hashed, first_name[:150], last_name[:150])
            return email
        except IntegrityError:
            continue
    return email  # the other registration won; its owner gets its own email


def _register(email: str, hashed: str, first_name: str, last_name: str) -> None:
    User = get_user_model()
    user = User.objects.select_for_update().filter(username__iexact=email).first()
    if user is None:
        user = User.objects.create(
            username=email,
            email=email,
            password=hashed,
            first_name=first_name,
            last_name=last_name,
        )
        CustomerAccount.objects.create(user=user)
        _queue_verification(user)
        return
    account = CustomerAccount.objects.filter(user=user).first()
    pending = (
        account is not None
        and account.email_verified_at is None
        and user.is_active
        and not (user.is_staff or user.is_superuser)
    )
    if not pending:  # a proven customer, or any other user (staff): never touched here
        queue_email(
            to=email,
            template="account_exists",
            context={
                "login_url": f"{settings.SITE_URL}{reverse('legal-api:login')}",
                "email_link_url": f"{settings.SITE_URL}{reverse('legal-api:email-link')}",
                "shop": settings.SHOP,
            },
        )
        return
    # Pending: nobody proved the address; the newest registration replaces the old one.
    user.password = hashed
    user.first_name, user.last_name = first_name, last_name
    user.save(update_fields=["password", "first_name", "last_name"])
    Token.objects.filter(user=user).delete()  # sessions end with the password hash
    _queue_verification(user)


def verify_email(*, token: str, user, at: datetime | None = None):
    """The link from the registration email, opened by the logged-in account it was sent
    for: the account's email is proved, and the orders placed with it belong to the
    account from now on (R30). Someone who has the link but not the account, or the
    account but not the link, proves nothing."""
    from orders.models import Order

    invalid = Refused("invalid_link", "The link is invalid or has expired.")
    try:
        value = tokens.unsign(ACCOUNT_VERIFY, token, max_age=ACCOUNT_VERIFY_MAX_AGE)
    except tokens.InvalidLink as exc:
        raise invalid from exc
    if user is None or not user.is_authenticated:
        raise Refused("login_required", "Log in to the account first, then open the link.")
    User = get_user_model()
    with transaction.atomic():
        current = User.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
        if current is None or value != _verify_value(current):
            raise invalid
        account, _ = CustomerAccount.objects.select_for_update().get_or_create(user=current)
        if account.email_verified_at is None:
            account.email_verified_at = at or timezone.now()
            account.save(update_fields=["email_verified_at"])
        linked = Order.objects.filter(
            user__isnull=True, email=access.normalise_email(current.email)
        ).update(user=current)
    return current, linked


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


EMAIL_LINK_TOPIC = "legal.email_link"


def send_email_link(*, email: str) -> bool:
    """Ask for the one-time link for `email`; True when the request was taken.

    Whether the shop holds data for the address (and so whether a link is sent) is
    decided after the answer, by `decide_email_link` through the outbox: the caller
    answers the same, in the same time, either way (no enumeration)."""
    email = access.normalise_email(email)
    if not email:
        return False
    if not allow_for_address("email-link", email, settings.EMAIL_LINK_PER_ADDRESS_RATE):
        return False  # past the per-address limit: nothing sent, the same answer
    with transaction.atomic():
        outbox.publish(EMAIL_LINK_TOPIC, {"email": email})
    return True


@outbox.handler(EMAIL_LINK_TOPIC)
def decide_email_link(payload: dict, message) -> None:
    """Email the link if the shop holds data for the address; the request row then keeps
    no address."""
    email = access.normalise_email(payload.get("email", ""))
    if email and _holds_data_for(email):
        queue_email(
            to=email,
            template="email_link",
            context={
                "link_url": _api_url(
                    "legal-api:email-link-confirm", access.email_link_token(email)
                ),
                "minutes": access.EMAIL_LINK_MAX_AGE // 60,
                "shop": settings.SHOP,
            },
        )
    message.payload = {"erased": True}
    message.save(update_fields=["payload"])


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
