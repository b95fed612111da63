"""import_products PATH: CSV catalogue, upsert by SKU (DESIGN.md section 10)."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from shop.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "sku,name,price,vat_rate,stock,sealed_hygiene\n"


def write(tmp_path, text):
    path = tmp_path / "products.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_creates_and_updates_by_sku(tmp_path):
    ProductFactory(sku="KEU-001", name_lv="Vecs", price=Decimal("1.00"), stock=1)
    path = write(
        tmp_path,
        HEADER + "KEU-001,Šampūns,18.90,21,40,false\nKEU-002,Maska,24.20,21,5,true\n",
    )
    call_command("import_products", str(path))

    updated = Product.objects.get(sku="KEU-001")
    assert (updated.name_lv, updated.price, updated.stock) == ("Šampūns", Decimal("18.90"), 40)
    created = Product.objects.get(sku="KEU-002")
    assert created.sealed_hygiene is True and created.vat_category == "standard"

    call_command("import_products", str(path))  # a second run changes nothing
    assert Product.objects.count() == 2
    assert Product.history.filter(sku="KEU-001").count() == 2


def test_reduced_rate_maps_to_its_category(tmp_path):
    call_command("import_products", str(write(tmp_path, HEADER + "BK-1,Grāmata,10.00,12,1,no\n")))
    assert Product.objects.get(sku="BK-1").vat_category == "reduced"


def test_a_bad_row_refuses_the_whole_file(tmp_path):
    path = write(
        tmp_path,
        HEADER
        + "KEU-001,Šampūns,18.90,21,40,false\n"  # fine
        + "KEU-002,Maska,abc,21,5,true\n"  # bad price
        + "KEU-003,X,1.00,19,1,false\n",  # no such VAT rate
    )
    with pytest.raises(CommandError) as info:
        call_command("import_products", str(path))
    assert "line 3: price is not an amount" in str(info.value)
    assert "line 4: no VAT rate of 19%" in str(info.value)
    assert not Product.objects.exists()


def test_missing_columns_are_reported(tmp_path):
    with pytest.raises(CommandError, match="header lacks column"):
        call_command("import_products", str(write(tmp_path, "sku,name\nA,B\n")))
