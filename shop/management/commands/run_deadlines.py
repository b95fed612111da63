from django.core.management.base import BaseCommand

from shop.deadlines import run_all


class Command(BaseCommand):
    help = "Apply every time-driven rule that is due now (R10, R12, overdue refunds, ...)."

    def handle(self, *args, **options):
        for name, count in run_all().items():
            self.stdout.write(f"{name}: {count}")
