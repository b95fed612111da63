from orders.admin import bank, orders, refunds, stripe_events  # noqa: F401
