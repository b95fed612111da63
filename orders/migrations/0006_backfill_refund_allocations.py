"""R32: refunds made before the money account get their allocations: an overpayment from
the overpayment, anything else from the lines (last first) and then the fee, never more
than each holds of what was received. Refunds already allocated are left as they are."""

from decimal import Decimal

from django.db import migrations
from django.db.models import Sum


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    OrderLine = apps.get_model("orders", "OrderLine")
    Payment = apps.get_model("orders", "Payment")
    Refund = apps.get_model("orders", "Refund")
    RefundAllocation = apps.get_model("orders", "RefundAllocation")
    orders = Refund.objects.filter(allocations__isnull=True).values_list("order_id", flat=True)
    for order in Order.objects.filter(pk__in=orders.distinct()).iterator():
        left = Payment.objects.filter(order=order).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        room = {"fee": min(left, order.delivery_fee)}
        left -= room["fee"]
        for line in OrderLine.objects.filter(order=order).exclude(status="replaced").order_by("pk"):
            room[line.pk] = min(left, line.line_total)
            left -= room[line.pk]
        room["excess"] = left
        rows = []
        for refund in Refund.objects.filter(order=order).exclude(status="failed").order_by("pk"):
            amount = refund.amount
            first = ["excess"] if refund.reason == "overpayment" else []
            lines = [k for k in room if k not in ("fee", "excess")]
            for target in [*first, *reversed(lines), "fee", "excess"]:
                share = min(amount, room.get(target, Decimal(0)))
                if share <= 0:
                    continue
                room[target] -= share
                amount -= share
                kind = target if target in ("fee", "excess") else "line"
                rows.append(
                    RefundAllocation(
                        refund=refund,
                        target=kind,
                        line_id=None if kind != "line" else target,
                        amount=share,
                    )
                )
                if amount <= 0:
                    break
        RefundAllocation.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_refund_allocation")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
