"""Celery tasks of the shared kernel: thin, they call the outbox service."""

from celery import shared_task

from shop import outbox


@shared_task(acks_late=True, ignore_result=True)
def deliver_outbox_message(message_id: int) -> bool:
    return outbox.deliver(message_id)


@shared_task(ignore_result=True)
def relay_outbox() -> int:
    return outbox.relay()


@shared_task(ignore_result=True)
def run_deadlines() -> dict[str, int]:
    from shop.deadlines import run_all

    return run_all()
