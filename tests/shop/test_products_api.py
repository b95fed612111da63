"""GET /api/products/ as in DESIGN.md section 10."""

from decimal import Decimal

import pytest

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_catalogue_lists_active_products_with_contract_fields(client):
    ProductFactory(sku="KEU-001", name_lv="Šampūns", name_en="Shampoo", price=Decimal("18.90"))
    ProductFactory(sku="KEU-002", sealed_hygiene=True, stock=0)
    ProductFactory(sku="OLD-001", active=False)

    body = client.get("/api/products/").json()

    assert body["count"] == 2
    first = body["results"][0]
    assert {"sku", "name", "price", "vat_rate", "in_stock", "sealed_hygiene"} <= first.keys()
    assert first == first | {
        "sku": "KEU-001",
        "name": "Šampūns",
        "price": "18.90",
        "vat_rate": "21.00",
        "in_stock": True,
        "sealed_hygiene": False,
    }
    assert body["results"][1]["in_stock"] is False
    assert body["results"][1]["sealed_hygiene"] is True


def test_names_follow_the_requested_language(client):
    ProductFactory(sku="KEU-001", name_lv="Šampūns", name_en="Shampoo")
    body = client.get("/api/products/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["results"][0]["name"] == "Shampoo"


def test_filters_and_pagination(client):
    ProductFactory(sku="KEU-001", name_lv="Keratin šampūns", price=Decimal("10.00"))
    ProductFactory(sku="KEU-002", name_lv="Maska", price=Decimal("30.00"), sealed_hygiene=True)
    ProductFactory(sku="KEU-003", name_lv="Sprejs", price=Decimal("50.00"), stock=0)

    def skus(**params):
        return [p["sku"] for p in client.get("/api/products/", params).json()["results"]]

    assert skus(q="keratin") == ["KEU-001"]
    assert skus(sealed_hygiene="true") == ["KEU-002"]
    assert skus(in_stock="false") == ["KEU-003"]
    assert skus(min_price="20", max_price="40") == ["KEU-002"]
    assert skus(ordering="-price") == ["KEU-003", "KEU-002", "KEU-001"]
    page = client.get("/api/products/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_catalogue_query_count_does_not_grow_with_products(client, django_assert_max_num_queries):
    ProductFactory.create_batch(40)
    with django_assert_max_num_queries(3):
        response = client.get("/api/products/")
    assert response.status_code == 200
