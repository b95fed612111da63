"""delivery.couriers.omniva.OmnivaClient against the fake Omniva server (R14a, R27)."""

from __future__ import annotations

import pytest

from delivery.couriers import (
    CourierError,
    ManualCourier,
    Receiver,
    ShipmentRequest,
    adapter_path,
    get_courier,
)
from delivery.couriers.omniva import OmnivaClient, describe_error_body, split_address
from delivery.fake_omniva import FakeOmniva

PARCEL_MACHINE = Receiver(
    name="Anna Bērziņa", phone="+37120000000", email="anna@example.lv", parcel_machine_zip="9001"
)
COURIER = Receiver(
    name="Jānis Ozols",
    phone="+37120000001",
    email="janis@example.lv",
    street="Brīvības iela 1",
    city="Rīga",
    postal_code="LV-1050",
)


def request(reference="KEU7AB12-1", receiver=PARCEL_MACHINE) -> ShipmentRequest:
    return ShipmentRequest(reference=reference, receiver=receiver)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(fake_omniva, sleeps) -> OmnivaClient:
    return OmnivaClient(sleep=sleeps.append)


def test_r14a_registers_a_parcel_machine_shipment_and_gets_barcode_and_return_code(
    client, fake_omniva
):
    registration = client.register_shipment(request())

    assert registration.barcode.startswith("CE") and registration.barcode.endswith("LV")
    assert registration.return_code
    sent = fake_omniva.requests[-1]
    assert sent["path"].endswith("/shipments/business-to-client")
    body = sent["body"]
    assert body["customerCode"] == fake_omniva.customer_code
    shipment = body["shipments"][0]
    assert shipment["partnerShipmentId"] == "KEU7AB12-1"
    assert shipment["returnAllowed"] is True  # T7.5: the customer gets a return code
    assert shipment["deliveryChannel"] == "PARCEL_MACHINE"
    assert shipment["receiverAddressee"]["address"] == {"country": "LV", "offloadPostcode": "9001"}


def test_r27_omniva_receives_only_name_phone_email_and_the_destination(client, fake_omniva):
    client.register_shipment(request(receiver=COURIER))

    receiver = fake_omniva.requests[-1]["body"]["shipments"][0]["receiverAddressee"]
    assert set(receiver) == {"personName", "contactMobile", "contactEmail", "address"}
    assert receiver["personName"] == "Jānis Ozols"
    assert receiver["address"] == {
        "country": "LV",
        "postcode": "1050",
        "deliverypoint": "Rīga",
        "street": "Brīvības iela 1",
    }


def test_the_same_reference_twice_is_the_same_parcel(client):
    first = client.register_shipment(request())
    again = client.register_shipment(request())
    assert again.barcode == first.barcode


def test_label_is_the_pdf_omniva_sends_as_base64(client):
    barcode = client.register_shipment(request()).barcode
    pdf = client.fetch_label(barcode)
    assert pdf.startswith(b"%PDF")
    assert barcode.encode() in pdf


def test_label_of_an_unknown_barcode_is_a_clear_error(client):
    with pytest.raises(CourierError) as error:
        client.fetch_label("CE000000000LV")
    assert "no label for CE000000000LV" in error.value.message
    assert "BARCODE_NOT_FOUND" in error.value.message


def test_failed_shipments_become_a_message_for_staff_not_a_retry(client, fake_omniva, sleeps):
    fake_omniva.fail_next("failed")
    with pytest.raises(CourierError) as error:
        client.register_shipment(request())

    assert error.value.retryable is False
    assert "Omniva refused the shipment KEU7AB12-1" in error.value.message
    assert "Price list does not exist" in error.value.message
    assert sleeps == []  # a refusal is not retried


def test_a_shipment_omniva_finds_invalid_is_refused_with_its_reason(client):
    bad = Receiver(name="", phone="+37120000000", email="a@example.lv", parcel_machine_zip="9001")
    with pytest.raises(CourierError) as error:
        client.register_shipment(request(receiver=bad))
    assert "personName - must not be blank" in error.value.message


def test_401_says_which_settings_to_check(settings, fake_omniva, sleeps):
    client = OmnivaClient(password="wrong", sleep=sleeps.append)
    with pytest.raises(CourierError) as error:
        client.register_shipment(request())

    assert error.value.status == 401
    assert error.value.retryable is False
    assert "OMNIVA_USERNAME and OMNIVA_PASSWORD" in error.value.message
    assert sleeps == []


def test_400_errors_name_the_fields(settings, fake_omniva):
    client = OmnivaClient(customer_code="999999")
    with pytest.raises(CourierError) as error:
        client.register_shipment(request())
    assert error.value.status == 400
    assert "customerCode: unknown customer code" in error.value.message
    assert "Validation Failed" in error.value.message


def test_a_timeout_is_retried_with_backoff_and_the_parcel_registered_once(
    client, fake_omniva, sleeps
):
    fake_omniva.fail_next("timeout")  # the fake answers after 1.0 s; the client waits 0.5 s

    registration = client.register_shipment(request())

    assert sleeps == [0.5]  # one backoff before the second attempt
    posts = [r for r in fake_omniva.requests if r["path"].endswith("business-to-client")]
    assert len(posts) == 2
    assert list(fake_omniva.shipments) == [registration.barcode]  # the same partnerShipmentId


def test_5xx_is_retried_then_given_up_as_retryable(client, fake_omniva, sleeps):
    fake_omniva.fail_next("503", times=3)

    with pytest.raises(CourierError) as error:
        client.register_shipment(request())

    assert error.value.retryable is True
    assert "HTTP 503" in error.value.message
    assert "gave up after 3 attempts" in error.value.message
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_an_unreachable_omniva_is_retryable(settings, sleeps):
    with FakeOmniva() as fake:
        url = fake.url  # a port nobody listens on once the fake stops
    client = OmnivaClient(base_url=url, username="demo", password="demo", sleep=sleeps.append)
    with pytest.raises(CourierError) as error:
        client.track("CE000000001LV")
    assert error.value.retryable is True
    assert "unreachable" in error.value.message


def test_tracking_answers_become_events_in_the_webhook_vocabulary(client, fake_omniva):
    barcode = client.register_shipment(request()).barcode
    fake_omniva.add_event(barcode, "in_transit", occurred_at="2026-11-03T08:00:00Z")
    fake_omniva.add_event(
        barcode, "delivered", occurred_at="2026-11-03T22:30:00Z", location="Rīga Origo"
    )

    events = client.track(barcode)

    assert [e.event for e in events] == ["registered", "in_transit", "delivered"]
    delivered = events[-1]
    assert delivered.occurred_at.isoformat() == "2026-11-03T22:30:00+00:00"
    assert delivered.location == "Rīga Origo"
    assert len({e.event_id for e in events}) == 3


def test_tracking_an_unknown_barcode_is_404_for_staff(client):
    with pytest.raises(CourierError) as error:
        client.track("CE000000009LV")
    assert error.value.status == 404
    assert "does not know the shipment CE000000009LV" in error.value.message


def test_error_shapes_are_described_in_one_line():
    assert (
        describe_error_body(
            {
                "title": "Validation Failed",
                "details": "Input validation failed",
                "errors": {"startTime": [{"code": "Future", "message": "must be a future date"}]},
            }
        )
        == "Validation Failed Input validation failed - startTime: must be a future date"
    )
    assert describe_error_body({"failedShipments": [{"clientItemId": "A-1", "message": "no"}]}) == (
        "A-1: no"
    )
    assert describe_error_body("not json") == ""


def test_the_seller_address_is_split_for_omniva():
    assert split_address("Ūnijas iela 6, Rīga, LV-1084") == {
        "street": "Ūnijas iela 6",
        "deliverypoint": "Rīga",
        "postcode": "1084",
    }


def test_the_setting_chooses_the_adapter(settings):
    settings.COURIER_ADAPTER = ""
    settings.OMNIVA_API_URL = ""
    assert adapter_path() == "off"
    assert isinstance(get_courier(), ManualCourier)
    assert get_courier().can_register is False

    settings.OMNIVA_API_URL = "http://127.0.0.1:9/api/v01/omx/"
    assert isinstance(get_courier(), OmnivaClient)

    settings.COURIER_ADAPTER = "off"  # explicitly off, even with a URL
    assert isinstance(get_courier(), ManualCourier)

    settings.COURIER_ADAPTER = "delivery.couriers.omniva.OmnivaClient"
    assert isinstance(get_courier(), OmnivaClient)


def test_settings_are_read_when_the_client_is_made(settings, fake_omniva):
    settings.OMNIVA_TIMEOUT = 3.0
    settings.OMNIVA_CUSTOMER_CODE = "777"
    client = get_courier()
    assert client.timeout == 3.0
    assert client.customer_code == "777"
