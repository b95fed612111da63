import pytest

from tests.legal.helpers import shop_ready as _shop_ready


@pytest.fixture
def shop_ready(db):
    _shop_ready()
