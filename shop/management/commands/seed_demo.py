from django.core.management.base import BaseCommand

from shop.demo import seed_demo


class Command(BaseCommand):
    help = "Demo catalogue, tariff, terms version, parcel machines and a staff user (idempotent)."

    def handle(self, *args, **options):
        seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
