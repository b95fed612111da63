"""import_bank_statement PATH...: camt.053 / camt.054 files in (R11, DESIGN.md section 10)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders.services.bank import CamtError, import_statement_file


class Command(BaseCommand):
    help = (
        "Import ISO 20022 bank statements (camt.053) or notifications (camt.054), versions "
        "001.02 to 001.08. Each credit is stored once; matched credits pay their order, the "
        "rest wait in the admin for staff. A file that cannot be read changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args, paths: list[str], **options):
        failed = 0
        for path in paths:
            try:
                result = import_statement_file(path=path)
            except CamtError as exc:
                failed += 1
                self.stderr.write(self.style.ERROR(f"{path}: not imported. {exc}"))
                continue
            counts = (
                f"{result.total} credit(s): {result.new} new, {result.duplicate} duplicate, "
                f"{result.matched} matched, {result.unmatched} unmatched"
            )
            if result.refused:
                counts += f", {len(result.refused)} refused"
            if result.already_imported:
                self.stdout.write(
                    f"{path}: already imported as statement #{result.statement_id}, "
                    f"nothing changed; {counts}"
                )
            else:
                self.stdout.write(
                    self.style.SUCCESS(f"{path}: statement #{result.statement_id}, {counts}")
                )
            for entry in result.refused:
                # Refused entries are listed one by one: the rest of the file imported.
                where = f"line {entry['line']}" if entry.get("line") else "an entry"
                reference = f" ({entry['reference']})" if entry.get("reference") else ""
                self.stderr.write(
                    self.style.WARNING(f"{path}: {where}{reference} refused: {entry['reason']}")
                )
        if failed:
            raise CommandError(f"{failed} of {len(paths)} file(s) could not be imported.")
