"""export_sepa_refunds: approved bank refunds into a SEPA pain.001 file; they become sent."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.services.sepa import export_sepa_refunds
from shop.errors import Refused


def default_directory() -> Path:
    return Path(settings.BASE_DIR) / "var" / "sepa"


class Command(BaseCommand):
    help = (
        "Export every approved bank refund into one SEPA credit transfer file "
        "(pain.001.001.03) for the bank; the refunds become 'sent'."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            "-o",
            metavar="PATH",
            help="Where to write the file (default: var/sepa/<file name>). "
            "An existing directory gets the default file name inside it.",
        )

    def handle(self, *args, **options):
        try:
            export = export_sepa_refunds()
        except Refused as exc:
            raise CommandError(f"{exc.detail} {exc.facts.get('error', '')}".strip()) from exc
        if export is None:
            self.stdout.write("No approved bank refunds to export.")
            return
        path = Path(options["output"]) if options["output"] else default_directory()
        if not options["output"] or path.is_dir():
            path = path / export.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        # The export is already stored (SepaExport), so a failed write loses nothing:
        # the file can be downloaded again from the admin.
        path.write_text(export.content, encoding="utf-8")
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {export.count} refund(s), total EUR {export.total}, "
                f"message {export.message_id}, to {path}"
            )
        )
