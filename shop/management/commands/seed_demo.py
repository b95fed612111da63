from django.core.management.base import BaseCommand

from shop.demo import DEMO_STAFF_USERNAME, StaffSeed, demo_password_still_works, seed_demo


class Command(BaseCommand):
    help = (
        "Demo catalogue, tariff, terms version, parcel machines and, with DJANGO_DEBUG=true "
        "only, a staff user with the demo password (idempotent)."
    )

    def handle(self, *args, **options):
        staff = seed_demo()
        if staff is StaffSeed.REFUSED:
            self.stdout.write(
                self.style.WARNING(
                    "DJANGO_DEBUG is off: no demo staff user with a published password was "
                    "created. Create your own superuser with:\n"
                    "    python manage.py createsuperuser"
                )
            )
            if demo_password_still_works():
                self.stdout.write(
                    self.style.ERROR(
                        f"The user '{DEMO_STAFF_USERNAME}' still has the demo password: "
                        f"change it (python manage.py changepassword {DEMO_STAFF_USERNAME}) "
                        "or deactivate it."
                    )
                )
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
