"""Terms, customer accounts and the person's own data (R30, R31): thin views over services."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from legal import access, selectors
from legal.api.authentication import HasSubject, SubjectTokenAuthentication
from legal.api.serializers import (
    AcceptedSerializer,
    ConsentInSerializer,
    ConsentPurposeQuerySerializer,
    ConsentsSerializer,
    DisclosureSerializer,
    EmailLinkSerializer,
    LinkTokenQuerySerializer,
    LoginSerializer,
    MeSerializer,
    RecipientSerializer,
    RegisteredSerializer,
    RegisterSerializer,
    RequestInSerializer,
    RequestSerializer,
    SubjectTokenSerializer,
    TokenSerializer,
    VerifiedSerializer,
)
from legal.models import (
    Consent,
    ConsentPurpose,
    ConsentSource,
    CustomerAccount,
    DataSubjectRequest,
    PrivacyPolicyVersion,
    TermsVersion,
)
from legal.services import accounts, consents, requests
from shop.api.throttling import ScopedWindowThrottle
from shop.errors import Refused

PROBLEM = OpenApiResponse(description="application/problem+json")
LINK_TOKEN = OpenApiParameter(
    "token", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, description="From the email."
)


def _document(doc):
    return {
        "version": doc.version,
        "effective_from": timezone.localtime(doc.effective_from).isoformat(),
        "text": {"lv": doc.text_lv, "en": doc.text_en},
    }


_text = inline_serializer(
    "DocumentText", {"lv": serializers.CharField(), "en": serializers.CharField()}
)


class TermsView(APIView):
    """The terms version in force (T1.5) and the privacy policy version in force."""

    @extend_schema(
        responses=inline_serializer(
            "TermsInForce",
            {
                "version": serializers.CharField(),
                "effective_from": serializers.DateTimeField(),
                "text": _text,
                "privacy_policy": inline_serializer(
                    "PrivacyPolicyInForce",
                    {
                        "version": serializers.CharField(),
                        "effective_from": serializers.DateTimeField(),
                        "text": _text,
                    },
                    allow_null=True,
                ),
            },
        )
    )
    def get(self, request):
        terms = TermsVersion.objects.in_force()
        if terms is None:
            raise NotFound("No terms of use are in force yet.")
        policy = PrivacyPolicyVersion.objects.in_force()
        body = _document(terms)
        body["privacy_policy"] = _document(policy) if policy else None
        return Response(body)


class GuessThrottleMixin:
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "token_guess"


# --- Accounts -----------------------------------------------------------------------------------


class RegisterView(GuessThrottleMixin, APIView):
    """A customer account (username = email). Always 202 with the same body, whether or not
    the address already has an account, and no token: log in, then open the link emailed
    to the address (its owner is told instead when the address has an account)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="auth_register",
        request=RegisterSerializer,
        responses={202: RegisteredSerializer, 400: PROBLEM},
    )
    def post(self, request):
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = accounts.register_account(**data.validated_data)
        return Response(
            {
                "email": email,
                "email_verified": False,
                "detail": _(
                    "Check your inbox: log in, then open the link we sent to this address."
                ),
            },
            status=status.HTTP_202_ACCEPTED,
        )


class VerifyEmailView(GuessThrottleMixin, APIView):
    """The link from the registration email, opened while logged in to that account
    (session or `Authorization: Token`): the email is proved, its orders are linked."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="auth_verify_email",
        parameters=[LINK_TOKEN],
        responses={200: VerifiedSerializer, 400: PROBLEM, 422: PROBLEM},
    )
    def get(self, request):
        query = LinkTokenQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user, linked = accounts.verify_email(token=query.validated_data["token"], user=request.user)
        return Response({"email": user.email, "email_verified": True, "orders_linked": linked})


class LoginView(GuessThrottleMixin, APIView):
    """Log in with email and password: an API token (`Authorization: Token`), and a session
    when the request carries Django's CSRF token (a browser on the shop's own pages)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="auth_login",
        request=LoginSerializer,
        responses={200: TokenSerializer, 400: PROBLEM},
    )
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, token = accounts.log_in(**data.validated_data)
        if _csrf_passes(request._request):
            # A session only for a request that passed the CSRF check: another site cannot
            # log a visitor's browser in to an account of its choosing (login CSRF), which
            # would let the visitor prove an address for someone else's account.
            login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
        account = CustomerAccount.objects.filter(user=user).first()
        verified = account is not None and account.email_verified_at is not None
        return Response({"token": token, "email": user.email, "email_verified": verified})


def _csrf_passes(request) -> bool:
    """Django's CSRF check, as DRF's SessionAuthentication runs it."""
    check = CsrfViewMiddleware(lambda _request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {}) is None


class LogoutView(APIView):
    """Log out: the API token and the session end."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(operation_id="auth_logout", request=None, responses={204: None})
    def post(self, request):
        accounts.log_out(user=request.user)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Proving an email (guests) ------------------------------------------------------------------


class EmailLinkView(APIView):
    """Ask for a one-time link to the email on file. Always 202: whether the shop holds
    data for the address is not revealed here."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "email_link"

    @extend_schema(
        operation_id="me_email_link",
        request=EmailLinkSerializer,
        responses={202: AcceptedSerializer, 400: PROBLEM},
    )
    def post(self, request):
        data = EmailLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        accounts.send_email_link(email=data.validated_data["email"])
        return Response(
            {"detail": "If we hold data for this address, a link is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class EmailLinkConfirmView(GuessThrottleMixin, APIView):
    """Open the emailed link (once): a 30-minute token for /api/me/ endpoints, sent as
    `Authorization: Bearer <token>` or `X-Subject-Token: <token>`."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="me_email_link_confirm",
        parameters=[LINK_TOKEN],
        responses={200: SubjectTokenSerializer, 400: PROBLEM, 422: PROBLEM},
    )
    def get(self, request):
        query = LinkTokenQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        email, token = accounts.open_email_link(token=query.validated_data["token"])
        return Response(
            {
                "token": token,
                "token_type": "Bearer",
                "expires_in": access.SUBJECT_TOKEN_MAX_AGE,
                "email": email,
            }
        )


# --- The person's own data ----------------------------------------------------------------------


class MeMixin:
    authentication_classes = [
        SubjectTokenAuthentication,
        *APIView.authentication_classes,
    ]
    permission_classes = [HasSubject]

    def subject(self, request) -> access.Subject:
        return access.subject_for_request(request)


class MeView(MeMixin, APIView):
    """Who you are here: the proven email, the account, your orders."""

    @extend_schema(operation_id="me", responses={200: MeSerializer, 401: PROBLEM})
    def get(self, request):
        subject = self.subject(request)
        return Response(
            {
                "email": subject.email,
                "account": subject.user is not None,
                "email_verified": subject.email is not None,
                "orders": list(selectors.subject_orders(subject).values_list("number", flat=True)),
                "restricted": selectors.is_restricted(subject.email),
            }
        )


class DataExportView(MeMixin, APIView):
    """R30 (GDPR Art 15, 20): everything held about you, as JSON: orders with their lines,
    invoices, payments, refunds and what each app declares (shipments, withdrawals,
    claims), the personal-data ledger, consents, requests, recipients and the emails sent."""

    @extend_schema(operation_id="me_data", responses={200: OpenApiTypes.OBJECT, 401: PROBLEM})
    def get(self, request):
        subject = self.subject(request)
        data = selectors.export_data(subject)
        requests.log_access(subject=subject, orders=len(data["orders"]))
        return Response(data)


class RecipientsView(MeMixin, APIView):
    """IP38, R27: who received your data in a period (both days included)."""

    @extend_schema(
        operation_id="me_recipients",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, OpenApiParameter.QUERY),
            OpenApiParameter("to", OpenApiTypes.DATE, OpenApiParameter.QUERY),
        ],
        responses={
            200: inline_serializer(
                "Recipients",
                {
                    "from": serializers.DateField(allow_null=True),
                    "to": serializers.DateField(allow_null=True),
                    "recipients": RecipientSerializer(many=True),
                    "disclosures": DisclosureSerializer(many=True),
                },
            ),
            400: PROBLEM,
            401: PROBLEM,
        },
    )
    def get(self, request):
        period = {}
        errors = {}
        for name in ("from", "to"):
            raw = request.query_params.get(name)
            if raw in (None, ""):
                period[name] = None
                continue
            try:
                period[name] = serializers.DateField().run_validation(raw)
            except ValidationError as exc:
                errors[name] = exc.detail
        if not errors and period["from"] and period["to"] and period["from"] > period["to"]:
            errors["to"] = ["The period ends before it begins."]
        if errors:
            raise ValidationError(errors)
        found = selectors.recipients(
            self.subject(request), date_from=period["from"], date_to=period["to"]
        )
        return Response(selectors.jsonable(found))


class RequestsView(MeMixin, APIView):
    """R30: erasure, restriction, objection or rectification; each is logged with its
    answer deadline (one month) and answered (in JSON and by email)."""

    @extend_schema(operation_id="me_requests_list", responses={200: RequestSerializer(many=True)})
    def get(self, request):
        subject = self.subject(request)
        mine = DataSubjectRequest.objects.filter(erased_at__isnull=True)
        emails = [e for e in (subject.email,) if e]
        rows = mine.filter(email__in=emails)
        if subject.user is not None:
            rows = rows | mine.filter(user=subject.user)
        return Response(
            RequestSerializer(rows.distinct().order_by("received_at", "pk"), many=True).data
        )

    @extend_schema(
        operation_id="me_requests_create",
        request=RequestInSerializer,
        responses={201: RequestSerializer, 400: PROBLEM, 401: PROBLEM, 422: PROBLEM},
    )
    def post(self, request):
        data = RequestInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        details = {"details": values.get("details", "")}
        if values.get("order"):
            details["order"] = values["order"]
        if values.get("changes"):
            details["changes"] = values["changes"]
        answered = requests.receive_request(
            subject=self.subject(request), kind=values["type"], details=details
        )
        return Response(RequestSerializer(answered).data, status=status.HTTP_201_CREATED)


# --- Consents (R31) -------------------------------------------------------------------------------


def _consent_rows(subject: access.Subject):
    """R30: consents under the proven email, and those the account itself gave; never
    those of an address the account has not proved."""
    rows = Consent.objects.filter(erased_at__isnull=True)
    mine = rows.filter(email__in=subject.emails) if subject.emails else rows.none()
    if subject.user is not None:
        mine = mine | rows.filter(user=subject.user)
    return mine.distinct().select_related("policy_version").order_by("given_at", "pk")


def _consent_data(consent: Consent) -> dict:
    return {
        "purpose": consent.purpose,
        "active": consent.withdrawn_at is None and consent.confirmed_at is not None,
        "confirmed": consent.confirmed_at is not None,
        "given_at": consent.given_at,
        "withdrawn_at": consent.withdrawn_at,
        "source": consent.source,
        "withdrawn_via": consent.withdrawn_via,
        "policy_version": consent.policy_version.version if consent.policy_version else None,
        "text_version": consent.text_version,
    }


def _consents_response(subject, *, withdrawn=None, status_code=200) -> Response:
    body = {"consents": [_consent_data(c) for c in _consent_rows(subject)]}
    if withdrawn is not None:
        body["withdrawn"] = withdrawn
    return Response(ConsentsSerializer(body).data, status=status_code)


class ConsentsView(MeMixin, APIView):
    """R31: consents per purpose. Giving records the privacy-policy version in force, the
    time and the source; withdrawing is as easy and takes effect at once."""

    @extend_schema(operation_id="me_consents_list", responses={200: ConsentsSerializer})
    def get(self, request):
        return _consents_response(self.subject(request))

    @extend_schema(
        operation_id="me_consents_give",
        request=ConsentInSerializer,
        responses={200: ConsentsSerializer, 201: ConsentsSerializer, 400: PROBLEM, 422: PROBLEM},
    )
    def post(self, request):
        subject = self.subject(request)
        data = ConsentInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not subject.email:
            raise Refused("email_not_verified", "Confirm your email before consenting to messages.")
        _consent, created = consents.give_consent(
            email=subject.email,
            purpose=data.validated_data["purpose"],
            source=ConsentSource.API,
            user=subject.user,
            text_version=data.validated_data.get("text_version", ""),
            confirmed=True,  # R31: given under the proven email
        )
        return _consents_response(subject, status_code=201 if created else 200)

    @extend_schema(
        operation_id="me_consents_withdraw",
        parameters=[
            OpenApiParameter(
                "purpose",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                enum=ConsentPurpose.values,
            )
        ],
        responses={200: ConsentsSerializer, 400: PROBLEM},
    )
    def delete(self, request):
        query = ConsentPurposeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return _withdraw(self, request, query.validated_data["purpose"])


class ConsentDetailView(MeMixin, APIView):
    """R31: withdraw one purpose: `DELETE /api/me/consents/marketing_email/`."""

    @extend_schema(
        operation_id="me_consent_withdraw",
        responses={200: ConsentsSerializer, 400: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, purpose: str):
        query = ConsentPurposeQuerySerializer(data={"purpose": purpose})
        if not query.is_valid():
            raise NotFound("No such purpose.")
        return _withdraw(self, request, purpose)


def _withdraw(view, request, purpose: str) -> Response:
    """R31: withdraw for the proven email, and the consents the account itself gave; an
    account that has not proved an address touches no one else's consent under it."""
    subject = view.subject(request)
    withdrawn = []
    for email in sorted(subject.emails):
        withdrawn += consents.withdraw_consents(
            email=email, purposes=[purpose], via=ConsentSource.API
        )
    if subject.user is not None:
        withdrawn += consents.withdraw_consents(
            user=subject.user, purposes=[purpose], via=ConsentSource.API
        )
    return _consents_response(subject, withdrawn=sorted({c.purpose for c in withdrawn}))
