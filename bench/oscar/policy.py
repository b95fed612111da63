"""The shop-specific parts oscar leaves to the project, written as its docs describe them.

- `Latvia`: the pricing and availability strategy (oscar's sample `UK` strategy with the
  Latvian VAT rate): the first stock record, stock required, 21 % VAT on the net price
  of the stock record, so basket lines carry prices including tax.
- `Repository`: the shipping methods on offer; one database-backed `OrderAndItemCharges`
  (2.00 EUR per order, free from 50.00 EUR, like the shop's default delivery tariff).
"""

from decimal import Decimal

from oscar.apps.partner import strategy
from oscar.apps.shipping import repository
from oscar.core.loading import get_model

SHIPPING_CODE = "omniva-parcel-machine"


class Latvia(
    strategy.UseFirstStockRecord,
    strategy.StockRequired,
    strategy.FixedRateTax,
    strategy.Structured,
):
    rate = Decimal("0.21")


class Selector:
    def strategy(self, request=None, user=None, **kwargs):
        return Latvia(request)


class Repository(repository.Repository):
    def get_available_shipping_methods(self, basket, shipping_addr=None, **kwargs):
        charges = get_model("shipping", "OrderAndItemCharges")
        return list(charges.objects.filter(code=SHIPPING_CODE))
