"""Input and output shapes of the personal-data API (R30, R31): the form of the input only;
the services decide the rest."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from legal.models import ConsentPurpose, ConsentSource, RequestKind, RequestStatus
from orders.api.serializers import AddressInSerializer, normalise_phone


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()


class RegisteredSerializer(serializers.Serializer):
    """The same for a new address and for one that has an account (no enumeration)."""

    email = serializers.EmailField()
    email_verified = serializers.BooleanField()
    detail = serializers.CharField()


class VerifiedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()
    orders_linked = serializers.IntegerField()


class EmailLinkSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class AcceptedSerializer(serializers.Serializer):
    detail = serializers.CharField()


class SubjectTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="seconds")
    email = serializers.EmailField()


class LinkTokenQuerySerializer(serializers.Serializer):
    token = serializers.CharField(max_length=500)


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField(allow_null=True)
    account = serializers.BooleanField()
    email_verified = serializers.BooleanField()
    orders = serializers.ListField(child=serializers.CharField())
    restricted = serializers.BooleanField()


# --- Consents (R31) ----------------------------------------------------------------------------


class ConsentInSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    text_version = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The version of the consent wording shown (default: the policy version).",
    )


class ConsentPurposeQuerySerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)


class ConsentSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    active = serializers.BooleanField(help_text="Given, confirmed and not withdrawn: it counts.")
    confirmed = serializers.BooleanField(
        help_text="R31, double opt-in: confirmed by the link emailed to the address."
    )
    given_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    source = serializers.ChoiceField(choices=ConsentSource.choices)
    withdrawn_via = serializers.CharField(allow_blank=True)
    policy_version = serializers.CharField(allow_null=True)
    text_version = serializers.CharField(allow_blank=True)


class ConsentsSerializer(serializers.Serializer):
    consents = ConsentSerializer(many=True)
    withdrawn = serializers.ListField(child=serializers.CharField(), required=False)


# --- Data-subject requests (R30) -----------------------------------------------------------------


class RectificationSerializer(serializers.Serializer):
    """Contact data of open orders, validated like checkout (R3, R4)."""

    email = serializers.EmailField(max_length=254, required=False)
    phone = serializers.CharField(max_length=32, required=False)
    address = AddressInSerializer(required=False)

    def validate_phone(self, value: str) -> str:
        return normalise_phone(value)

    def validate_email(self, value: str) -> str:
        return value.strip().lower()

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                _("Say what to correct: email, phone or address."), code="required"
            )
        return attrs


class RequestInSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=RequestKind.choices,
        help_text="erasure, restriction, objection or rectification (access: GET /api/me/data/).",
    )
    details = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    order = serializers.CharField(
        max_length=16, required=False, allow_blank=True, help_text="Rectification: one order."
    )
    changes = RectificationSerializer(required=False)

    def validate(self, attrs):
        if attrs["type"] == RequestKind.ACCESS:
            raise serializers.ValidationError(
                {"type": [_("Your data is at GET /api/me/data/.")]}, code="invalid_choice"
            )
        if attrs["type"] == RequestKind.RECTIFICATION and not attrs.get("changes"):
            raise serializers.ValidationError(
                {"changes": [_("A rectification says what to correct.")]}, code="required"
            )
        return attrs


class RequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=RequestKind.choices, source="kind")
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    received_at = serializers.DateTimeField()
    answer_due = serializers.DateField(help_text="One month after receipt (GDPR Art 12(3)).")
    answered_at = serializers.DateTimeField(allow_null=True)
    answer = serializers.JSONField()


class RecipientSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    recipient_name = serializers.CharField()
    categories = serializers.ListField(child=serializers.CharField())
    purposes = serializers.ListField(child=serializers.CharField())
    first = serializers.DateTimeField()
    last = serializers.DateTimeField()
    count = serializers.IntegerField()


class DisclosureSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    recipient_name = serializers.CharField()
    categories = serializers.ListField(child=serializers.CharField())
    purpose = serializers.CharField()
    disclosed_at = serializers.DateTimeField()
    order = serializers.CharField(allow_null=True)
