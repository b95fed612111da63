from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shop.services import CatalogueImportError, import_products


class Command(BaseCommand):
    help = (
        "Import the catalogue from CSV (sku,name,price,vat_rate,stock,sealed_hygiene); "
        "upserts by SKU."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text") from exc
        try:
            result = import_products(text=text)
        except CatalogueImportError as exc:
            raise CommandError("nothing imported:\n" + "\n".join(exc.errors)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
            )
        )
