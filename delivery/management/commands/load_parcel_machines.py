from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from delivery.services import ParcelMachineImportError, load_parcel_machines, parse_locations


class Command(BaseCommand):
    help = (
        "Load Omniva's locations JSON into the directory of Latvian parcel machines: "
        "upserts by ZIP, deactivates machines no longer in the file (R4)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="Omniva locations.json")

    def handle(self, *args, path: Path, **options):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text") from exc
        try:
            result = load_parcel_machines(rows=parse_locations(text))
        except ParcelMachineImportError as exc:
            raise CommandError("nothing loaded:\n" + "\n".join(exc.errors)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} created, {result.updated} updated, "
                f"{result.deactivated} deactivated, {result.unchanged} unchanged "
                f"({result.skipped} other locations skipped)"
            )
        )
