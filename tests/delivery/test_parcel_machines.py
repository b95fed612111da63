"""R4: the directory of Latvian Omniva parcel machines, its loader, its API and its admin."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from delivery import services
from delivery.models import ParcelMachine
from delivery.services import (
    DEMO_LOCATIONS_FILE,
    ParcelMachineImportError,
    load_parcel_machines,
    parse_locations,
)
from orders.services.checkout import DeliveryData
from shop.errors import InvalidInput
from tests.factories import place_test_order

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {"id", "name", "city", "address"}
ORIGO = {
    "id": "9001",
    "name": "Rīga Origo Omniva pakomāts",
    "city": "Rīga",
    "address": "Stacijas laukums 2",
}


def omniva_rows() -> list[dict]:
    return parse_locations(DEMO_LOCATIONS_FILE.read_text("utf-8"))


def latvian_machine_zips(rows: list[dict]) -> set[str]:
    return {r["ZIP"] for r in rows if r["A0_NAME"] == "LV" and r["TYPE"] == "0"}


def write(tmp_path: Path, rows) -> Path:
    path = tmp_path / "locations.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    return path


def snapshot() -> list[tuple]:
    return list(ParcelMachine.objects.order_by("zip").values_list())


@pytest.fixture
def directory():
    return load_parcel_machines(rows=omniva_rows())


# The sample file ------------------------------------------------------------------------


def test_the_sample_file_holds_latvian_machines_and_rows_to_filter_out():
    rows = omniva_rows()
    latvian = latvian_machine_zips(rows)
    assert len(latvian) >= 15
    assert "9001" in latvian
    assert any(r["A0_NAME"] == "EE" for r in rows)
    assert any(r["A0_NAME"] == "LV" and r["TYPE"] == "1" for r in rows)


# Loader ----------------------------------------------------------------------------------


def test_r4_loader_keeps_only_latvian_parcel_machines(directory):
    rows = omniva_rows()
    expected = latvian_machine_zips(rows)
    assert directory.created == len(expected)
    assert directory.skipped == len(rows) - len(expected)
    assert set(ParcelMachine.objects.values_list("zip", flat=True)) == expected
    assert not ParcelMachine.objects.filter(zip__in=["9100", "96331", "10001"]).exists()


def test_r4_loader_maps_omniva_fields(directory):
    origo = ParcelMachine.objects.get(zip="9001")
    assert (origo.name, origo.city, origo.address, origo.county) == (
        "Rīga Origo Omniva pakomāts",
        "Rīga",
        "Stacijas laukums 2",
        "Rīga",
    )
    assert origo.latitude == Decimal("56.946813")  # Y_COORDINATE
    assert origo.longitude == Decimal("24.120370")  # X_COORDINATE
    assert origo.active

    # A parish in A2_NAME: the settlement (A3_NAME) is the place customers look for.
    aglona = ParcelMachine.objects.get(zip="9595")
    assert (aglona.city, aglona.county, aglona.address) == (
        "Aglona",
        "Preiļu novads",
        "Somersētas iela 33",
    )
    valmiera = ParcelMachine.objects.get(zip="9013")
    assert (valmiera.city, valmiera.county) == ("Valmiera", "Valmieras novads")


def test_r4_second_load_upserts_by_zip_and_deactivates_what_disappeared(directory):
    rows = omniva_rows()
    by_zip = {r["ZIP"]: r for r in rows}
    by_zip["9002"]["NAME"] = "Rīga Galerija Centrs Omniva pakomāts (2. stāvs)"
    by_zip["9004"]["A7_NAME"] = "372A"
    rows.remove(by_zip["9003"])  # Spice: removed by Omniva
    new_row = copy.deepcopy(by_zip["9001"])
    new_row.update({"ZIP": "9999", "NAME": "Rīga Jaunā Omniva pakomāts", "A7_NAME": "3"})
    rows.append(new_row)

    result = load_parcel_machines(rows=rows)

    assert (result.created, result.updated, result.deactivated) == (1, 2, 1)
    assert result.unchanged == directory.created - 3
    assert ParcelMachine.objects.get(zip="9002").name.endswith("(2. stāvs)")
    assert ParcelMachine.objects.get(zip="9004").address == "Brīvības gatve 372A"
    spice = ParcelMachine.objects.get(zip="9003")  # kept: orders may refer to it
    assert not spice.active
    assert ParcelMachine.objects.get(zip="9999").active

    # Loading the same file again changes nothing.
    again = load_parcel_machines(rows=rows)
    assert (again.created, again.updated, again.deactivated) == (0, 0, 0)


def test_r4_a_machine_that_comes_back_is_active_again(directory):
    rows = omniva_rows()
    load_parcel_machines(rows=[r for r in rows if r["ZIP"] != "9003"])
    assert not ParcelMachine.objects.get(zip="9003").active

    result = load_parcel_machines(rows=rows)

    assert (result.updated, result.deactivated) == (1, 0)
    assert ParcelMachine.objects.get(zip="9003").active


def test_r4_orders_keep_their_machine_when_it_is_deactivated(directory):
    order = place_test_order(
        delivery=DeliveryData(method="omniva_parcel_machine", parcel_machine_id="9003")
    ).order
    load_parcel_machines(rows=[r for r in omniva_rows() if r["ZIP"] != "9003"])

    order.refresh_from_db()
    assert order.parcel_machine.zip == "9003"
    assert not order.parcel_machine.active
    assert "Lielirbes iela 29" in order.parcel_machine_name


def test_r4_command_prints_the_counts(tmp_path):
    out = StringIO()
    call_command("load_parcel_machines", str(DEMO_LOCATIONS_FILE), stdout=out)
    expected = len(latvian_machine_zips(omniva_rows()))
    assert f"{expected} created, 0 updated, 0 deactivated" in out.getvalue()

    rows = [r for r in omniva_rows() if r["ZIP"] != "9003"]
    out = StringIO()
    call_command("load_parcel_machines", str(write(tmp_path, rows)), stdout=out)
    assert "0 created, 0 updated, 1 deactivated" in out.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{not json", "not valid JSON"),
        ('{"ZIP": "9001"}', "expected a JSON list"),
        ("[]", "no Latvian parcel machines"),
    ],
)
def test_r4_a_broken_file_is_refused_and_nothing_changes(directory, tmp_path, content, message):
    before = snapshot()
    path = tmp_path / "locations.json"
    path.write_text(content, "utf-8")

    with pytest.raises(CommandError, match=message):
        call_command("load_parcel_machines", str(path), stdout=StringIO())

    assert snapshot() == before


def test_r4_a_file_without_latvian_machines_deactivates_nothing(directory, tmp_path):
    """Only Estonian rows and a Latvian post office: refused, the directory stays as is."""
    before = snapshot()
    rows = [r for r in omniva_rows() if r["A0_NAME"] != "LV" or r["TYPE"] != "0"]
    assert rows

    with pytest.raises(CommandError, match="no Latvian parcel machines"):
        call_command("load_parcel_machines", str(write(tmp_path, rows)), stdout=StringIO())

    assert snapshot() == before
    assert ParcelMachine.objects.filter(active=True).count() == directory.created


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"NAME": ""}, "NAME is empty"),
        ({"ZIP": ""}, "ZIP is empty"),
        ({"Y_COORDINATE": "north"}, "Y_COORDINATE is not a number"),
        ({"X_COORDINATE": "540.1"}, "X_COORDINATE is out of range"),
        ({"ZIP": "9002"}, "ZIP 9002 appears twice"),
    ],
)
def test_r4_an_invalid_latvian_row_refuses_the_whole_file(directory, change, message):
    before = snapshot()
    rows = [r for r in omniva_rows() if r["ZIP"] != "9010"]  # else 9010 would be deactivated
    origo = next(r for r in rows if r["ZIP"] == "9001")
    rows.append({**origo, "ZIP": "9998", **change})

    with pytest.raises(ParcelMachineImportError) as excinfo:
        load_parcel_machines(rows=rows)

    assert message in "\n".join(excinfo.value.errors)
    assert snapshot() == before


def test_r4_a_failure_half_way_rolls_the_whole_load_back(directory, monkeypatch):
    before = snapshot()
    rows = omniva_rows()
    rows[0]["NAME"] = "Changed"
    rows.append({**rows[0], "ZIP": "9997"})
    rows = [r for r in rows if r["ZIP"] != "9010"]

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ParcelMachine.objects, "bulk_update", explode)
    with pytest.raises(RuntimeError):
        load_parcel_machines(rows=rows)

    assert snapshot() == before  # the new machine 9997 was rolled back too


def test_seed_demo_loads_the_sample_directory_only_into_an_empty_one():
    call_command("seed_demo")
    call_command("seed_demo")
    count = len(latvian_machine_zips(omniva_rows()))
    assert ParcelMachine.objects.filter(active=True).count() == count

    # A directory loaded from Omniva's real file is left alone by seed_demo.
    ParcelMachine.objects.all().delete()
    load_parcel_machines(rows=[r for r in omniva_rows() if r["ZIP"] == "9001"])
    assert services.load_demo_parcel_machines() is None
    assert ParcelMachine.objects.count() == 1


# Checkout (R4) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "machine_id",
    [
        "9003",  # in the directory, but deactivated
        "1234",  # unknown
        "96331",  # an Estonian machine: never in the directory
        "9100",  # a Latvian post office, not a parcel machine
    ],
)
def test_r4_checkout_refuses_an_inactive_or_unknown_machine(directory, machine_id):
    load_parcel_machines(rows=[r for r in omniva_rows() if r["ZIP"] != "9003"])

    with pytest.raises(InvalidInput) as excinfo:
        place_test_order(
            delivery=DeliveryData(method="omniva_parcel_machine", parcel_machine_id=machine_id)
        )

    assert excinfo.value.errors[0]["field"] == "delivery.parcel_machine_id"
    assert excinfo.value.errors[0]["code"] == "unknown_parcel_machine"


def test_r4_checkout_accepts_an_active_latvian_machine(directory):
    order = place_test_order(
        delivery=DeliveryData(method="omniva_parcel_machine", parcel_machine_id="9009")
    ).order
    assert order.parcel_machine.zip == "9009"
    assert order.parcel_machine_name == "Liepāja Baata Omniva pakomāts, Lielā iela 13, Liepāja"


# API: GET /api/parcel-machines/ ------------------------------------------------------------


def ids(client, **params) -> list[str]:
    response = client.get("/api/parcel-machines/", params)
    assert response.status_code == 200
    return [m["id"] for m in response.json()["results"]]


def test_api_lists_active_latvian_machines_with_the_contract_fields(client, directory):
    body = client.get("/api/parcel-machines/").json()

    assert body["count"] == directory.created
    assert all(set(machine) == CONTRACT_FIELDS for machine in body["results"])
    assert ORIGO in body["results"]
    assert {m["id"] for m in body["results"]} == latvian_machine_zips(omniva_rows())


def test_api_leaves_out_inactive_machines(client, directory):
    load_parcel_machines(rows=[r for r in omniva_rows() if r["ZIP"] != "9003"])

    assert "9003" not in ids(client)
    assert client.get("/api/parcel-machines/9003/").status_code == 404


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("origo", ["9001"]),
        ("ORIGO", ["9001"]),
        ("9001", ["9001"]),
        ("stacijas laukums", ["9001"]),  # address
        ("liepāja", ["9009"]),  # city
        ("aglona", ["9595"]),
        ("  jūrmala ", ["9008"]),
        ("tallinn", []),
    ],
)
def test_api_q_searches_name_city_address_and_zip(client, directory, q, expected):
    assert ids(client, q=q) == expected


def test_api_q_finds_every_machine_in_a_city(client, directory):
    riga = ids(client, q="rīga")
    assert len(riga) == 7
    assert "9001" in riga


def test_api_is_paginated_like_the_catalogue(client, directory):
    page = client.get("/api/parcel-machines/", {"page_size": 5}).json()
    assert page["count"] == directory.created
    assert len(page["results"]) == 5
    assert page["next"] and page["previous"] is None
    # ordered by city, then name
    cities = [m["city"] for m in client.get("/api/parcel-machines/").json()["results"]]
    assert cities == sorted(cities)


def test_api_retrieves_one_machine_by_its_omniva_zip(client, directory):
    response = client.get("/api/parcel-machines/9001/")
    assert response.status_code == 200
    assert response.json() == ORIGO


def test_api_unknown_machine_is_404_problem_json(client, directory):
    response = client.get("/api/parcel-machines/96331/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()


def test_api_is_read_only(client, directory):
    response = client.post("/api/parcel-machines/", {}, content_type="application/json")
    assert response.status_code == 405


def test_api_query_count_does_not_grow_with_the_directory(
    client, directory, django_assert_max_num_queries
):
    ParcelMachine.objects.bulk_create(
        ParcelMachine(zip=f"8{n:03d}", name=f"Pakomāts {n}", city="Rīga") for n in range(150)
    )
    with django_assert_max_num_queries(2):
        assert client.get("/api/parcel-machines/", {"q": "rīga"}).status_code == 200
    with django_assert_max_num_queries(1):
        assert client.get("/api/parcel-machines/9001/").status_code == 200


# Admin ----------------------------------------------------------------------------------


def test_admin_searches_and_filters_machines_with_read_only_coordinates(admin_client, directory):
    listing = admin_client.get("/admin/delivery/parcelmachine/", {"q": "origo"})
    assert listing.status_code == 200
    assert [m.zip for m in listing.context["cl"].result_list] == ["9001"]
    assert (
        admin_client.get("/admin/delivery/parcelmachine/", {"active__exact": "1"}).status_code
        == 200
    )

    origo = ParcelMachine.objects.get(zip="9001")
    page = admin_client.get(f"/admin/delivery/parcelmachine/{origo.pk}/change/")
    form_fields = set(page.context["adminform"].form.fields)
    assert {"latitude", "longitude", "zip"}.isdisjoint(form_fields)
    assert not page.context["has_delete_permission"]


def test_admin_deactivates_machines_through_the_service(admin_client, directory):
    origo = ParcelMachine.objects.get(zip="9001")
    response = admin_client.post(
        "/admin/delivery/parcelmachine/",
        {"action": "deactivate", "_selected_action": [origo.pk]},
    )
    assert response.status_code == 302
    origo.refresh_from_db()
    assert not origo.active
