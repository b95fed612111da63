"""demo_card_payment PAYMENT_INTENT: pay a card PaymentIntent with a Stripe test card, as
the customer's browser would with Stripe.js, to try R11s end to end (test keys only).

    curl -X POST -H "X-Order-Token: $TOKEN" .../api/orders/$NUMBER/card-payment/
    manage.py demo_card_payment pi_..._secret_...      # the client_secret or the pi_ id

Stripe (or localstripe) then sends `payment_intent.succeeded` to /api/webhooks/stripe/
and the order is paid.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders.payments import GatewayError, get_card_gateway

TEST_CARDS = {
    "visa": "pm_card_visa",
    "declined": "pm_card_chargeCustomerFail",
}


class Command(BaseCommand):
    help = "Pay a card PaymentIntent with a Stripe test card (test keys and localstripe only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "payment_intent", metavar="PAYMENT_INTENT", help="pi_... id or its client_secret"
        )
        parser.add_argument(
            "--card",
            choices=sorted(TEST_CARDS),
            default="visa",
            help="visa pays; declined is refused by the card issuer.",
        )

    def handle(self, *args, **options):
        gateway = get_card_gateway()
        if gateway is None:
            raise CommandError(
                "Card payments are off: set STRIPE_API_KEY (and STRIPE_API_BASE for "
                "localstripe), as `make run STRIPE=localstripe` does."
            )
        intent = options["payment_intent"].split("_secret_")[0]
        try:
            status = gateway.confirm_test_payment(
                payment_intent=intent, payment_method=TEST_CARDS[options["card"]]
            )
        except GatewayError as exc:
            raise CommandError(f"Stripe did not take the payment: {exc}") from exc
        self.stdout.write(f"{intent}: {status}")
