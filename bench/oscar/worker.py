"""The django-oscar side of `python -m bench oscar`, in a process of its own.

Run by `bench.oscar_bench` with the oscar virtualenv's python, `DJANGO_SETTINGS_MODULE=
bench.oscar.settings` and BENCH_OSCAR_DATABASE_URL. It reads one JSON command per line on
stdin and answers one JSON line on stdout (anything else oscar prints goes to stderr):

- `{"cmd": "prepare", "products": 200}`: migrate the (fresh) database, then the
  catalogue: one partner, one product class, 200 products with a stock record each
  (the shop benchmark's prices, as net prices plus 21 % VAT), Latvia as the shipping
  country, the shipping method.
- `{"cmd": "run", "seconds": 5}`: place orders for that long; answers the number and the
  seconds spent building baskets and placing orders.
- `{"cmd": "queries", "order": 1}`: one more order with the data of order 1 under
  CaptureQueriesContext, per phase.
- `{"cmd": "check"}`: orders, lines and stock allocations in the database.
- `{"cmd": "quit"}`.

Order i gets the products, quantities and names of the shop benchmark's `checkout_body(i)`
(`bench/throughput.py`): 5 distinct products of 200, quantities 1-3. It is placed in two
phases, each in one transaction (ATOMIC_REQUESTS, as oscar's docs recommend):

1. basket (what the customer's "add to basket" requests did before checkout, measured
   apart): an anonymous basket, each product loaded and added with `Basket.add_product`
   under the strategy.
2. placement (what oscar's `OrderPlacementMixin.handle_order_placement` does, without
   payment and the confirmation email): the basket loaded as the basket middleware loads
   it, the strategy and the offers applied (`Applicator`), the default shipping method
   from the repository and its charge, the total from `OrderTotalCalculator`, the number
   from `OrderNumberGenerator`, the shipping address saved, `OrderCreator().place_order`
   (a guest order with its email), `basket.submit()`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from decimal import Decimal

FIRST_NAMES = ["Anna", "Jānis", "Līga", "Mārtiņš", "Ilze", "Kristaps", "Elīna", "Artūrs"]
LAST_NAMES = ["Bērziņa", "Kalniņš", "Ozola", "Liepiņš", "Krūmiņa", "Zariņš", "Vītola"]
LINES = 5
VAT = Decimal("1.21")


class Oscar:
    """Oscar's classes, loaded the way oscar loads them (get_class, get_model)."""

    def __init__(self) -> None:
        from oscar.core.loading import get_class, get_model

        self.Basket = get_model("basket", "Basket")
        self.Product = get_model("catalogue", "Product")
        self.ProductClass = get_model("catalogue", "ProductClass")
        self.Partner = get_model("partner", "Partner")
        self.StockRecord = get_model("partner", "StockRecord")
        self.Country = get_model("address", "Country")
        self.ShippingAddress = get_model("order", "ShippingAddress")
        self.Order = get_model("order", "Order")
        self.Line = get_model("order", "Line")
        self.OrderAndItemCharges = get_model("shipping", "OrderAndItemCharges")
        self.Applicator = get_class("offer.applicator", "Applicator")
        self.OrderTotalCalculator = get_class("checkout.calculators", "OrderTotalCalculator")
        self.OrderNumberGenerator = get_class("order.utils", "OrderNumberGenerator")
        self.OrderCreator = get_class("order.utils", "OrderCreator")


def prepare(oscar: Oscar, products: int) -> dict:
    from django.core.management import call_command

    from bench.oscar.policy import SHIPPING_CODE

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    migrated = time.perf_counter() - started
    oscar.Country.objects.update_or_create(
        iso_3166_1_a2="LV",
        defaults={
            "iso_3166_1_a3": "LVA",
            "iso_3166_1_numeric": "428",
            "printable_name": "Latvia",
            "name": "Republic of Latvia",
            "is_shipping_country": True,
        },
    )
    oscar.OrderAndItemCharges.objects.create(
        code=SHIPPING_CODE,
        name="Omniva pakomāts",
        price_per_order=Decimal("2.00"),
        price_per_item=Decimal("0.00"),
        free_shipping_threshold=Decimal("50.00"),
    )
    partner = oscar.Partner.objects.create(name="Keune")
    kind = oscar.ProductClass.objects.create(
        name="Shampoo", requires_shipping=True, track_stock=True
    )
    rng = random.Random(1)  # the shop benchmark's prices (prepare_shop), incl. VAT
    for n in range(products):
        gross = Decimal(rng.randrange(390, 3990)) / 100
        product = oscar.Product.objects.create(
            structure="standalone",
            product_class=kind,
            title=f"Shampoo {n}",
            upc=f"BENCH-{n:03d}",
        )
        oscar.StockRecord.objects.create(
            product=product,
            partner=partner,
            partner_sku=f"BENCH-{n:03d}",
            price_currency="EUR",
            price=(gross / VAT).quantize(Decimal("0.01")),
            num_in_stock=100_000_000,
        )
    return {"migrate_seconds": round(migrated, 1), "seconds": time.perf_counter() - started}


class Placer:
    def __init__(self, oscar: Oscar) -> None:
        from django.contrib.auth.models import AnonymousUser

        from bench.oscar.policy import Repository, Selector

        self.oscar = oscar
        self.selector = Selector()
        self.repository = Repository()
        self.user = AnonymousUser()
        by_sku = dict(oscar.Product.objects.values_list("upc", "pk"))
        self.product_ids = [by_sku[f"BENCH-{n:03d}"] for n in range(len(by_sku))]
        self.next = 0

    def order_data(self, i: int) -> dict:
        """The products, quantities and customer of the shop benchmark's order i."""
        rng = random.Random(i)
        picked = rng.sample(range(len(self.product_ids)), LINES)
        first_name = rng.choice(FIRST_NAMES)
        last_name = rng.choice(LAST_NAMES)
        phone = f"+37126{rng.randrange(10**6):06d}"
        lines = [(self.product_ids[n], rng.randint(1, 3)) for n in picked]
        return {
            "first_name": first_name,
            "last_name": last_name,
            "phone": phone,
            "email": f"customer{i}@example.lv",
            "lines": lines,
        }

    def build_basket(self, data: dict) -> int:
        from django.db import transaction

        with transaction.atomic():
            basket = self.oscar.Basket.objects.create()
            basket.strategy = self.selector.strategy(user=self.user)
            for product_id, quantity in data["lines"]:
                product = self.oscar.Product.objects.get(pk=product_id)
                basket.add_product(product, quantity)
        return basket.pk

    def place(self, basket_id: int, data: dict):
        from django.db import transaction

        oscar = self.oscar
        with transaction.atomic():
            basket = oscar.Basket.open.get(pk=basket_id)
            basket.strategy = self.selector.strategy(user=self.user)
            oscar.Applicator().apply(basket, self.user, None)
            address = oscar.ShippingAddress(
                first_name=data["first_name"],
                last_name=data["last_name"],
                line1="Omniva pakomāts Rīga Origo",
                line4="Rīga",
                postcode="LV-1050",
                country_id="LV",
                phone_number=data["phone"],
            )
            method = self.repository.get_default_shipping_method(
                basket=basket, shipping_addr=address
            )
            charge = method.calculate(basket)
            total = oscar.OrderTotalCalculator().calculate(basket, charge)
            number = oscar.OrderNumberGenerator().order_number(basket)
            address.save()
            order = oscar.OrderCreator().place_order(
                basket=basket,
                total=total,
                shipping_method=method,
                shipping_charge=charge,
                user=self.user,
                shipping_address=address,
                order_number=number,
                guest_email=data["email"],
            )
            basket.submit()
        return order

    def run(self, seconds: float) -> dict:
        orders = 0
        in_basket = in_place = place_cpu = 0.0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            data = self.order_data(self.next)
            self.next += 1
            t0 = time.perf_counter()
            basket_id = self.build_basket(data)
            t1, c1 = time.perf_counter(), time.process_time()
            self.place(basket_id, data)
            t2, c2 = time.perf_counter(), time.process_time()
            in_basket += t1 - t0
            in_place += t2 - t1
            place_cpu += c2 - c1
            orders += 1
        return {
            "orders": orders,
            "basket_seconds": in_basket,
            "place_seconds": in_place,
            "place_cpu_seconds": place_cpu,
        }

    def queries(self, order: int) -> dict:
        """The statements of one more order with the data of order `order` (one already
        placed: its products have been bought before, as in a shop that has sold them)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from bench.oscar.statements import summarize

        data = self.order_data(order)
        with CaptureQueriesContext(connection) as basket_phase:
            basket_id = self.build_basket(data)
        with CaptureQueriesContext(connection) as place_phase:
            order = self.place(basket_id, data)
        return {
            "basket": len(basket_phase.captured_queries),
            "place": len(place_phase.captured_queries),
            "place_kinds": summarize(q["sql"] for q in place_phase.captured_queries),
            "basket_kinds": summarize(q["sql"] for q in basket_phase.captured_queries),
            "lines": order.lines.count(),
            "total_incl_tax": str(order.total_incl_tax),
        }

    def check(self) -> dict:
        from django.db.models import Sum

        oscar = self.oscar
        quantities = oscar.Line.objects.aggregate(n=Sum("quantity"))["n"] or 0
        allocated = oscar.StockRecord.objects.aggregate(n=Sum("num_allocated"))["n"] or 0
        return {
            "orders": oscar.Order.objects.count(),
            "lines": oscar.Line.objects.count(),
            "items": quantities,
            "allocated": allocated,
        }


def main() -> int:
    import django

    answer_to = sys.stdout
    sys.stdout = sys.stderr  # only answers go to the runner's pipe
    django.setup()
    import oscar as oscar_package

    oscar = Oscar()
    placer: Placer | None = None

    def answer(payload: dict) -> None:
        answer_to.write(json.dumps(payload) + "\n")
        answer_to.flush()

    answer(
        {
            "ready": True,
            "oscar": oscar_package.get_version(),
            "django": django.get_version(),
            "python": sys.version.split()[0],
            "pid": os.getpid(),
        }
    )
    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        try:
            if name == "quit":
                answer({"bye": True})
                return 0
            if name == "prepare":
                answer(prepare(oscar, command["products"]))
            elif name == "run":
                placer = placer or Placer(oscar)
                answer(placer.run(command["seconds"]))
            elif name == "queries":
                placer = placer or Placer(oscar)
                answer(placer.queries(command["order"]))
            elif name == "check":
                placer = placer or Placer(oscar)
                answer(placer.check())
            else:
                answer({"error": f"unknown command {name!r}"})
        except Exception as exc:
            answer({"error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
