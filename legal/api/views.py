from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from legal.models import PrivacyPolicyVersion, TermsVersion


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
