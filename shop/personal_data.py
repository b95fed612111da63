"""Personal data of the shared kernel, declared into the retention policy (legal.registry).

The outbox keeps every email as it was rendered (recipient, greeting, order details):
KA7 communication, erased 3 years after it was sent (legal.rules.communication_until).
"""

from __future__ import annotations

from datetime import date, datetime

from legal.registry import declare, json_keep, not_personal, sweeper
from legal.services.communication import sweep_outbox

not_personal("shop.Product", "name_lv", "name_en", reason="product names")
not_personal("shop.ExtraHoliday", "name", reason="the name of a public holiday")

OUTBOX_ERASER = json_keep("template")
declare("communication", "shop.OutboxMessage", fields={"payload": OUTBOX_ERASER})


@sweeper("outbox", category="communication")
def sweep_outbox_messages(*, today: date, now: datetime, batch_size: int) -> int:
    return sweep_outbox(today=today, now=now, batch_size=batch_size, eraser=OUTBOX_ERASER)
