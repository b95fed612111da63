"""poll_courier_tracking: what the beat job does every minute (R14b), on demand."""

from django.core.management.base import BaseCommand

from delivery.services import poll_tracking


class Command(BaseCommand):
    help = (
        "Ask the courier's tracking API about open shipments (at most OMNIVA_POLL_PER_MINUTE "
        "of them, once a minute) and apply the answers like webhook events."
    )

    def handle(self, *args, **options):
        report = poll_tracking()
        if report.skipped:
            self.stdout.write(
                "Skipped: the courier client is off, or a batch already ran this minute."
            )
            return
        results = ", ".join(f"{k} {v}" for k, v in sorted(report.results.items())) or "no events"
        self.stdout.write(
            f"Asked about {report.asked} shipment(s), {report.failed} failed: {results}."
        )
