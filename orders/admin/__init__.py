from orders.admin import bank, orders, refunds  # noqa: F401
