"""Celery tasks of the orders app: thin, they take ids and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def import_bank_statement_task(statement_id: int) -> None:
    """R11: import an uploaded bank statement (idempotent; see orders.services.bank)."""
    from orders.services import bank

    bank.import_statement(statement_id=statement_id)
