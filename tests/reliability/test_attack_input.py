"""Issue 14, items 4 (the broker half) and 5: no input and no broker outage makes the
shop answer 500 or lose a payment.

Each test is an attack (or an outage) that the code before this change answered with a
500, a lost payment, a silent rounding or an accepted hostile file.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import stripe
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from delivery.models import CourierEvent, Shipment
from orders.models import (
    BankEntry,
    BankStatement,
    OrderStatus,
    Payment,
    Refund,
    RefundReason,
    RefundStatus,
)
from orders.services import bank
from orders.services.refunds import approve_refunds, create_refund
from orders.services.sepa import OUTSIDE_SEPA_NOTE, export_sepa_refunds
from returns.models import Withdrawal
from returns.models.claims import ClaimPhoto
from returns.withdrawals import services as withdrawal_services
from returns.withdrawals.services import RequestedLine
from shop import outbox
from shop.celery import app as celery_app
from shop.errors import InvalidInput
from shop.models import OutboxMessage
from tests.delivery.conftest import WEBHOOK_SECRET, shipped_order, signed_headers
from tests.orders.test_bank_statements import NOW, Entry, camt_xml, new_order, reload
from tests.orders.test_sepa_export import paid_order as sepa_paid_order
from tests.returns import withdrawal_support
from tests.returns.claims_support import delivered_order

pytestmark = pytest.mark.django_db

PROBLEM_JSON = "application/problem+json"
UPLOAD_URL = reverse("admin:orders_bankstatement_upload")
STATEMENTS_URL = reverse("admin:orders_bankstatement_changelist")
DEAD_BROKER = "redis://127.0.0.1:1/0"  # a closed port: every publish is refused
SAUDI_IBAN = "SA0380000000608010167519"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith(PROBLEM_JSON)
    return response.json()


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


# --- Item 4: a bank statement uploaded while the broker is down ----------------------------


@pytest.fixture
def broker_down():
    """The web process's Celery points at a closed port until `back()` is called; then
    tasks run in-process again (the test suite's stand-in for a live worker)."""
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.task_publish_retry)

    def reset_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    conf.task_always_eager = False
    conf.broker_url = DEAD_BROKER
    conf.task_publish_retry = False
    reset_pools()

    class Broker:
        @staticmethod
        def back() -> None:
            conf.task_always_eager, conf.broker_url, conf.task_publish_retry = saved
            reset_pools()

    yield Broker
    Broker.back()


def upload_statement(client, content: bytes, name: str = "march.xml"):
    """The admin upload, in English (the admin is Latvian by default)."""
    return client.post(
        UPLOAD_URL,
        {"file": SimpleUploadedFile(name, content, "application/xml")},
        HTTP_ACCEPT_LANGUAGE="en",
    )


@pytest.fixture
def unpaid_statement():
    with time_machine.travel(NOW, tick=False):
        order, invoice_number = new_order()
    return order, camt_xml([Entry(str(order.total), remittance=invoice_number)])


def test_attack_broker_down_upload_is_stored_then_imported_by_the_relay(
    superuser_client, broker_down, unpaid_statement, django_capture_on_commit_callbacks
):
    """Attack: R11. A statement uploaded while the broker is down is stored (no 500), a
    re-upload is not refused as "already imported", and the relay imports it once the
    broker is back: the payment is recorded once."""
    order, content = unpaid_statement
    # The real clock while the broker is down: kombu's retry loop needs time to pass.
    with django_capture_on_commit_callbacks(execute=True):
        response = upload_statement(superuser_client, content)
    assert response.status_code == 302
    statement = BankStatement.objects.get()
    assert statement.status == BankStatement.Status.PENDING
    assert not Payment.objects.exists()
    waiting = OutboxMessage.objects.get(topic=bank.IMPORT_TOPIC, delivered_at__isnull=True)
    assert waiting.payload == {"statement_id": statement.pk}

    with django_capture_on_commit_callbacks(execute=True):
        again = upload_statement(superuser_client, content)
    assert again.status_code == 302
    page = superuser_client.get(again["Location"], HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert "imported before" not in text
    assert "waits for the importer" in text
    assert BankStatement.objects.count() == 1

    broker_down.back()
    with (
        time_machine.travel(datetime.now(UTC) + timedelta(minutes=2), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert outbox.relay() >= 1
    statement.refresh_from_db()
    assert statement.status == BankStatement.Status.DONE
    assert statement.matched_entries == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert reload(order).status == OrderStatus.PAID
    assert not OutboxMessage.objects.filter(
        topic=bank.IMPORT_TOPIC, delivered_at__isnull=True
    ).exists()


def test_attack_a_stuck_statement_is_retried_from_the_admin(
    superuser_client, broker_down, unpaid_statement, django_capture_on_commit_callbacks
):
    """Attack: R11. Staff retry a statement stuck in `pending` with the admin action
    "Retry the import"; the payment is then recorded."""
    order, content = unpaid_statement
    with django_capture_on_commit_callbacks(execute=True):
        upload_statement(superuser_client, content)
    statement = BankStatement.objects.get()
    # The outbox gave up on it (say the outage outlasted every attempt).
    OutboxMessage.objects.filter(topic=bank.IMPORT_TOPIC).update(attempts=outbox.MAX_ATTEMPTS)
    broker_down.back()
    outbox.relay()
    statement.refresh_from_db()
    assert statement.status == BankStatement.Status.PENDING  # the relay no longer tries
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            STATEMENTS_URL,
            {"action": "retry_import", ACTION_CHECKBOX_NAME: [statement.pk]},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 302
    statement.refresh_from_db()
    assert statement.status == BankStatement.Status.DONE
    assert Payment.objects.filter(order=order).count() == 1
    assert reload(order).status == OrderStatus.PAID


def test_attack_the_command_imports_a_statement_stuck_by_the_broker(
    superuser_client, broker_down, unpaid_statement, tmp_path, django_capture_on_commit_callbacks
):
    """Attack: R11. `import_bank_statement` on the same file imports the stuck statement
    now instead of answering "already imported"."""
    order, content = unpaid_statement
    with django_capture_on_commit_callbacks(execute=True):
        upload_statement(superuser_client, content)
    broker_down.back()
    path = tmp_path / "march.xml"
    path.write_bytes(content)
    out = io.StringIO()
    call_command("import_bank_statement", str(path), stdout=out)
    assert "already imported" not in out.getvalue()
    assert BankStatement.objects.get().status == BankStatement.Status.DONE
    assert reload(order).status == OrderStatus.PAID


# --- Item 5: camt amounts --------------------------------------------------------------------


def test_attack_camt_hostile_amounts_are_refused_per_entry_and_the_rest_imports(
    tmp_path, superuser_client
):
    """Attack: R11. `1E+30` (a crash before), `10.005` (silently rounded before) and
    Arabic-Indic digits (read before) are refused entry by entry, with the reason shown;
    the good credit of the same file pays its order."""
    with time_machine.travel(NOW, tick=False):
        order, invoice_number = new_order()
        content = camt_xml(
            [
                Entry("1E+30", reference="HUGE"),
                Entry("10.005", reference="ROUNDED"),
                Entry("\u0661\u0662.\u0660\u0660", reference="ARABIC"),
                Entry(str(order.total), reference="GOOD", remittance=invoice_number),
            ]
        )
        path = tmp_path / "hostile.xml"
        path.write_bytes(content)
        out, err = io.StringIO(), io.StringIO()
        call_command("import_bank_statement", str(path), stdout=out, stderr=err)
    statement = BankStatement.objects.get()
    refused = {entry["reference"]: entry["reason"] for entry in statement.refused_entries}
    assert set(refused) == {"HUGE", "ROUNDED", "ARABIC"}
    assert "more than two decimals" in refused["ROUNDED"]
    assert "digits 0-9" in refused["ARABIC"] and "digits 0-9" in refused["HUGE"]
    report = err.getvalue()
    assert "HUGE" in report and "ROUNDED" in report and "ARABIC" in report
    assert "3 refused" in out.getvalue()
    assert list(BankEntry.objects.values_list("amount", flat=True)) == [order.total]
    assert not BankEntry.objects.filter(amount=Decimal("10.01")).exists()
    assert reload(order).status == OrderStatus.PAID
    page = superuser_client.get(
        reverse("admin:orders_bankstatement_progress", args=[statement.pk]),
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "refused and not imported" in page and "ROUNDED" in page


# --- Item 5: JSON depth before parsing -------------------------------------------------------


def test_attack_deeply_nested_json_on_checkout_is_a_400(api_client):
    """Attack: nested JSON on the unauthenticated checkout was a 500 (RecursionError)."""
    body = '{"customer": ' + deep(50_000) + "}"
    response = api_client.post("/api/orders/", data=body, content_type="application/json")
    problem = assert_problem(response, 400)
    assert "deeper" in problem["detail"]


def test_attack_deeply_nested_claim_lines_are_a_400(api_client):
    """Attack: R23. Nested JSON in a claim's `lines`, as a JSON body and as the text
    field of a multipart claim, is a 400, not a 500."""
    order, token = delivered_order()
    url = reverse("order-claim-create", kwargs={"number": order.number})
    body = '{"lines": ' + deep(50_000) + ', "description": "x", "remedy": "repair"}'
    response = api_client.post(
        url, data=body, content_type="application/json", HTTP_X_ORDER_TOKEN=token
    )
    assert_problem(response, 400)
    multipart = api_client.post(
        url,
        {"lines": deep(50_000), "description": "broken", "remedy": "repair"},
        format="multipart",
        HTTP_X_ORDER_TOKEN=token,
    )
    assert_problem(multipart, 400)
    assert not order.claims.exists()


def test_attack_nul_and_huge_numbers_in_api_json_are_a_400(api_client):
    """Attack: a NUL character, a 5,000-digit integer and 1e999 in an API body (DRF's
    serializers refused these before too; now the parser does, for every field)."""
    for body in (
        '{"customer": {"email": "a\\u0000@example.lv"}}',
        '{"lines": [{"sku": "KEU-001", "quantity": ' + "9" * 5000 + "}]}",
        '{"lines": [{"sku": "KEU-001", "quantity": 1e999}]}',
    ):
        response = api_client.post("/api/orders/", data=body, content_type="application/json")
        assert_problem(response, 400)


# --- Item 5: the courier and Stripe webhooks -------------------------------------------------


@pytest.fixture
def courier(settings):
    settings.OMNIVA_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.COURIER_EVENT_MAX_AGE_DAYS = 30
    settings.COURIER_EVENT_MAX_AHEAD_DAYS = 1
    return shipped_order("CE111111111LV")


def post_signed(client, body: bytes):
    return client.post(
        "/api/webhooks/omniva/",
        data=body,
        content_type="application/json",
        **signed_headers(body),
    )


def event(**fields) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    base = {
        "event_id": "evt-hostile",
        "barcode": "CE111111111LV",
        "event": "delivered",
        "occurred_at": now,
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps(event(note="a\u0000b")).encode(), id="nul-in-extra-field"),
        pytest.param(json.dumps(event(location="Rīga\u0000")).encode(), id="nul-in-location"),
        pytest.param(
            json.dumps(event())[:-1].encode() + b', "n": ' + b"9" * 5000 + b"}", id="huge-int"
        ),
        pytest.param(json.dumps(event())[:-1].encode() + b', "n": 1e999}', id="infinite-float"),
        pytest.param(
            json.dumps(event())[:-1].encode() + b', "n": ' + deep(50_000).encode() + b"}",
            id="deep-nesting",
        ),
        pytest.param(json.dumps(event(occurred_at="2001-01-01T12:00:00Z")).encode(), id="2001"),
        pytest.param(json.dumps(event(occurred_at="2099-01-01T12:00:00Z")).encode(), id="2099"),
        pytest.param(json.dumps(event(location="x" * 5000)).encode(), id="long-string"),
    ],
)
def test_attack_signed_hostile_courier_events_are_a_400_and_change_nothing(client, courier, body):
    """Attack: R14b. A correctly signed courier body with NUL, huge numbers, deep nesting
    or an event time of 2001 / 2099 is refused with 400 problem+json; nothing is stored
    and the parcel does not move."""
    before = Shipment.objects.get(barcode="CE111111111LV").status
    response = post_signed(client, body)
    assert_problem(response, 400)
    assert not CourierEvent.objects.exists()
    assert Shipment.objects.get(barcode="CE111111111LV").status == before
    assert reload(courier).status != OrderStatus.DELIVERED


def test_a_sane_courier_event_still_applies(client, courier):
    """R14b: an event of now, signed, still delivers the parcel."""
    response = post_signed(client, json.dumps(event()).encode())
    assert response.status_code == 200, response.content
    assert reload(courier).status == OrderStatus.DELIVERED


def test_attack_signed_hostile_stripe_bodies_are_a_400(client, settings):
    """Attack: a Stripe-signed body nested too deep, with a NUL or a huge number."""
    settings.STRIPE_WEBHOOK_SECRET = "whsec_hostile"
    base = '{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": '
    for payload in (
        base + '{"id": "pi_1", "x": ' + deep(50_000) + "}}}",
        base + '{"id": "pi_\\u0000"}}}',
        base + '{"id": "pi_1", "amount": ' + "9" * 5000 + "}}}",
    ):
        header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_hostile")
        response = client.post(
            "/api/webhooks/stripe/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )
        assert_problem(response, 400)


# --- Item 5: uploads -------------------------------------------------------------------------

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
PDF_WITH_JS = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"3 0 obj << /S /JavaScript /JS (app.alert(1)) >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def png_polyglot() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, format="PNG")
    return buffer.getvalue() + HTML


def test_attack_polyglot_claim_photo_is_re_encoded_and_served_as_attachment(api_client, client):
    """Attack: R23. A PNG with HTML appended is stored as a clean re-encoded PNG (the
    HTML is gone); a PDF with JavaScript is refused; downloads are attachments."""
    order, token = delivered_order()
    url = reverse("order-claim-create", kwargs={"number": order.number})
    body = {
        "lines": json.dumps([{"sku": "KEU-001", "quantity": 1}]),
        "description": "The pump is broken.",
        "discovered_on": str(datetime.now(UTC).date()),
        "remedy": "replacement",
    }
    refused = api_client.post(
        url,
        {**body, "photos": [SimpleUploadedFile("x.pdf", PDF_WITH_JS, "application/pdf")]},
        format="multipart",
        HTTP_X_ORDER_TOKEN=token,
    )
    problem = assert_problem(refused, 400)
    assert problem["errors"][0]["code"] == "active_content"
    response = api_client.post(
        url,
        {**body, "photos": [SimpleUploadedFile("x.png", png_polyglot(), "image/png")]},
        format="multipart",
        HTTP_X_ORDER_TOKEN=token,
    )
    assert response.status_code == 201, response.content
    photo = ClaimPhoto.objects.get()
    stored = photo.file.read()
    assert stored.startswith(b"\x89PNG") and b"<script" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (16, 16)

    staff = User.objects.create_superuser("boss", password="pw")
    client.force_login(staff)
    download = client.get(reverse("admin:returns_claim_photo", args=[photo.claim_id, photo.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def withdrawal():
    order, _token = withdrawal_support.delivered_order()
    return withdrawal_services.receive_withdrawal(
        order_id=order.pk,
        lines=[RequestedLine("KEU-001", 1)],
        iban=withdrawal_support.IBAN,
        account_holder=withdrawal_support.HOLDER,
        reason="",
        channel="api",
    ).withdrawal


def test_attack_proof_of_dispatch_polyglots_are_neutralised_or_refused(withdrawal):
    """Attack: R20, R21. A PDF with JavaScript is refused as proof; a PNG+HTML polyglot is
    kept only as its re-encoded pixels."""
    with pytest.raises(InvalidInput) as refused:
        withdrawal_services.attach_proof_of_dispatch(
            withdrawal_id=withdrawal.pk,
            upload=SimpleUploadedFile("kvits.pdf", PDF_WITH_JS, "application/pdf"),
        )
    assert refused.value.errors[0]["code"] == "active_content"
    withdrawal_services.attach_proof_of_dispatch(
        withdrawal_id=withdrawal.pk,
        upload=SimpleUploadedFile("kvits.png", png_polyglot(), "image/png"),
    )
    stored = Withdrawal.objects.get(pk=withdrawal.pk).proof_of_dispatch.read()
    assert stored.startswith(b"\x89PNG") and b"<script" not in stored


def test_attack_staff_without_permission_cannot_download_a_proof(withdrawal, client):
    """Attack: R21. A staff user with no permission got any proof of dispatch; now 403.
    With the view permission the download is an attachment with nosniff."""
    withdrawal_services.attach_proof_of_dispatch(
        withdrawal_id=withdrawal.pk,
        upload=SimpleUploadedFile("kvits.png", png_polyglot(), "image/png"),
    )
    url = reverse("admin:returns_withdrawal_proof", args=[withdrawal.pk])
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(nobody)
    assert client.get(url).status_code == 403
    viewer = withdrawal_support.make_staff("returns.view_withdrawal", username="viewer")
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


# --- Item 5: SEPA refunds only to SEPA countries ---------------------------------------------


def test_attack_saudi_iban_is_refused_for_a_refund_and_never_exported():
    """Attack: R17, R22. A Saudi IBAN (valid MOD-97, outside SEPA) is refused where a
    refund account is given; one already stored is skipped at export with a note staff
    see, and never appears in the SEPA file."""
    order_id = sepa_paid_order("30.00").pk
    with pytest.raises(InvalidInput) as refused:
        create_refund(
            order_id=order_id,
            amount=Decimal("1.00"),
            reason=RefundReason.STAFF,
            iban=SAUDI_IBAN,
            account_holder="Attacker",
        )
    assert refused.value.errors[0]["code"] == "iban_not_sepa"

    good = create_refund(
        order_id=order_id,
        amount=Decimal("1.00"),
        reason=RefundReason.STAFF,
        iban=withdrawal_support.IBAN,
        account_holder="Anna",
    )
    legacy = create_refund(
        order_id=order_id,
        amount=Decimal("2.00"),
        reason=RefundReason.STAFF,
        iban=withdrawal_support.IBAN,
        account_holder="Anna",
    )
    Refund.objects.filter(pk=legacy.pk).update(iban=SAUDI_IBAN)  # stored before this check
    approver = User.objects.create_user("approver", is_staff=True)
    approve_refunds(refund_ids=[good.pk, legacy.pk], by=approver)
    export = export_sepa_refunds(by=approver)
    assert export is not None and export.count == 1
    assert SAUDI_IBAN not in export.content and "SA03" not in export.content
    legacy.refresh_from_db()
    assert legacy.status == RefundStatus.APPROVED
    assert OUTSIDE_SEPA_NOTE in legacy.note


# --- Item 5: problem+json for every /api/ answer, 403 included -------------------------------


def test_attack_csrf_refusal_under_api_is_problem_json():
    """Attack: a cross-site POST under /api/ got Django's HTML 403 page."""
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/no-such-thing/", data="{}", content_type="application/json")
    problem = assert_problem(response, 403)
    assert problem["code"] == "csrf_failed"


def test_html_pages_keep_the_html_403():
    """Outside /api/ Django's own CSRF page still answers."""
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
