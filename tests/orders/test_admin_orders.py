"""The back office for a clerk who never uses a shell: orders, the refund queue (R21) and
SEPA files, through the Django admin with the test client."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import time_machine
import xmlschema
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.models import (
    CancelReason,
    Invoice,
    Order,
    OrderStatus,
    PaymentMethod,
    Refund,
    RefundReason,
    RefundStatus,
    SepaExport,
)
from orders.services import invoicing_pdf
from orders.services.payments import record_payment
from orders.services.refunds import approve_refunds, create_refund
from orders.services.sepa import export_sepa_refunds
from tests.factories import place_test_order

LV_IBAN = "LV80BANK0000435195001"
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
REFUNDS_URL = reverse("admin:orders_refund_changelist")
ORDERS_URL = reverse("admin:orders_order_changelist")

CLERK_PERMISSIONS = [
    "view_order",
    "view_orderline",
    "view_invoice",
    "view_payment",
    "view_refund",
    "change_refund",
    "view_sepaexport",
]


def make_staff(username: str, *extra: str) -> User:
    user = User.objects.create_user(username=username, is_staff=True)
    codenames = [*CLERK_PERMISSIONS, *extra]
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
    )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def clerk(db):
    return make_staff("clerk")


@pytest.fixture
def approver(db):
    return make_staff("approver", "approve_refund")


def paid_order(
    *, email: str = "anna@example.lv", sku: str = "KEU-001", quantity: int = 1, paid: bool = True
) -> Order:
    order = place_test_order([(sku, quantity)], customer={"email": email}).order
    if paid:
        record_payment(
            order_id=order.pk,
            amount=order.total,
            method=PaymentMethod.BANK_TRANSFER,
            received_at=timezone.now(),
            payer_name="Anna Bērziņa",
            payer_iban=LV_IBAN,
        )
    return Order.objects.get(pk=order.pk)


def refund_on_new_order(amount: str = "5.00", **kwargs) -> Refund:
    order = paid_order(**kwargs)
    return create_refund(order_id=order.pk, amount=Decimal(amount), reason=RefundReason.STAFF)


def run_action(client, url: str, action: str, objects, **extra):
    data = {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [o.pk for o in objects]}
    data.update(extra)
    return client.post(url, data)


def actions_on(page) -> set[str]:
    """The action names offered on a changelist (labels are translated, names are not)."""
    form = page.context["action_form"]
    if form is None:  # no action at all for this user
        return set()
    return {name for name, _label in form.fields["action"].choices if name}


def status_of(refund: Refund) -> str:
    return Refund.objects.get(pk=refund.pk).status


# --- Refund queue ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_clerk_without_the_approve_permission_cannot_approve(client, clerk):
    refund = refund_on_new_order()
    client.force_login(clerk)

    page = client.get(REFUNDS_URL)
    assert page.status_code == 200
    assert "approve" not in actions_on(page)
    assert {"export_sepa", "mark_settled", "mark_failed"} <= actions_on(page)

    run_action(client, REFUNDS_URL, "approve", [refund])
    assert status_of(refund) == RefundStatus.READY


@pytest.mark.django_db
def test_a_clerk_with_the_approve_permission_approves(client, approver):
    refund = refund_on_new_order()
    client.force_login(approver)
    assert "approve" in actions_on(client.get(REFUNDS_URL))

    response = run_action(client, REFUNDS_URL, "approve", [refund])

    assert response.status_code == 302
    refund = Refund.objects.get(pk=refund.pk)
    assert refund.status == RefundStatus.APPROVED
    assert refund.approved_by == approver


@pytest.mark.django_db
def test_export_downloads_the_sepa_file_and_marks_the_refunds_sent(client, approver, clerk):
    refunds = [refund_on_new_order("5.00"), refund_on_new_order("7.50", email="b@example.lv")]
    approve_refunds(refund_ids=[r.pk for r in refunds], by=approver)
    client.force_login(clerk)

    response = run_action(client, REFUNDS_URL, "export_sepa", refunds)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="refunds-')
    assert disposition.endswith('.xml"')
    body = response.content.decode("utf-8")
    assert xmlschema.XMLSchema(str(XSD)).is_valid(body)
    assert "<CtrlSum>12.50</CtrlSum>" in body
    assert all(status_of(r) == RefundStatus.SENT for r in refunds)
    export = SepaExport.objects.get()
    assert export.created_by == clerk
    assert export.content == body

    # The file stays downloadable from the SEPA export admin.
    listing = client.get(reverse("admin:orders_sepaexport_changelist"))
    download_url = reverse("admin:orders_sepaexport_download", args=[export.pk])
    assert download_url.encode() in listing.content
    again = client.get(download_url)
    assert again.status_code == 200
    assert again.content.decode("utf-8") == body
    assert (
        client.get(reverse("admin:orders_sepaexport_change", args=[export.pk])).status_code == 200
    )

    # A second export of the same refunds exports nothing.
    response = run_action(client, REFUNDS_URL, "export_sepa", refunds)
    assert response.status_code == 302
    assert SepaExport.objects.count() == 1


@pytest.mark.django_db
def test_mark_settled_and_mark_failed_with_a_reason(client, approver, clerk):
    settled, failed = refund_on_new_order(), refund_on_new_order(email="b@example.lv")
    approve_refunds(refund_ids=[settled.pk, failed.pk], by=approver)
    export_sepa_refunds()
    client.force_login(clerk)

    run_action(client, REFUNDS_URL, "mark_settled", [settled])
    assert status_of(settled) == RefundStatus.SETTLED

    form = run_action(client, REFUNDS_URL, "mark_failed", [failed])
    assert form.status_code == 200
    assert b'name="reason"' in form.content
    assert status_of(failed) == RefundStatus.SENT

    blank = run_action(client, REFUNDS_URL, "mark_failed", [failed], apply="yes", reason="")
    assert blank.status_code == 200  # the reason is required
    assert status_of(failed) == RefundStatus.SENT

    done = client.post(
        REFUNDS_URL,
        {
            "action": "mark_failed",
            ACTION_CHECKBOX_NAME: [failed.pk],
            "apply": "yes",
            "reason": "Account closed",
        },
    )
    assert done.status_code == 302
    failed = Refund.objects.get(pk=failed.pk)
    assert (failed.status, failed.failure_reason) == (RefundStatus.FAILED, "Account closed")


@pytest.mark.django_db
def test_r21_overdue_filter_and_badge(client, clerk):
    overdue = refund_on_new_order()
    client.force_login(clerk)
    assert b"refund-overdue" not in client.get(REFUNDS_URL).content
    assert client.get(REFUNDS_URL, {"overdue": "yes"}).context["cl"].result_count == 0

    with time_machine.travel(timezone.now() + timedelta(days=15), tick=False):
        sent_late = refund_on_new_order(email="c@example.lv")  # due in 14 days from "now"
        Refund.objects.filter(pk=sent_late.pk).update(due_date=overdue.due_date)
        approve_refunds(refund_ids=[sent_late.pk], by=clerk)
        export_sepa_refunds()  # sent: no longer waiting, so not overdue
        client.force_login(clerk)

        page = client.get(REFUNDS_URL, {"overdue": "yes"})
        assert [r.pk for r in page.context["cl"].result_list] == [overdue.pk]
        assert b'class="refund-overdue"' in page.content
        assert page.content.count(b'class="refund-overdue"') == 1

        others = client.get(REFUNDS_URL, {"overdue": "no"})
        assert [r.pk for r in others.context["cl"].result_list] == [sent_late.pk]
        assert b'class="refund-overdue"' not in others.content


@pytest.mark.django_db
def test_queue_lists_masked_ibans_and_searches_by_invoice_and_email(client, clerk):
    refund = refund_on_new_order(email="janis@example.lv")
    other = refund_on_new_order(email="anna@example.lv")
    invoice = Invoice.objects.get(order=refund.order)
    client.force_login(clerk)

    page = client.get(REFUNDS_URL)
    assert b"\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2 5001" in page.content  # •••• 5001
    assert LV_IBAN.encode() not in page.content

    for query in [invoice.number, "janis@example.lv", refund.order.number]:
        found = client.get(REFUNDS_URL, {"q": query}).context["cl"].result_list
        assert [r.pk for r in found] == [refund.pk], query
    assert other.pk not in [r.pk for r in found]


@pytest.mark.django_db
def test_refund_queue_query_count_does_not_grow_with_the_number_of_refunds(
    client, clerk, django_assert_max_num_queries
):
    for i in range(2):
        refund_on_new_order(email=f"a{i}@example.lv")
    client.force_login(clerk)
    client.get(REFUNDS_URL)  # warm up (content types, session)
    with CaptureQueriesContext(connection) as few:
        assert client.get(REFUNDS_URL).status_code == 200

    for i in range(15):
        refund_on_new_order(email=f"b{i}@example.lv")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(REFUNDS_URL)
    assert page.context["cl"].result_count == 17


@pytest.mark.django_db
def test_refunds_are_not_added_or_deleted_and_their_state_is_read_only(client, clerk):
    refund = refund_on_new_order()
    client.force_login(clerk)
    assert client.get(reverse("admin:orders_refund_add")).status_code == 403
    assert client.get(reverse("admin:orders_refund_delete", args=[refund.pk])).status_code == 403
    page = client.get(reverse("admin:orders_refund_change", args=[refund.pk]))
    assert page.status_code == 200
    assert b'name="status"' not in page.content
    assert b'name="amount"' not in page.content
    assert b'name="iban"' in page.content


@pytest.mark.django_db
def test_iban_is_corrected_only_while_not_approved_and_is_checked(client, clerk, approver):
    refund = refund_on_new_order()
    url = reverse("admin:orders_refund_change", args=[refund.pk])
    client.force_login(clerk)

    invalid = client.post(url, {"iban": "LV80BANK0000435195002", "account_holder": "Anna"})
    assert invalid.status_code == 200
    assert invalid.context["adminform"].form.errors["iban"]
    assert Refund.objects.get(pk=refund.pk).iban == LV_IBAN

    valid = client.post(
        url, {"iban": "de89 3704 0044 0532 0130 00", "account_holder": "Jānis Ozols"}
    )
    assert valid.status_code == 302
    refund = Refund.objects.get(pk=refund.pk)
    assert (refund.iban, refund.account_holder) == ("DE89370400440532013000", "Jānis Ozols")
    assert refund.history.first().history_user == clerk

    approve_refunds(refund_ids=[refund.pk], by=approver)
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="iban"' not in page.content
    locked = client.post(url, {"iban": LV_IBAN, "account_holder": "Anna"})
    assert locked.status_code == 403
    assert Refund.objects.get(pk=refund.pk).iban == "DE89370400440532013000"


@pytest.mark.django_db
def test_history_is_shown_but_never_reverted(client, clerk, approver):
    refund = refund_on_new_order()
    approve_refunds(refund_ids=[refund.pk], by=approver)
    client.force_login(clerk)
    assert client.get(reverse("admin:orders_refund_history", args=[refund.pk])).status_code == 200
    first = refund.history.earliest()
    url = reverse("admin:orders_refund_simple_history", args=[refund.pk, first.history_id])
    assert client.get(url).status_code == 200
    assert client.post(url, {"iban": LV_IBAN, "account_holder": "X"}).status_code == 403
    assert status_of(refund) == RefundStatus.APPROVED


# --- Orders ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_order_search_by_invoice_number_and_email(client, clerk):
    wanted = paid_order(email="janis@example.lv")
    other = paid_order(email="anna@example.lv")
    invoice = Invoice.objects.get(order=wanted)
    client.force_login(clerk)

    for query in [invoice.number, "janis@example.lv", wanted.number]:
        found = client.get(ORDERS_URL, {"q": query}).context["cl"].result_list
        assert [o.pk for o in found] == [wanted.pk], query
    page = client.get(ORDERS_URL)
    assert {o.pk for o in page.context["cl"].result_list} == {wanted.pk, other.pk}


@pytest.mark.django_db
def test_order_list_shows_amount_paid_without_n_plus_1(
    client, clerk, django_assert_max_num_queries
):
    unpaid = paid_order(paid=False, email="u@example.lv")
    paid = paid_order(email="p@example.lv")
    client.force_login(clerk)
    client.get(ORDERS_URL)
    with CaptureQueriesContext(connection) as few:
        page = client.get(ORDERS_URL)
    rows = {o.pk: o for o in page.context["cl"].result_list}
    assert rows[paid.pk].paid_sum == paid.total
    assert rows[unpaid.pk].paid_sum == Decimal("0.00")
    assert Invoice.objects.get(order=paid).number.encode() in page.content

    for i in range(12):
        paid_order(email=f"n{i}@example.lv")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(ORDERS_URL)
    assert page.context["cl"].result_count == 14


@pytest.mark.django_db
def test_order_page_is_read_only_with_its_lines_invoices_payments_and_refunds(client, clerk):
    refund = refund_on_new_order()
    order = refund.order
    client.force_login(clerk)
    url = reverse("admin:orders_order_change", args=[order.pk])

    page = client.get(url)
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="email"' not in content
    assert "KEU-001" in content
    assert Invoice.objects.get(order=order).number in content
    assert reverse("admin:orders_order_invoice_pdf", args=[order.pk]) in content
    assert reverse("admin:orders_refund_change", args=[refund.pk]) in content
    assert client.post(url, {"email": "x@example.lv"}).status_code == 403
    assert client.get(reverse("admin:orders_order_add")).status_code == 403
    assert client.get(reverse("admin:orders_order_history", args=[order.pk])).status_code == 200


@pytest.mark.django_db
def test_staff_open_the_invoice_pdf_without_the_customer_token(client, clerk, monkeypatch):
    order = paid_order()
    invoice = Invoice.objects.get(order=order)
    rendered = []

    def fake_render(inv):
        rendered.append(inv.pk)
        return b"%PDF-1.4 " + inv.number.encode()

    monkeypatch.setattr(invoicing_pdf, "render_invoice_pdf", fake_render)
    url = reverse("admin:orders_order_invoice_pdf", args=[order.pk])

    client.force_login(clerk)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == b"%PDF-1.4 " + invoice.number.encode()
    assert client.get(url, {"invoice": invoice.pk}).status_code == 200
    assert client.get(url, {"invoice": 999999}).status_code == 404
    assert rendered == [invoice.pk, invoice.pk]

    client.logout()
    assert client.get(url).status_code == 302  # to the admin login
    customer = User.objects.create_user("customer")
    client.force_login(customer)
    assert client.get(url).status_code == 302


@pytest.mark.django_db
def test_invoice_pdf_admin_view_streams_the_rendered_invoice(client, clerk):
    order = paid_order()
    client.force_login(clerk)
    response = client.get(reverse("admin:orders_order_invoice_pdf", args=[order.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")


@pytest.mark.django_db
def test_record_contact_needs_its_permission_and_calls_the_service(client, clerk):
    order = paid_order(paid=False)
    assert order.status == OrderStatus.PLACED
    client.force_login(clerk)
    assert "record_contact" not in actions_on(client.get(ORDERS_URL))
    run_action(client, ORDERS_URL, "record_contact", [order])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PLACED

    contact_clerk = make_staff("caller", "record_contact")
    client.force_login(contact_clerk)
    assert "record_contact" in actions_on(client.get(ORDERS_URL))
    response = run_action(client, ORDERS_URL, "record_contact", [order])
    assert response.status_code == 302
    order = Order.objects.get(pk=order.pk)
    assert order.status == OrderStatus.CONFIRMED
    assert order.contact_established_at is not None


@pytest.mark.django_db
def test_staff_cancel_asks_for_confirmation_then_cancels_and_refunds(client, clerk):
    order = paid_order()
    client.force_login(clerk)
    assert "cancel_by_staff" not in actions_on(client.get(ORDERS_URL))
    run_action(client, ORDERS_URL, "cancel_by_staff", [order])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID

    manager = make_staff("manager", "cancel_order")
    client.force_login(manager)
    confirm = run_action(client, ORDERS_URL, "cancel_by_staff", [order])
    assert confirm.status_code == 200
    assert order.number.encode() in confirm.content
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID

    done = client.post(
        ORDERS_URL,
        {"action": "cancel_by_staff", ACTION_CHECKBOX_NAME: [order.pk], "confirm": "yes"},
    )
    assert done.status_code == 302
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, CancelReason.STAFF)
    refund = Refund.objects.get(order=order)
    assert refund.amount == order.total  # staff cancellation: everything back
    assert refund.iban == LV_IBAN


@pytest.mark.django_db
def test_invoice_and_payment_lists_are_read_only_and_searchable(client, clerk):
    order = paid_order(email="janis@example.lv")
    invoice = Invoice.objects.get(order=order)
    client.force_login(clerk)

    invoices = client.get(reverse("admin:orders_invoice_changelist"), {"q": invoice.number})
    assert [i.pk for i in invoices.context["cl"].result_list] == [invoice.pk]
    by_buyer = client.get(reverse("admin:orders_invoice_changelist"), {"q": "Bērziņa"})
    assert invoice.pk in [i.pk for i in by_buyer.context["cl"].result_list]
    assert client.get(reverse("admin:orders_invoice_change", args=[invoice.pk])).status_code == 200

    payments = client.get(reverse("admin:orders_payment_changelist"), {"q": "janis@example.lv"})
    assert [p.order_id for p in payments.context["cl"].result_list] == [order.pk]
    assert LV_IBAN.encode() not in payments.content
    assert client.get(reverse("admin:orders_payment_add")).status_code == 403
